"""compute_distance / iter_distance_chunks against direct formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from distance_bounds import gemm_tolerance

from semparts_reid.metrics.distance import (
    compute_distance,
    distance_block,
    iter_distance_chunks,
    pair_distances,
    roundoff_bound,
)


def _direct(q: np.ndarray, g: np.ndarray, metric: str) -> np.ndarray:
    q, g = q.astype(np.float64), g.astype(np.float64)
    if metric == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ gn.T
    sq = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    return np.sqrt(sq) if metric == "euclidean" else sq


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_direct_formula(metric: str, dtype: type) -> None:
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(9, 5)).astype(dtype), rng.normal(size=(13, 5)).astype(dtype)
    out = compute_distance(q, g, metric)
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == (9, 13)
    tol = gemm_tolerance(q, g, metric, dtype)
    assert (np.abs(out - _direct(q, g, metric)) <= tol).all()
    chunked = compute_distance(q, g, metric, chunk_size=4)
    assert (np.abs(chunked - out) <= tol).all()


def test_torch_in_torch_out_and_mixed() -> None:
    rng = np.random.default_rng(1)
    q, g = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    t = compute_distance(torch.from_numpy(q), torch.from_numpy(g), "euclidean")
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    mixed = compute_distance(q, torch.from_numpy(g).float(), "euclidean")
    assert isinstance(mixed, torch.Tensor) and mixed.dtype == torch.float64
    np.testing.assert_allclose(t.numpy(), _direct(q, g, "euclidean"), atol=1e-10)
    half = compute_distance(torch.from_numpy(q).half(), torch.from_numpy(g).half())
    assert half.dtype == torch.float32


def test_zero_vector_cosine_and_self_distance() -> None:
    q = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    out = compute_distance(q, q, "cosine")
    np.testing.assert_allclose(out, [[1.0, 1.0], [1.0, 0.0]], atol=1e-6)
    e = compute_distance(q, q, "euclidean")
    assert (e >= 0).all() and e[1, 1] == 0.0


def test_iter_chunks_cover_the_matrix() -> None:
    rng = np.random.default_rng(2)
    q, g = rng.normal(size=(10, 4)).astype(np.float32), rng.normal(size=(7, 4)).astype(np.float32)
    full = compute_distance(q, g, "sqeuclidean")
    seen = []
    for start, stop, block in iter_distance_chunks(q, g, "sqeuclidean", chunk_size=3):
        assert isinstance(block, np.ndarray) and block.shape == (stop - start, 7)
        tol = gemm_tolerance(q[start:stop], g, "sqeuclidean")
        assert (np.abs(block - full[start:stop]) <= tol).all()
        seen.append((start, stop))
    assert seen == [(0, 3), (3, 6), (6, 9), (9, 10)]
    blocks = list(iter_distance_chunks(torch.from_numpy(q), g, chunk_size=100))
    assert len(blocks) == 1 and isinstance(blocks[0][2], torch.Tensor)


def test_errors() -> None:
    q, g = np.ones((2, 3)), np.ones((4, 3))
    with pytest.raises(ValueError, match="metric must be one of"):
        compute_distance(q, g, "l1")
    with pytest.raises(
        ValueError, match=r"query must have shape \(N, D\), got ndarray of shape \(3,\)"
    ):
        compute_distance(np.ones(3), g)
    with pytest.raises(
        ValueError, match=r"got query of shape \(2, 3\) and gallery of shape \(4, 5\)"
    ):
        compute_distance(q, np.ones((4, 5)))
    bad = g.copy()
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match=r"gallery of shape \(4, 3\) holds 1 NaN/inf"):
        compute_distance(q, bad)
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        compute_distance(q, g, chunk_size=0)
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        iter_distance_chunks(q, g, chunk_size=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="query must be a numpy array or a torch tensor"):
        compute_distance([[1.0]], g)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must hold numbers"):
        compute_distance(np.array([["a"]]), g)
    with pytest.raises(ValueError, match="D >= 1"):
        compute_distance(np.ones((2, 0)), np.ones((3, 0)))


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_self_pairs_and_duplicates_are_exactly_zero(metric: str, dtype: torch.dtype,
                                                    scale: float) -> None:
    # large norms make ||x||^2 + ||y||^2 - 2 x.y cancel catastrophically: the kernel must
    # still give exactly 0 where the items are equal, whatever BLAS kernel ran the GEMM
    g = torch.Generator().manual_seed(3)
    f = (torch.randn(70, 64, generator=g, dtype=torch.float64) * scale + scale).to(dtype)
    f[50:] = f[:20]
    x = f / f.norm(dim=1, keepdim=True) if metric == "cosine" else f
    d = distance_block(x, x, metric)
    assert (d.diagonal() == 0).all()
    assert (d[torch.arange(20), torch.arange(50, 70)] == 0).all()
    assert (d[torch.arange(50, 70), torch.arange(20)] == 0).all()
    assert (compute_distance(f, f, metric).diagonal() == 0).all()
    assert (pair_distances(x[:20], x[50:], metric) == 0).all()


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean"])
def test_kernel_is_within_its_roundoff_bound_of_float64(metric: str) -> None:
    rng = np.random.default_rng(4)
    q = (rng.normal(size=(33, 128)) * 30 + 10).astype(np.float32)
    g = (rng.normal(size=(41, 128)) * 30 + 10).astype(np.float32)
    g[:5] = q[:5] + np.float32(1e-3)  # near-duplicates: refined entries and GEMM ones mix
    exact = _direct(q, g, metric)
    got = compute_distance(q, g, metric)
    assert (np.abs(got - exact) <= gemm_tolerance(q, g, metric)).all()
    x, y = torch.from_numpy(q[:5]), torch.from_numpy(g[:5])
    if metric == "cosine":  # the kernels take unit vectors for cosine
        x, y = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
    pairs = pair_distances(x, y, metric)
    assert (np.abs(pairs.numpy() - np.diagonal(exact)[:5])
            <= np.diagonal(gemm_tolerance(q[:5], g[:5], metric))).all()


def test_roundoff_bound_follows_the_dimension_and_dtype() -> None:
    one = torch.ones(())
    assert float(roundoff_bound(one, 10)) == pytest.approx(28 * np.finfo(np.float32).eps / 2)
    assert float(roundoff_bound(one.double(), 10)) == pytest.approx(
        28 * np.finfo(np.float64).eps / 2)
