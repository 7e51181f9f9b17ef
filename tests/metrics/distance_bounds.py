"""Tolerances for comparing GEMM-expanded distances, derived from the numbers.

Two computations of ``||x||^2 + ||y||^2 - 2 x.y`` (different BLAS kernels, blockings or
thread counts) each lie within ``roundoff_bound`` of the exact value, so they differ by
at most twice that. A Euclidean distance is the square root of such a value, and
``|sqrt(a) - sqrt(b)| <= sqrt(|a - b|)``. A few ulps of the result cover the final
rounding. Nothing here depends on the CPU the test runs on.
"""

from __future__ import annotations

import numpy as np
import torch

from semparts_reid.metrics.distance import roundoff_bound


def gemm_tolerance(q: np.ndarray, g: np.ndarray, metric: str, dtype: type = np.float32
                   ) -> np.ndarray:
    """``(Q, G)`` absolute tolerance between two computations of the distances of
    ``q (Q, D)`` to ``g (G, D)`` in ``dtype`` (cosine: on the L2-normalised rows)."""
    q64, g64 = q.astype(np.float64), g.astype(np.float64)
    if metric == "cosine":
        sq_sum = np.ones((len(q), len(g)))
    else:
        sq_sum = (q64 * q64).sum(1)[:, None] + (g64 * g64).sum(1)[None, :]
    bound = roundoff_bound(torch.from_numpy(sq_sum).to(_torch_dtype(dtype)), q.shape[1])
    diff = 2 * bound.double().numpy()
    ulps = 4 * np.finfo(dtype).eps * np.maximum(1.0, sq_sum)
    return np.sqrt(diff) + ulps if metric == "euclidean" else diff + ulps


def _torch_dtype(dtype: type) -> torch.dtype:
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
