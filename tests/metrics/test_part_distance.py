"""part_aware_distance against a per-pair loop reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semparts_reid.metrics.distance import compute_distance
from semparts_reid.metrics.part_distance import (
    iter_part_aware_distance_chunks,
    part_aware_distance,
)


def make(num: int, k: int = 3, d: int = 8, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    glob = rng.normal(size=(num, d)).astype(np.float32)
    parts = rng.normal(size=(num, k, d)).astype(np.float32)
    vis = (rng.random((num, k)) > 0.4).astype(np.float32)
    vis[0] = 0.0  # a query/gallery item with no visible part at all
    return glob, parts, vis


def loop_reference(qg, gg, qp, gp, qv, gv, metric: str, lam: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    def dist(a: np.ndarray, b: np.ndarray) -> float:
        return float(compute_distance(a[None], b[None], metric)[0, 0])

    out = np.zeros((len(qg), len(gg)), dtype=np.float64)
    for i in range(len(qg)):
        for j in range(len(gg)):
            d_glob = dist(qg[i], gg[j])
            shared = [k for k in range(qp.shape[1]) if qv[i, k] > 0 and gv[j, k] > 0]
            if not shared:
                out[i, j] = d_glob
            else:
                d_parts = np.mean([dist(qp[i, k], gp[j, k]) for k in shared])
                out[i, j] = (1 - lam) * d_glob + lam * d_parts
    return out


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("chunk_size", [None, 3])
def test_matches_loop_reference(metric: str, chunk_size: int | None) -> None:
    qg, qp, qv = make(7, seed=1)
    gg, gp, gv = make(9, seed=2)
    got = part_aware_distance(
        qg, gg, qp, gp, qv, gv, metric, part_weight=0.3, chunk_size=chunk_size
    )
    assert isinstance(got, np.ndarray) and got.shape == (7, 9) and got.dtype == np.float32
    ref = loop_reference(qg, gg, qp, gp, qv, gv, metric, 0.3)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # query 0 and gallery 0 share no visible part: plain global distance
    glob = compute_distance(qg, gg, metric)
    np.testing.assert_allclose(got[0], glob[0], rtol=1e-6)
    np.testing.assert_allclose(got[:, 0], glob[:, 0], rtol=1e-6)


def test_torch_inputs_chunks_and_limits() -> None:
    qg, qp, qv = (torch.from_numpy(a) for a in make(5, seed=3))
    gg, gp, gv = (torch.from_numpy(a) for a in make(6, seed=4))
    full = part_aware_distance(qg, gg, qp, gp, qv, gv)
    assert isinstance(full, torch.Tensor) and full.dtype == torch.float32
    blocks = list(iter_part_aware_distance_chunks(qg, gg, qp, gp, qv, gv, chunk_size=2))
    assert [(a, b) for a, b, _ in blocks] == [(0, 2), (2, 4), (4, 5)]
    torch.testing.assert_close(torch.cat([d for _, _, d in blocks]), full)
    torch.testing.assert_close(
        part_aware_distance(qg, gg, qp, gp, qv, gv, part_weight=0.0), compute_distance(qg, gg)
    )
    # K = 0 (the global-only baseline) is the global distance
    no_parts = part_aware_distance(qg, gg, qp[:, :0], gp[:, :0], qv[:, :0], gv[:, :0])
    torch.testing.assert_close(no_parts, compute_distance(qg, gg))
    empty = part_aware_distance(qg[:0], gg, qp[:0], gp, qv[:0], gv)
    assert empty.shape == (0, 6)
    f64 = part_aware_distance(qg.double(), gg.double(), qp.double(), gp.double(), qv, gv)
    assert f64.dtype == torch.float64


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        ({"qp": np.zeros((4, 3, 8), np.float32)}, ValueError, "query_parts"),
        ({"gv": np.ones((6, 2), np.float32)}, ValueError, "gallery_visibility"),
        ({"qv": np.full((5, 3), 2.0, np.float32)}, ValueError, r"\[0, 1\]"),
        ({"gp": np.zeros((6, 3, 5), np.float32)}, ValueError, "feature dims"),
        ({"qg": [[1.0]]}, TypeError, "query_global"),
        ({"qg": np.zeros(5, np.float32)}, ValueError, r"\(Q, D\)"),
        ({"lam": 1.5}, ValueError, "part_weight"),
    ],
)
def test_errors(change: dict, exc: type, match: str) -> None:
    qg, qp, qv = make(5, seed=5)
    gg, gp, gv = make(6, seed=6)
    args = {"qg": qg, "gg": gg, "qp": qp, "gp": gp, "qv": qv, "gv": gv, "lam": 0.5}
    args.update(change)
    with pytest.raises(exc, match=match):
        part_aware_distance(
            args["qg"],
            args["gg"],
            args["qp"],
            args["gp"],
            args["qv"],
            args["gv"],
            part_weight=args["lam"],
        )
