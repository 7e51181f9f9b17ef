"""``top_k_ranked`` / ``rank_gallery``: the ranked lists that visrank and the demo draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_helpers import tiny_model
from PIL import Image

from semparts_reid.errors import InputError
from semparts_reid.inference import (
    FeatureExtractor,
    extract_split,
    pick_queries,
    rank_gallery,
    top_k_ranked,
)
from semparts_reid.inference.evaluation import distance_matrix
from semparts_reid.metrics.rank import evaluate_cmc_map


def _loop_reference(dist, qp, gp, qc, gc, k, include_junk, own=None):  # type: ignore[no-untyped-def]
    """One query at a time: stable sort, junk by the rule, explicit flags."""
    rows = []
    for i in range(len(qp)):
        items = []
        for j in np.argsort(dist[i], kind="stable"):
            junk = gp[j] == qp[i] and qc[i] >= 0 and gc[j] == qc[i]
            junk = junk or (own is not None and own[i] == j)
            if junk and not include_junk:
                continue
            items.append((j, gp[j] == qp[i] and not junk, junk))
        rows.append(items[:k])
    return rows


def test_top_k_matches_a_loop_reference_with_ties_and_unknown_cameras() -> None:
    rng = np.random.default_rng(0)
    for case in range(40):
        nq, ng = int(rng.integers(1, 8)), int(rng.integers(12, 40))
        qp, gp = rng.integers(0, 4, nq), rng.integers(0, 4, ng)
        qc, gc = rng.integers(-1, 3, nq), rng.integers(-1, 3, ng)  # -1: unknown camera
        dist = rng.integers(0, 5, (nq, ng)).astype(np.float64)  # many ties
        own = rng.integers(-1, ng, nq) if case % 2 else None
        for include_junk in (True, False):
            res = top_k_ranked(dist, qp, gp, qc, gc, 6, include_junk=include_junk,
                               query_in_gallery=own)
            ref = _loop_reference(dist, qp, gp, qc, gc, res.ranks.shape[1], include_junk,
                                  own)
            for i, items in enumerate(ref):
                assert res.ranks[i].tolist() == [j for j, _, _ in items]
                assert res.matches[i].tolist() == [m for _, m, _ in items]
                assert res.junk[i].tolist() == [jk for _, _, jk in items]
            np.testing.assert_array_equal(res.distances,
                                          np.take_along_axis(dist, res.ranks, 1))
            fewest = min(len(items) for items in _loop_reference(
                dist, qp, gp, qc, gc, ng, include_junk, own))
            assert res.ranks.shape[1] == min(6, fewest)  # what every query has


def test_ranks_agree_with_the_evaluator() -> None:
    """Without junk the first match's column is the rank the CMC and MRR count."""
    rng = np.random.default_rng(3)
    nq, ng = 30, 120
    qp, gp = rng.integers(0, 10, nq), rng.integers(0, 10, ng)
    qc, gc = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    dist = rng.random((nq, ng)).astype(np.float32)
    m = evaluate_cmc_map(dist, qp, gp, qc, gc, max_rank=5)
    res = top_k_ranked(dist, qp, gp, qc, gc, ng, include_junk=False)
    has = res.matches.any(1)
    first = res.matches.argmax(1)[has]
    assert has.sum() == m.num_valid_queries
    assert np.mean(first == 0) == pytest.approx(m.rank(1))
    assert np.mean(1.0 / (first + 1)) == pytest.approx(m.mrr)


def test_junk_pids_and_bad_inputs() -> None:
    dist = np.array([[0.1, 0.2, 0.3]])
    res = top_k_ranked(dist, [1], [-1, 1, 2], [0], [1, 1, 1], junk_pids=(-1,))
    assert res.junk.tolist() == [[True, False, False]]
    assert res.matches.tolist() == [[False, True, False]]
    with pytest.raises(InputError, match=r"dist: expected a \(Q, G\) matrix"):
        top_k_ranked(np.zeros(3), [1], [1, 2, 3], [0], [0, 0, 0])
    with pytest.raises(InputError, match="NaN"):
        top_k_ranked(np.array([[np.nan, 0.0, 1.0]]), [1], [1, 2, 3], [0], [0, 0, 0])
    with pytest.raises(InputError, match=r"g_pids: expected \(3,\) integers"):
        top_k_ranked(dist, [1], [1, 2], [0], [0, 0, 0])
    with pytest.raises(InputError, match="top_k=0"):
        top_k_ranked(dist, [1], [1, 2, 3], [0], [0, 0, 0], 0)
    with pytest.raises(InputError, match="query_in_gallery"):
        top_k_ranked(dist, [1], [1, 2, 3], [0], [0, 0, 0], query_in_gallery=[3])


def test_pick_queries() -> None:
    assert pick_queries(10, 4).tolist() == [0, 3, 6, 9]
    assert pick_queries(3, 20).tolist() == [0, 1, 2]
    a, b = pick_queries(100, 5, seed=1), pick_queries(100, 5, seed=1)
    assert a.tolist() == b.tolist() == sorted(set(a.tolist()))
    assert a.tolist() != pick_queries(100, 5, seed=2).tolist()
    with pytest.raises(InputError, match="num_queries=0"):
        pick_queries(10, 0)
    with pytest.raises(InputError, match="no images"):
        pick_queries(0, 3)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list]:
    root = tmp_path_factory.mktemp("rankimgs")
    rng = np.random.default_rng(0)
    recs = []
    for pid in range(5):
        base = rng.integers(0, 255, (1, 1, 3))
        for cam in range(3):
            img = np.clip(base + rng.normal(0, 60, (70, 34, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / f"{pid}_{cam}.png")
            recs.append((str(root / f"{pid}_{cam}.png"), pid, cam))
    return [r for r in recs if r[2] == 0], recs  # the queries are in the gallery too


@pytest.mark.parametrize("mode", ["global", "parts"])
def test_rank_gallery_is_the_evaluation_distance_ranked(records: tuple, mode: str) -> None:
    query, gallery = records
    model = tiny_model().train()
    res = rank_gallery(model, query, gallery, num_queries=3, top_k=4, mode=mode,
                       device="cpu", precision="fp32")
    assert model.training  # restored
    assert res.query_indices.tolist() == [0, 2, 4]
    ex = FeatureExtractor(tiny_model(), device="cpu", precision="fp32")
    qf = extract_split(ex, [query[i] for i in (0, 2, 4)])
    gf = extract_split(ex, gallery)
    dist = distance_matrix(qf, gf, mode).numpy()
    expected = top_k_ranked(dist, qf.pids, gf.pids, qf.camids, gf.camids, 4,
                            query_in_gallery=[0, 6, 12])
    np.testing.assert_array_equal(res.ranks, expected.ranks)
    np.testing.assert_array_equal(res.junk, expected.junk)
    np.testing.assert_allclose(res.distances, expected.distances, atol=1e-5)
    assert res.ranks[0, 0] == 0 and res.junk[0, 0]  # the query itself: junk, not a match
    again = rank_gallery(ex, query, gallery, query_indices=[0, 2, 4], top_k=4, mode=mode,
                         gallery_features=gf)
    np.testing.assert_array_equal(again.ranks, res.ranks)


def test_rank_gallery_bad_input(records: tuple) -> None:
    query, gallery = records
    model = tiny_model()
    with pytest.raises(InputError, match="mode='nope'"):
        rank_gallery(model, query, gallery, mode="nope", device="cpu")
    with pytest.raises(InputError, match="query_indices"):
        rank_gallery(model, query, gallery, query_indices=[9], device="cpu")
    with pytest.raises(InputError, match="gallery_features"):
        gf = extract_split(FeatureExtractor(model, device="cpu"), gallery[:2])
        rank_gallery(model, query, gallery, gallery_features=gf, device="cpu")
    with pytest.raises(TypeError, match="model_or_extractor"):
        rank_gallery(torch.zeros(1), query, gallery)  # type: ignore[arg-type]
