"""Pairwise distances between query and gallery features, whole or chunked over queries.

Three metrics are offered:

* ``"cosine"``: ``1 - cos(q, g)``; features are L2-normalised inside (a zero vector
  stays zero, so its distance to everything is exactly 1). Range ``[0, 2]``.
* ``"euclidean"``: ``||q - g||_2``.
* ``"sqeuclidean"``: ``||q - g||_2 ** 2``.

Both entry points accept numpy arrays or torch tensors (any device). The result has the
type of the inputs: a torch tensor when either input is a tensor (numpy inputs are then
moved to that tensor's device), a numpy array otherwise. float64 inputs give float64
distances; every other dtype (float16, bfloat16, float32, integers) is computed and
returned in float32.

:func:`iter_distance_chunks` yields the matrix a block of query rows at a time, so a
caller that reduces each block (the evaluator, a nearest-neighbour search) never holds
the whole ``(Q, G)`` matrix: peak memory is ``O(chunk_size * G)``.

Example:
    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    >>> g = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]], dtype=np.float32)
    >>> compute_distance(q, g, "euclidean").round(3)
    array([[0.   , 1.   , 1.414],
           [2.236, 1.414, 3.   ]], dtype=float32)
    >>> compute_distance(q, g, "cosine").round(3)
    array([[0.   , 0.293, 1.   ],
           [1.   , 0.293, 2.   ]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, overload

import numpy as np
import torch

__all__ = ["EPS", "METRICS", "compute_distance", "distance_block", "iter_distance_chunks",
           "pair_distances", "roundoff_bound", "to_feature_tensor"]

Metric = Literal["cosine", "euclidean", "sqeuclidean"]
METRICS: tuple[str, ...] = ("cosine", "euclidean", "sqeuclidean")


#: the smallest norm a feature is divided by when it is L2-normalised
EPS = 1e-12


def _describe(x: object) -> str:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    return (
        f"{type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"
        if shape is not None
        else type(x).__name__
    )


def to_feature_tensor(name: str, x: object, device: torch.device | None) -> torch.Tensor:
    """Convert ``x`` to a 2-D floating tensor (float64 kept, everything else float32)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise TypeError(f"{name} must hold numbers, got {_describe(x)}")
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise TypeError(
            f"{name} must be a numpy array or a torch tensor of shape (N, D), got {_describe(x)}"
        )
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {_describe(x)}")
    if t.is_complex():
        raise TypeError(f"{name} must be real-valued, got {_describe(x)}")
    if device is not None and t.device != device:
        t = t.to(device)
    if t.dtype != torch.float64:
        t = t.to(torch.float32)
    return t


def _prepare(
    query: object, gallery: object, metric: str, chunk_size: int | None
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    as_torch = isinstance(query, torch.Tensor) or isinstance(gallery, torch.Tensor)
    device = None
    if isinstance(query, torch.Tensor):
        device = query.device
    elif isinstance(gallery, torch.Tensor):
        device = gallery.device
    q = to_feature_tensor("query", query, device)
    g = to_feature_tensor("gallery", gallery, device)
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"query and gallery must have the same feature dimension D, got query of shape "
            f"{tuple(q.shape)} and gallery of shape {tuple(g.shape)}"
        )
    if q.shape[1] == 0:
        raise ValueError(f"features must have D >= 1, got query of shape {tuple(q.shape)}")
    if q.dtype != g.dtype:  # one is float64: compute both in float64
        q, g = q.to(torch.float64), g.to(torch.float64)
    for name, t in (("query", q), ("gallery", g)):
        # one cheap reduction; only a non-finite sum (NaN/inf, or overflow) needs the exact test
        if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(
                f"{name} of shape {tuple(t.shape)} holds {bad} NaN/inf value(s); "
                "expected finite features"
            )
    if metric == "cosine":
        q = q / q.norm(dim=1, keepdim=True).clamp_min(EPS)
        g = g / g.norm(dim=1, keepdim=True).clamp_min(EPS)
    return q, g, as_torch


def roundoff_bound(sq_sum: torch.Tensor, dim: int) -> torch.Tensor:
    """Largest error of a GEMM-expanded squared distance, from ``||x||^2 + ||y||^2``.

    ``||x||^2 + ||y||^2 - 2 x.y`` computed in floating point with unit roundoff ``u``:
    each of the three length-``D`` sums errs by at most ``gamma_D ~ D u`` times its
    magnitude (``|x.y| <= (||x||^2 + ||y||^2) / 2``), and the two additions, the
    doubling and the clamp add a few ``u`` more, so the computed value is within
    ``(2 D + 8) u (||x||^2 + ||y||^2)`` of the exact one, whatever the BLAS kernel,
    its blocking or its thread count. A computed value at or below this bound cannot be
    told apart from 0. (Cosine distances of unit vectors: pass ``sq_sum = 1``.)

    Args:
        sq_sum: ``||x||^2 + ||y||^2``, any shape (float32 or float64).
        dim: the feature dimension ``D``.
    """
    u = torch.finfo(sq_sum.dtype).eps / 2
    return sq_sum * ((2 * dim + 8) * u)


def _refine_small(
    out: torch.Tensor, x: torch.Tensor, y: torch.Tensor, x_sq: torch.Tensor,
    y_sq: torch.Tensor, metric: str,
) -> None:
    """Recompute in place, from the differences, the entries of ``out`` that are within
    the GEMM's round-off of 0 (:func:`roundoff_bound`): an item and its exact duplicate
    (itself included) then come out as exactly 0 on every machine."""
    dim = x.shape[1]
    # a cheap pre-filter (one pass, a bound per row), then each hit's own bound
    loose = roundoff_bound(x_sq.unsqueeze(1) + y_sq.max(), dim)
    i, j = (out <= loose).nonzero(as_tuple=True)
    if i.numel() == 0:
        return
    keep = out[i, j] <= roundoff_bound(x_sq[i] + y_sq[j], dim)
    i, j = i[keep], j[keep]
    out[i, j] = _direct(x[i], y[j], metric)


def _direct(x: torch.Tensor, y: torch.Tensor, metric: str) -> torch.Tensor:
    """``(m,)`` distances of the row pairs from their differences (no cancellation):
    ``||x - y||^2``, or half of it for cosine (unit vectors)."""
    d = (x - y).square_().sum(dim=1)
    return d.mul_(0.5) if metric == "cosine" else d


def distance_block(
    x: torch.Tensor,
    y: torch.Tensor,
    metric: str,
    *,
    x_sq: torch.Tensor | None = None,
    y_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """The one distance kernel: ``(m, n)`` distances between the rows of ``x`` and ``y``.

    Every distance of the package comes from here: :func:`compute_distance`, the
    chunked evaluation, the k-nearest-neighbour tiles of the k-reciprocal encoding and
    re-ranking, so they agree by construction. One GEMM gives
    ``||x||^2 + ||y||^2 - 2 x.y`` (``1 - x.y`` for cosine); the entries within the GEMM's
    round-off of 0 (:func:`roundoff_bound`, from the norms and the machine epsilon) are
    recomputed from ``x - y``, so self-pairs and exact duplicates are exactly 0 whatever
    the BLAS kernel or thread count.

    Args:
        x: ``(m, D)`` float32/float64 features (L2-normalised already for ``"cosine"``).
        y: ``(n, D)`` features, same dtype and device.
        metric: ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"``.
        x_sq / y_sq: ``(m,)`` / ``(n,)`` squared norms if the caller has them (computed
            here otherwise; ignored for cosine, whose inputs have norm 1).

    Returns:
        ``(m, n)`` tensor of ``x``'s dtype and device.
    """
    if metric == "cosine":
        # 1 - x y^T, written into one buffer; unit vectors, so ||x - y||^2 / 2 near 0
        out = torch.addmm(torch.ones((), dtype=x.dtype, device=x.device), x, y.T, alpha=-1.0)
        out.clamp_(0.0, 2.0)
        half_x = torch.full((x.shape[0],), 0.5, dtype=x.dtype, device=x.device)
        half_y = torch.full((y.shape[0],), 0.5, dtype=y.dtype, device=y.device)
        _refine_small(out, x, y, half_x, half_y, metric)
        return out
    x_sq = (x * x).sum(dim=1) if x_sq is None else x_sq
    y_sq = (y * y).sum(dim=1) if y_sq is None else y_sq
    out = torch.addmm(y_sq.unsqueeze(0), x, y.T, alpha=-2.0).add_(x_sq.unsqueeze(1))
    out.clamp_min_(0.0)
    _refine_small(out, x, y, x_sq, y_sq, metric)
    if metric == "euclidean":
        out.sqrt_()
    return out


def pair_distances(
    x: torch.Tensor, y: torch.Tensor, metric: str, *, x_sq: torch.Tensor | None = None,
    y_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(m,)`` distances of the row pairs ``(x[i], y[i])``: :func:`distance_block`'s
    formula and round-off rule, one pair per row (for gathered candidate pairs)."""
    dim = x.shape[1]
    dot = (x * y).sum(dim=1)
    if metric == "cosine":
        d = (1.0 - dot).clamp_(0.0, 2.0)
        small = d <= roundoff_bound(torch.ones_like(d), dim)
    else:
        x_sq = (x * x).sum(dim=1) if x_sq is None else x_sq
        y_sq = (y * y).sum(dim=1) if y_sq is None else y_sq
        d = (y_sq - 2.0 * dot + x_sq).clamp_min_(0.0)
        small = d <= roundoff_bound(x_sq + y_sq, dim)
    if bool(small.any()):
        d[small] = _direct(x[small], y[small], metric)
    if metric == "euclidean":
        d = d.sqrt_()
    return d


def _iter_blocks(
    q: torch.Tensor, g: torch.Tensor, metric: str, chunk_size: int
) -> Iterator[tuple[int, int, torch.Tensor]]:
    g_sq = None if metric == "cosine" else (g * g).sum(dim=1)
    for start in range(0, q.shape[0], chunk_size):
        stop = min(start + chunk_size, q.shape[0])
        yield start, stop, distance_block(q[start:stop], g, metric, y_sq=g_sq)


@overload
def compute_distance(
    query: np.ndarray, gallery: np.ndarray, metric: str = ..., *, chunk_size: int | None = ...
) -> np.ndarray: ...
@overload
def compute_distance(
    query: torch.Tensor,
    gallery: torch.Tensor | np.ndarray,
    metric: str = ...,
    *,
    chunk_size: int | None = ...,
) -> torch.Tensor: ...
@overload
def compute_distance(
    query: np.ndarray, gallery: torch.Tensor, metric: str = ..., *, chunk_size: int | None = ...
) -> torch.Tensor: ...
def compute_distance(
    query: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    metric: str = "cosine",
    *,
    chunk_size: int | None = None,
) -> np.ndarray | torch.Tensor:
    """Pairwise distance matrix between query and gallery features.

    Args:
        query: ``(Q, D)`` features, numpy array or torch tensor.
        gallery: ``(G, D)`` features, same kind.
        metric: ``"cosine"`` (``1 - cosine similarity``, features L2-normalised
            inside), ``"euclidean"`` or ``"sqeuclidean"``.
        chunk_size: compute ``chunk_size`` query rows at a time. The ``(Q, G)`` result
            is still allocated whole; chunking only bounds the temporaries. Use
            :func:`iter_distance_chunks` to avoid the full matrix. ``None``: one block.

    Returns:
        ``(Q, G)`` distances; a torch tensor (on the input's device) if either input is
        a tensor, else a numpy array. float64 if an input is float64, else float32.

    Raises:
        ValueError: unknown metric, inputs not 2-D, different feature dimensions,
            NaN/inf features, bad ``chunk_size``.
        TypeError: inputs that are neither numpy arrays nor tensors, or non-numeric.
    """
    q, g, as_torch = _prepare(query, gallery, metric, chunk_size)
    if chunk_size is None or chunk_size >= q.shape[0]:
        g_sq = None if metric == "cosine" else (g * g).sum(dim=1)
        out = distance_block(q, g, metric, y_sq=g_sq)
    else:
        out = torch.empty((q.shape[0], g.shape[0]), dtype=q.dtype, device=q.device)
        for start, stop, block in _iter_blocks(q, g, metric, chunk_size):
            out[start:stop] = block
    return out if as_torch else out.cpu().numpy()


def iter_distance_chunks(
    query: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    metric: str = "cosine",
    chunk_size: int = 1024,
) -> Iterator[tuple[int, int, np.ndarray | torch.Tensor]]:
    """Yield the query-gallery distance matrix one block of query rows at a time.

    Inputs are validated (and cosine features normalised) once, before the first block.

    Args:
        query: ``(Q, D)`` features, numpy array or torch tensor.
        gallery: ``(G, D)`` features, same kind.
        metric: ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"`` (see
            :func:`compute_distance`).
        chunk_size: number of query rows per block (the last block may be shorter).

    Yields:
        ``(start, stop, dist)`` where ``dist`` has shape ``(stop - start, G)`` and equals
        ``compute_distance(query, gallery, metric)[start:stop]``; same type rules as
        :func:`compute_distance`. Peak memory is ``O(chunk_size * G)``.

    Example:
        >>> import numpy as np
        >>> q, g = np.eye(5, 3, dtype=np.float32), np.eye(4, 3, dtype=np.float32)
        >>> [(a, b, d.shape) for a, b, d in iter_distance_chunks(q, g, chunk_size=2)]
        [(0, 2, (2, 4)), (2, 4, (2, 4)), (4, 5, (1, 4))]
    """
    if chunk_size is None:
        raise ValueError("chunk_size must be a positive int for iter_distance_chunks, got None")
    q, g, as_torch = _prepare(query, gallery, metric, chunk_size)
    return _convert_blocks(_iter_blocks(q, g, metric, chunk_size), as_torch)


def _convert_blocks(
    blocks: Iterator[tuple[int, int, torch.Tensor]], as_torch: bool
) -> Iterator[tuple[int, int, np.ndarray | torch.Tensor]]:
    for start, stop, block in blocks:
        yield start, stop, (block if as_torch else block.cpu().numpy())


def prepared_blocks(
    query: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    metric: str,
    chunk_size: int,
) -> tuple[int, int, Iterator[tuple[int, int, torch.Tensor]]]:
    """Validate once and return ``(Q, G, blocks)`` with torch blocks (internal helper)."""
    q, g, _ = _prepare(query, gallery, metric, chunk_size)
    return q.shape[0], g.shape[0], _iter_blocks(q, g, metric, chunk_size)
