"""Private input handling of the evaluator: label checks, distance blocks, finiteness."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def labels(name: str, x: object, n: int, what: str) -> np.ndarray:
    """``(n,)`` int64 labels from a list/array/tensor; integral floats are accepted."""
    if isinstance(x, torch.Tensor):
        arr = x.detach().cpu().numpy()
    else:
        arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D with one entry per {what}, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(
            f"{name} has shape {arr.shape} but there are {n} {what} items: expected ({n},)"
        )
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
        return arr.astype(np.int64)
    raise ValueError(f"{name} must hold integers, got shape {arr.shape} and dtype {arr.dtype}")


def as_dist_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A 2-D real tensor view of a ``(Q, G)`` distance matrix (no copy for numpy)."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "iubf":
            raise TypeError(f"distmat must be a real numeric array, got dtype {x.dtype}")
        t = torch.from_numpy(x)
    else:
        t = x.detach()
        if t.is_complex():
            raise TypeError(f"distmat must be real-valued, got dtype {t.dtype}")
    if t.ndim != 2:
        raise ValueError(
            f"distmat must have shape (num_query, num_gallery), got shape {tuple(t.shape)}"
        )
    return t


def to_numpy_block(block: torch.Tensor | np.ndarray) -> np.ndarray:
    """A C-contiguous float32/float64 numpy copy or view of a block of distances."""
    if isinstance(block, torch.Tensor):
        if block.dtype != torch.float64:
            block = block.to(torch.float32 if block.is_floating_point() else torch.float64)
        return np.ascontiguousarray(block.cpu().numpy())
    if block.dtype != np.float64:
        block = block.astype(np.float32 if block.dtype.kind == "f" else np.float64)
    return np.ascontiguousarray(block)


def matrix_blocks(
    dist: np.ndarray | torch.Tensor, chunk_size: int, keep: np.ndarray | None
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Row blocks ``(start, stop, (stop - start, G') float array)``, columns ``keep`` only."""
    keep_t = None
    if keep is not None and isinstance(dist, torch.Tensor):
        keep_t = torch.from_numpy(keep).to(dist.device)
    for a in range(0, dist.shape[0], chunk_size):
        b = min(a + chunk_size, dist.shape[0])
        block = dist[a:b]
        if keep_t is not None:
            block = block.index_select(1, keep_t)  # type: ignore[union-attr]
        elif keep is not None:
            block = block[:, keep]
        yield a, b, to_numpy_block(block)


def check_finite_distances(
    block: np.ndarray, start: int, shape: tuple[int, ...], source: str
) -> None:
    """Raise ``ValueError`` (with the first bad position) if ``block`` holds NaN/inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(block.sum()):  # one cheap pass; overflow falls through to the exact test
            return
    bad = ~np.isfinite(block)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{source} of shape {shape} holds {int(bad.sum())}+ NaN/inf value(s), first at "
            f"[{start + row}, {col}]; expected finite distances"
        )


def check_int(name: str, value: object, low: int) -> int:
    """``value`` as an int ``>= low`` (bools rejected), else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)
