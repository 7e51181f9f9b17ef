"""k-reciprocal re-ranking against a loop-and-set reference written from the paper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semparts_reid.metrics.distance import compute_distance
from semparts_reid.metrics.rerank import re_ranking, re_ranking_from_features


def reference_rerank(qg, qq, gg, k1, k2, lam):
    """Zhong et al. 2017, one item at a time with Python sets."""
    nq, ng = qg.shape
    n = nq + ng
    d = np.block([[qq, qg], [qg.T, gg]]).astype(np.float64) ** 2
    d = d / d.max(axis=1, keepdims=True)
    rank = [list(np.argsort(d[i], kind="stable")) for i in range(n)]

    def knn(p, k):  # k nearest, p itself included (k + 1 items)
        return rank[p][: k + 1]

    def recip(p, k):
        return {g for g in knn(p, k) if p in knn(g, k)}

    k1h = int(np.around(k1 / 2))
    v = np.zeros((n, n))
    for p in range(n):
        r = recip(p, k1)
        expanded = set(r)
        for c in r:
            rc = recip(c, k1h)
            if len(rc & r) > 2 / 3 * len(rc):
                expanded |= rc
        idx = sorted(expanded)
        w = np.exp(-d[p, idx])
        v[p, idx] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[knn(p, k2 - 1)].mean(axis=0) for p in range(n)])
    jac = np.zeros((nq, ng))
    for i in range(nq):
        for g in range(ng):
            a, b = v[i], v[nq + g]
            jac[i, g] = 1 - np.minimum(a, b).sum() / np.maximum(a, b).sum()
    return (1 - lam) * jac + lam * d[:nq, nq:]


def _feats(seed, nq, ng, dim=6, ids=5):
    rng = np.random.default_rng(seed)
    cent = rng.normal(size=(ids, dim)) * 2
    q = cent[rng.integers(0, ids, nq)] + rng.normal(size=(nq, dim))
    g = cent[rng.integers(0, ids, ng)] + rng.normal(size=(ng, dim))
    return q, g


@pytest.mark.parametrize(
    ("seed", "nq", "ng", "k1", "k2", "lam"),
    [(0, 5, 25, 6, 3, 0.3), (1, 8, 30, 20, 6, 0.3), (2, 3, 17, 4, 1, 0.0), (3, 6, 20, 7, 8, 1.0)],
)
def test_matches_reference(seed, nq, ng, k1, k2, lam):
    q, g = _feats(seed, nq, ng)
    qg, qq, gg = (compute_distance(a, b, "euclidean") for a, b in ((q, g), (q, q), (g, g)))
    ours = re_ranking(qg, qq, gg, k1=k1, k2=k2, lambda_value=lam, chunk_size=4)
    ref = reference_rerank(qg, qq, gg, k1, k2, lam)
    np.testing.assert_allclose(ours, ref, atol=2e-5)


def test_from_features_and_torch():
    q, g = _feats(4, 6, 24)
    a = re_ranking_from_features(q, g, k1=6, k2=3)
    b = re_ranking_from_features(torch.from_numpy(q), torch.from_numpy(g), k1=6, k2=3)
    assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor)
    np.testing.assert_allclose(a, b.numpy(), atol=1e-6)
    assert a.shape == (6, 24)


def test_rerank_improves_retrieval_on_clustered_data():
    # sanity: on well-clustered data the re-ranked nearest neighbour keeps the identity
    rng = np.random.default_rng(5)
    cent = rng.normal(size=(4, 8)) * 4
    qp, gp = np.arange(4), np.repeat(np.arange(4), 8)
    q, g = cent[qp] + rng.normal(size=(4, 8)), cent[gp] + rng.normal(size=(32, 8))
    out = re_ranking_from_features(q, g, k1=6, k2=3)
    assert (gp[out.argmin(axis=1)] == qp).all()


def test_errors():
    q, g = _feats(0, 3, 10)
    qg, qq, gg = (compute_distance(a, b, "euclidean") for a, b in ((q, g), (q, q), (g, g)))
    with pytest.raises(ValueError, match=r"q_q_dist must have shape \(3, 3\)"):
        re_ranking(qg, gg, gg)
    with pytest.raises(ValueError, match=r"g_g_dist must have shape \(10, 10\)"):
        re_ranking(qg, qq, qq)
    with pytest.raises(ValueError, match="max_n=5"):
        re_ranking(qg, qq, gg, max_n=5)
    with pytest.raises(ValueError, match="max_n=5"):
        re_ranking_from_features(q, g, max_n=5)
    with pytest.raises(ValueError, match="k1 must be an int in"):
        re_ranking(qg, qq, gg, k1=0)
    with pytest.raises(ValueError, match="k2 must be an int in"):
        re_ranking(qg, qq, gg, k1=3, k2=9)
    with pytest.raises(ValueError, match="lambda_value"):
        re_ranking(qg, qq, gg, k1=3, k2=2, lambda_value=1.5)
    bad = qg.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"q_g_dist of shape \(3, 10\) holds NaN"):
        re_ranking(bad, qq, gg, k1=3, k2=2)
    with pytest.raises(ValueError, match="2-D"):
        re_ranking(qg[0], qq, gg)
