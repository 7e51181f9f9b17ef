"""Sparse k-reciprocal encoding: re-ranking equal to torchreid 0.2.5, Jaccard distance equal
to a dense loop-and-set reference, exact tiled neighbours, bounded memory, clear errors."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from distance_bounds import gemm_tolerance
from kreciprocal_reference import dense_jaccard, load_torchreid_rerank

from semparts_reid.errors import InputError
from semparts_reid.metrics import jaccard_distance, k_reciprocal_encoding, knn
from semparts_reid.metrics.distance import compute_distance
from semparts_reid.metrics.rank import evaluate_cmc_map
from semparts_reid.metrics.rerank import _rerank, re_ranking, re_ranking_from_features

TORCHREID = load_torchreid_rerank()
TORCHREID_STABLE = load_torchreid_rerank(stable=True)
needs_torchreid = pytest.mark.skipif(TORCHREID is None, reason="torchreid 0.2.5 not installed")
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _clustered(seed: int, n: int, dim: int, ids: int, noise: float = 1.0) -> tuple:
    rng = np.random.default_rng(seed)
    pids = rng.integers(0, ids, n)
    f = rng.normal(size=(ids, dim))[pids] * 2 + noise * rng.normal(size=(n, dim))
    return f.astype(np.float32), pids


def _split(seed: int, nq: int, ng: int, dim: int = 12, ids: int = 8) -> tuple:
    f, pids = _clustered(seed, nq + ng, dim, ids)
    return f[:nq], f[nq:], pids[:nq], pids[nq:]


def _dense(d: sp.csr_matrix) -> np.ndarray:
    """Our convention: a pair that is not stored has distance 1."""
    out = np.ones(d.shape)
    rows = np.repeat(np.arange(d.shape[0]), np.diff(d.indptr))
    out[rows, d.indices] = d.data
    return out


CASES = [  # seed, Q, G, k1, k2, lambda
    (0, 5, 25, 6, 3, 0.3),
    (1, 8, 60, 20, 6, 0.3),
    (2, 3, 17, 4, 1, 0.0),
    (3, 6, 40, 7, 8, 1.0),
    (4, 30, 90, 13, 4, 0.55),
    (5, 1, 12, 11, 12, 0.3),
]


@needs_torchreid
@pytest.mark.parametrize(("seed", "nq", "ng", "k1", "k2", "lam"), CASES)
def test_re_ranking_equals_torchreid(seed, nq, ng, k1, k2, lam) -> None:
    q, g, qp, gp = _split(seed, nq, ng)
    qg, qq, gg = (compute_distance(a, b, "euclidean") for a, b in ((q, g), (q, q), (g, g)))
    ref = TORCHREID(qg, qq, gg, k1=k1, k2=k2, lambda_value=lam)
    for chunk in (3, 1024):
        ours = re_ranking(qg, qq, gg, k1=k1, k2=k2, lambda_value=lam, chunk_size=chunk)
        assert ours.dtype == np.float32 and ours.shape == (nq, ng)
        np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    # from features: torchreid gets the very matrix the tiles hold (small tiles, many)
    prov = knn.FeatureTiles([q, g], "euclidean", block=7)
    d = knn.dense_matrix(prov).numpy()
    ref = TORCHREID(d[:nq, nq:], d[:nq, :nq], d[nq:, nq:], k1=k1, k2=k2, lambda_value=lam)
    ours = _rerank(prov, nq, k1, k2, lam, None)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    # the public entry point (its own tiles) ranks alike
    feats = re_ranking_from_features(q, g, "euclidean", k1, k2, lam)
    cams_q, cams_g = np.zeros(nq, int), np.ones(ng, int)
    a = evaluate_cmc_map(feats, qp, gp, cams_q, cams_g, max_rank=5)
    b = evaluate_cmc_map(ref, qp, gp, cams_q, cams_g, max_rank=5)
    assert a.mAP == pytest.approx(b.mAP, abs=1e-9) and np.allclose(a.cmc, b.cmc)


@needs_torchreid
def test_asymmetric_and_float64_matrices_follow_torchreid_columns() -> None:
    rng = np.random.default_rng(7)
    nq, ng = 9, 31
    qg, qq, gg = rng.random((nq, ng)), rng.random((nq, nq)), rng.random((ng, ng))
    ref = TORCHREID(qg, qq, gg, k1=6, k2=3, lambda_value=0.3)
    np.testing.assert_allclose(re_ranking(qg, qq, gg, k1=6, k2=3, chunk_size=4), ref,
                               atol=1e-5, rtol=0)
    t = re_ranking(torch.from_numpy(qg), qq, gg, k1=6, k2=3)
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), ref, atol=1e-5)


@needs_torchreid
@pytest.mark.parametrize("chunk", [2, 5, 64])
def test_ties_and_duplicates_break_by_index(chunk: int) -> None:
    # coarse integer features: many exact distance ties and duplicate items, so tie runs
    # cross the candidate margin and rows are recomputed in full
    rng = np.random.default_rng(11)
    f = rng.integers(0, 3, size=(48, 3)).astype(np.float32)
    f[40:] = f[:8]  # exact duplicates
    nq = 10
    prov = knn.FeatureTiles([f[:nq], f[nq:]], "sqeuclidean", block=chunk)
    d = knn.dense_matrix(prov).numpy()
    assert np.array_equal(d, d.T)
    qg, qq, gg = d[:nq, nq:], d[:nq, :nq], d[nq:, nq:]
    for k1, k2 in ((4, 3), (9, 6), (2, 1)):
        ref = TORCHREID_STABLE(qg, qq, gg, k1=k1, k2=k2, lambda_value=0.3)
        got = re_ranking(qg, qq, gg, k1=k1, k2=k2, chunk_size=chunk)
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
        np.testing.assert_allclose(_rerank(prov, nq, k1, k2, 0.3, None), ref, atol=1e-5,
                                   rtol=0)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("block", [5, 64])
def test_nearest_is_exact_with_ties_by_index(metric: str, block: int) -> None:
    f, _ = _clustered(3, 70, 6, 5)
    f[60:] = f[:10]
    idx, dist = knn.nearest(f, 9, metric=metric, block=block)
    d = knn.dense_matrix(knn.FeatureTiles([f], metric, block=block)).numpy()
    ref = np.argsort(d, axis=1, kind="stable")[:, :9]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_array_equal(dist, np.take_along_axis(d, ref, 1))
    # one kernel: self-pairs and exact duplicates are exactly 0 in both, on every machine
    whole = compute_distance(f, f, metric)
    dup = (np.arange(10), np.arange(60, 70))
    for m in (d, whole):
        assert (np.diagonal(m) == 0).all() and (m[dup] == 0).all() and (m[dup[::-1]] == 0).all()
    # elsewhere two GEMMs of other shapes agree within their round-off (from the norms)
    assert (np.abs(d - whole) <= gemm_tolerance(f, f, metric)).all()


@pytest.mark.parametrize(("k1", "k2", "metric"), [(6, 3, "sqeuclidean"), (10, 1, "cosine"),
                                                  (4, 5, "euclidean"), (30, 6, "sqeuclidean")])
def test_jaccard_distance_equals_dense_reference(k1: int, k2: int, metric: str) -> None:
    f, _ = _clustered(5, 64, 8, 6)
    got = jaccard_distance(f, k1=k1, k2=k2, metric=metric, block=16)
    assert isinstance(got, sp.csr_matrix) and got.shape == (64, 64) and got.dtype == np.float32
    d = knn.dense_matrix(knn.FeatureTiles([f], metric, block=16, normalize=True)).numpy()
    np.testing.assert_allclose(_dense(got), dense_jaccard(d, k1, k2), atol=1e-6, rtol=0)
    # the diagonal is stored explicitly, as 0; every stored value is in [0, 1)
    rows = np.repeat(np.arange(64), np.diff(got.indptr))
    diag = got.indices == rows
    assert diag.sum() == 64 and (got.data[diag] == 0).all() and (got.data < 1).all()
    # rows ordered by distance (what scikit-learn's precomputed neighbours expect)
    for r in range(64):
        seg = got.data[got.indptr[r] : got.indptr[r + 1]]
        assert (np.diff(seg) >= 0).all()


def test_jaccard_distance_max_distance_and_column_order() -> None:
    f, _ = _clustered(6, 80, 8, 8)
    full = jaccard_distance(f, k1=8, k2=3, sort_rows=False)
    cut = jaccard_distance(f, k1=8, k2=3, max_distance=0.5)
    assert full.has_sorted_indices or all(
        (np.diff(full.indices[full.indptr[r] : full.indptr[r + 1]]) > 0).all() for r in range(80))
    keep = _dense(full) <= 0.5
    np.testing.assert_array_equal(_dense(cut) <= 0.5, keep)
    assert cut.nnz == keep.sum() < full.nnz


def test_encoding_from_neighbour_lists_equals_from_features() -> None:
    f, _ = _clustered(8, 90, 8, 9)
    v = k_reciprocal_encoding(f, k1=8, k2=4)
    assert isinstance(v, sp.csr_matrix) and v.shape == (90, 90)
    np.testing.assert_allclose(np.asarray(v.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    idx, dist = knn.nearest(f, 40, metric="sqeuclidean", normalize=True)
    shuffled = np.random.default_rng(0).permutation(40)  # rows are re-ordered inside
    w = k_reciprocal_encoding(None, 8, 4, neighbours=idx[:, shuffled],
                              distances=dist[:, shuffled])
    np.testing.assert_allclose(w.toarray(), v.toarray(), atol=1e-7)
    short = k_reciprocal_encoding(f, 8, 4, neighbours=idx[:, :9], distances=dist[:, :9])
    np.testing.assert_allclose(short.toarray(), v.toarray(), atol=1e-7)  # features fill in
    with pytest.raises(InputError, match="lack the distance"):
        k_reciprocal_encoding(None, 8, 4, neighbours=idx[:, :9], distances=dist[:, :9])


def test_sparse_sizes_are_o_n_k_and_no_n_by_n_array_is_allocated() -> None:
    n, k1, k2 = 6000, 20, 6
    f, _ = _clustered(9, n, 16, n // 12, noise=0.5)
    tracemalloc.start()
    try:
        d = jaccard_distance(f, k1=k1, k2=k2, block=512)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dense_bytes = n * n * 4  # one float32 N x N array: 144 MB
    assert peak < dense_bytes / 3, f"peak {peak / 2**20:.0f} MiB of numpy allocations"
    v = k_reciprocal_encoding(f, k1, k2, block=512)
    kh = int(np.around(k1 / 2))
    assert v.nnz <= n * k2 * (k1 + 1) * (kh + 2)
    assert v.nnz < 40 * k1 * n / 10 and d.nnz < n * 200  # far from N^2 = 3.6e7


def test_re_ranking_has_no_size_limit_but_a_chosen_one() -> None:
    q, g, _, _ = _split(0, 4, 20)
    with pytest.raises(InputError, match="max_n=10"):
        re_ranking_from_features(q, g, max_n=10)
    assert re_ranking_from_features(q, g, k1=5, k2=3, max_n=24).shape == (4, 20)


def test_errors_name_the_bad_input() -> None:
    f, _ = _clustered(0, 20, 4, 3)
    with pytest.raises(InputError, match="k1 must be an int in \\[1, 19\\]"):
        jaccard_distance(f, k1=20)
    with pytest.raises(InputError, match="k2 must be an int in \\[1, 5\\]"):
        jaccard_distance(f, k1=4, k2=6)
    with pytest.raises(InputError, match="k1 must be an int"):
        k_reciprocal_encoding(f, k1=True)
    bad = f.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match=r"features of shape \(20, 4\) holds NaN"):
        jaccard_distance(bad, k1=3, k2=2)
    with pytest.raises(InputError, match="metric must be one of"):
        jaccard_distance(f, k1=3, k2=2, metric="manhattan")
    with pytest.raises(InputError, match="max_distance"):
        jaccard_distance(f, k1=3, k2=2, max_distance=1.5)
    with pytest.raises(InputError, match="backend"):
        jaccard_distance(f, k1=3, k2=2, backend="annoy")
    with pytest.raises(InputError, match="features or neighbours"):
        k_reciprocal_encoding(None, 3, 2)
    idx, dist = knn.nearest(f, 8)
    with pytest.raises(InputError, match="needs distances"):
        k_reciprocal_encoding(None, 3, 2, neighbours=idx)
    with pytest.raises(InputError, match="K=3 columns"):
        k_reciprocal_encoding(None, 3, 2, neighbours=idx[:, :3], distances=dist[:, :3])
    with pytest.raises(InputError, match="must index the 20 items"):
        k_reciprocal_encoding(None, 3, 2, neighbours=idx + 5, distances=dist)
    with pytest.raises(InputError, match="same dimension|share one dimension"):
        re_ranking_from_features(f, f[:, :3])
    with pytest.raises(InputError, match="G >= 1"):
        re_ranking_from_features(f, f[:0])
    with pytest.raises(InputError, match="k must be an int"):
        knn.nearest(f, 0)


def test_faiss_backend_equals_torch() -> None:
    f, _ = _clustered(12, 120, 8, 10)
    try:
        import faiss  # noqa: F401  (optional extra)
    except ImportError:
        with pytest.raises(InputError, match="needs faiss"):
            jaccard_distance(f, k1=6, backend="faiss")
        pytest.skip("faiss not installed: checked the error only")
    a = jaccard_distance(f, k1=6, k2=3)
    b = jaccard_distance(f, k1=6, k2=3, backend="faiss")
    np.testing.assert_allclose(_dense(a), _dense(b), atol=1e-5)


def test_dbscan_accepts_the_sparse_matrix() -> None:
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    f, pids = _clustered(13, 150, 16, 6, noise=0.3)
    d = jaccard_distance(f, k1=10, k2=4)
    from sklearn.exceptions import EfficiencyWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", EfficiencyWarning)  # rows sorted: no copy, no warning
        labels = sklearn_cluster.DBSCAN(eps=0.6, min_samples=4,
                                        metric="precomputed").fit_predict(d)
    assert labels.max() >= 1  # several clusters found on well separated identities
    same = labels[:, None] == labels[None]
    assert (same == (pids[:, None] == pids[None]))[labels >= 0][:, labels >= 0].mean() > 0.9


def test_the_torch_code_path_of_a_gpu_gives_the_same_result(monkeypatch) -> None:
    # the GPU path (torch tiles, top-k, hit extraction, gathers) run on the CPU
    from semparts_reid.metrics import _tiles

    q, g, _, _ = _split(15, 25, 140, dim=16)
    f = np.concatenate([q, g])
    want = (re_ranking_from_features(q, g, k1=9, k2=4, block=32),
            _dense(jaccard_distance(f, k1=8, k2=3, block=32)))
    monkeypatch.setattr(_tiles, "numpy_path", lambda device: False)
    got = (re_ranking_from_features(q, g, k1=9, k2=4, block=32),
           _dense(jaccard_distance(f, k1=8, k2=3, block=32)))
    np.testing.assert_allclose(got[0], want[0], atol=1e-6)
    np.testing.assert_allclose(got[1], want[1], atol=1e-6)


@CUDA
@pytest.mark.cuda
def test_gpu_search_matches_cpu() -> None:
    q, g, _, _ = _split(14, 40, 160, dim=32)
    cpu = re_ranking_from_features(q, g, k1=10, k2=4)
    gpu = re_ranking_from_features(torch.from_numpy(q).cuda(), torch.from_numpy(g).cuda(),
                                   k1=10, k2=4)
    np.testing.assert_allclose(gpu.numpy(), cpu, atol=1e-5)
    f = np.concatenate([q, g])
    np.testing.assert_allclose(_dense(jaccard_distance(f, k1=8, device="cuda")),
                               _dense(jaccard_distance(f, k1=8)), atol=1e-5)
