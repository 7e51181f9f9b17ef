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

__all__ = ["METRICS", "compute_distance", "iter_distance_chunks"]

Metric = Literal["cosine", "euclidean", "sqeuclidean"]
METRICS: tuple[str, ...] = ("cosine", "euclidean", "sqeuclidean")


_EPS = 1e-12


def _describe(x: object) -> str:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    return (
        f"{type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"
        if shape is not None
        else type(x).__name__
    )


def _to_tensor(name: str, x: object, device: torch.device | None) -> torch.Tensor:
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
    q = _to_tensor("query", query, device)
    g = _to_tensor("gallery", gallery, device)
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
        q = q / q.norm(dim=1, keepdim=True).clamp_min(_EPS)
        g = g / g.norm(dim=1, keepdim=True).clamp_min(_EPS)
    return q, g, as_torch


def _block(
    q: torch.Tensor, g: torch.Tensor, g_sq: torch.Tensor | None, metric: str
) -> torch.Tensor:
    """Distances of a query block ``q (c, D)`` to all of ``g (G, D)``, shape ``(c, G)``."""
    if metric == "cosine":
        # 1 - q g^T, written into one buffer
        out = torch.addmm(torch.ones((), dtype=q.dtype, device=q.device), q, g.T, alpha=-1.0)
        return out.clamp_(0.0, 2.0)
    assert g_sq is not None
    q_sq = (q * q).sum(dim=1, keepdim=True)
    out = torch.addmm(g_sq.unsqueeze(0), q, g.T, alpha=-2.0).add_(q_sq).clamp_min_(0.0)
    if metric == "euclidean":
        out.sqrt_()
    return out


def _iter_blocks(
    q: torch.Tensor, g: torch.Tensor, metric: str, chunk_size: int
) -> Iterator[tuple[int, int, torch.Tensor]]:
    g_sq = None if metric == "cosine" else (g * g).sum(dim=1)
    for start in range(0, q.shape[0], chunk_size):
        stop = min(start + chunk_size, q.shape[0])
        yield start, stop, _block(q[start:stop], g, g_sq, metric)


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
        out = _block(q, g, g_sq, metric)
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


def _prepared_blocks(
    query: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    metric: str,
    chunk_size: int,
) -> tuple[int, int, Iterator[tuple[int, int, torch.Tensor]]]:
    """Validate once and return ``(Q, G, blocks)`` with torch blocks (internal helper)."""
    q, g, _ = _prepare(query, gallery, metric, chunk_size)
    return q.shape[0], g.shape[0], _iter_blocks(q, g, metric, chunk_size)
