"""Exact k-nearest neighbours among ``N`` items, tile by tile, in ``O(N k)`` memory.

The ``(N, N)`` distance matrix is never held: a provider of :mod:`._tiles` hands it out
in ``(b, b)`` tiles (from features: only the upper triangle, so the search costs half
the matmul and :func:`dense_matrix` rebuilds the very matrix it searched, for
references and tests).

The search keeps ``kc >= k`` running candidates per row. A tile first seen by a row goes
through ``topk``; afterwards only the entries below the row's current ``kc``-th value
(a handful per tile) are extracted and merged. The final order is by
``(transformed value, index)`` -- ties by index -- and is exact: a row whose ``k``-th
value equals its ``kc``-th (a run of ties across the margin) is recomputed in full.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..errors import InputError
from . import _tiles as _tiles_mod
from ._tiles import FeatureTiles, MatrixTiles, Provider
from ._tiles import np_of as _np

__all__ = ["FeatureTiles", "MatrixTiles", "Provider", "dense_matrix", "iter_tiles", "nearest",
           "order", "search"]

PREFETCH = True  # compute the next tile in a background thread (CPU)

Transform = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``transform(raw (r, m), rows (r,))``: the value neighbours are ranked by (monotone)."""


def _col_blocks(prov: Provider) -> list[tuple[int, int]]:
    return getattr(prov, "col_blocks", prov.blocks)


def iter_tiles(prov: Provider):  # noqa: ANN202 - a generator of (rows, cols, tile)
    """Every tile once: for a symmetric provider the diagonal tiles first (every row's
    first candidates then come from a contiguous top-k), then the upper triangle."""
    if prov.symmetric:
        pairs = [(a, a) for a in prov.blocks]
        pairs += [(a, b) for i, a in enumerate(prov.blocks) for b in prov.blocks[i + 1 :]]
    else:
        pairs = [(a, b) for a in prov.blocks for b in _col_blocks(prov)]
    if not PREFETCH or len(pairs) < 2 or not _tiles_mod.numpy_path(prov.device):
        for rows, cols in pairs:
            yield rows, cols, prov.tile(rows, cols)
        return
    # CPU: the next tile's matmul runs while this one is scanned (single-threaded numpy
    # would leave a core idle); two tiles live at a time
    with ThreadPoolExecutor(1) as pool:
        nxt = pool.submit(prov.tile, *pairs[0])
        for i, (rows, cols) in enumerate(pairs):
            t = nxt.result()
            if i + 1 < len(pairs):
                nxt = pool.submit(prov.tile, *pairs[i + 1])
            yield rows, cols, t


def _amax(t: torch.Tensor, axis: int) -> np.ndarray:
    return t.numpy().max(axis=axis) if _tiles_mod.numpy_path(t.device) else _np(t.amax(dim=axis))


def _hits(t: torch.Tensor, thr: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """Entries of ``t`` below the threshold of their row (``axis=1``) or column
    (``axis=0``): ``(owner, other, value)`` with owner the row (resp. column) index."""
    if _tiles_mod.numpy_path(t.device):  # numpy: far cheaper than torch for these passes
        x = t.numpy()
        flat = np.flatnonzero(x < (thr[:, None] if axis == 1 else thr[None, :]))
        i, j = np.divmod(flat, x.shape[1])
        v = x.ravel()[flat]
    else:
        th = torch.from_numpy(thr).to(t.device)
        it, jt = (t < (th[:, None] if axis == 1 else th[None, :])).nonzero().unbind(1)
        i, j, v = _np(it), _np(jt), _np(t[it, jt])
    return (i, j, v) if axis == 1 else (j, i, v)


class _Running:
    """Per row, the ``kc`` smallest ``(value, column)`` seen so far (unordered)."""

    def __init__(self, n: int, kc: int, dtype: np.dtype) -> None:
        self.kc = kc
        self.val = np.full((n, kc), np.inf, dtype=dtype)
        self.idx = np.full((n, kc), -1, dtype=np.int64)
        self.thr = np.full(n, np.inf, dtype=dtype)

    def offer(self, t: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int],
              axis: int) -> None:
        """Offer tile ``t`` to its rows (``axis=1``) or, transposed, to its columns."""
        own, other = (rows, cols) if axis == 1 else (cols, rows)
        thr = self.thr[own[0] : own[1]].copy()
        fresh = np.nonzero(~np.isfinite(thr))[0]
        if len(fresh):  # rows not yet holding kc candidates: plain top-k
            x = t if axis == 1 else t.T
            sel = torch.from_numpy(fresh).to(x.device)
            tv, ti = torch.topk(x[sel], min(self.kc, x.shape[1]), dim=1, largest=False,
                                sorted=False)
            self._merge(np.repeat(fresh + own[0], tv.shape[1]), _np(ti).ravel() + other[0],
                        _np(tv).ravel())
            if len(fresh) == len(thr):
                return
            thr[fresh] = -np.inf  # done above
        o, j, v = _hits(t, thr, axis)
        if len(o):
            self._merge(o + own[0], j + other[0], v)

    def _merge(self, owner: np.ndarray, col: np.ndarray, v: np.ndarray) -> None:
        """Merge ``(owner, col, value)`` triples (any order) into the running lists."""
        if (np.diff(owner) < 0).any():
            o = np.argsort(owner, kind="stable")
            owner, col, v = owner[o], col[o], v[o]
        first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        rows, counts = owner[first], np.diff(np.r_[first, len(owner)])
        slot = np.repeat(np.arange(len(rows)), counts)
        pos = np.arange(len(owner)) - first[slot]
        pv = np.full((len(rows), int(counts.max())), np.inf, dtype=self.val.dtype)
        pi = np.full(pv.shape, -1, dtype=np.int64)
        pv[slot, pos], pi[slot, pos] = v, col
        allv = np.concatenate([self.val[rows], pv], axis=1)
        alli = np.concatenate([self.idx[rows], pi], axis=1)
        keep = np.argpartition(allv, self.kc - 1, axis=1)[:, : self.kc]
        kept = np.take_along_axis(allv, keep, 1)
        self.val[rows], self.idx[rows] = kept, np.take_along_axis(alli, keep, 1)
        self.thr[rows] = kept.max(axis=1)


def _full_rows(prov: Provider, rows: np.ndarray) -> np.ndarray:
    """``(r, N)`` raw rows, from the very tiles the search used (ascending ``rows``)."""
    out = np.empty((len(rows), prov.n), dtype=_np(torch.empty(0, dtype=prov.dtype)).dtype)
    starts = np.array([a for a, _ in prov.blocks])
    which = np.searchsorted(starts, rows, side="right") - 1
    for bi in np.unique(which):
        sel = np.nonzero(which == bi)[0]
        rb = prov.blocks[bi]
        local = torch.from_numpy(rows[sel] - rb[0])
        for cb in _col_blocks(prov):
            if prov.symmetric and cb[0] < rb[0]:
                t = prov.tile(cb, rb).T
            else:
                t = prov.tile(rb, cb)
            out[sel, cb[0] : cb[1]] = _np(t[local.to(t.device)])
    return out


def search(
    prov: Provider,
    kc: int,
    *,
    on_tile: Callable[[tuple[int, int], tuple[int, int], torch.Tensor], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``kc`` raw candidates per row and the row maxima, in one pass over the tiles.

    Returns:
        ``(values (N, kc), indices (N, kc) int64, row_max (N,))`` numpy; the candidates
        are the ``kc`` smallest raw values of each row (unordered, ties arbitrary).
        ``on_tile(rows, cols, tile)`` sees every computed tile.
    """
    run = _Running(prov.n, kc, _np(torch.empty(0, dtype=prov.dtype)).dtype)
    row_max = np.full(prov.n, -np.inf, dtype=run.val.dtype)
    for rows, cols, t in iter_tiles(prov):
        if on_tile is not None:
            on_tile(rows, cols, t)
        r, c = slice(*rows), slice(*cols)
        row_max[r] = np.maximum(row_max[r], _amax(t, 1))
        run.offer(t, rows, cols, axis=1)
        if prov.symmetric and rows != cols:
            row_max[c] = np.maximum(row_max[c], _amax(t, 0))
            run.offer(t, rows, cols, axis=0)
    return run.val, run.idx, row_max


def order(
    prov: Provider,
    val: np.ndarray,
    idx: np.ndarray,
    k: int,
    transform: Transform,
) -> tuple[np.ndarray, np.ndarray]:
    """Sort candidates by ``(transform(value), index)``; exact for the first ``k``.

    Returns:
        ``(indices (N, kc) int64, values (N, kc))``, rows in that order; the first ``k``
        columns are the exact ``k`` nearest (ties by index).
    """
    n, kc = idx.shape
    tv = transform(val, np.arange(n))
    by_idx = np.argsort(idx, axis=1)
    idx, tv = np.take_along_axis(idx, by_idx, 1), np.take_along_axis(tv, by_idx, 1)
    by_val = np.argsort(tv, axis=1, kind="stable")
    idx, tv = np.take_along_axis(idx, by_val, 1), np.take_along_axis(tv, by_val, 1)
    if kc < prov.n:  # a tie run across the margin: the kc cut may have split it
        bad = np.nonzero(tv[:, k - 1] >= tv[:, kc - 1])[0]
        if len(bad):
            full = transform(_full_rows(prov, bad), bad)
            o = np.argsort(full, axis=1, kind="stable")[:, :kc]
            idx[bad], tv[bad] = o, np.take_along_axis(full, o, 1)
    return idx, tv


def nearest(
    features: np.ndarray | torch.Tensor,
    k: int,
    *,
    metric: str = "euclidean",
    normalize: bool = False,
    device: str | torch.device | None = None,
    block: int = 2048,
    margin: int | None = None,
    backend: str = "torch",
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest items of every item (itself included), exact, ties by index.

    Args:
        features: ``(N, D)`` features.
        k: neighbours per item, ``1 <= k <= N``.
        metric: ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"``.
        normalize: L2-normalise the features first.
        device: where the tiles are computed (default: the features' device).
        block: tile side (memory ``O(block^2)``).
        margin: extra candidates kept per row (default ``k``).
        backend: ``"torch"`` (chunked matmul + top-k) or ``"faiss"`` (an exact flat
            faiss index proposes ``k + margin`` candidates, re-scored with our formula;
            needs the optional ``faiss`` extra).

    Returns:
        ``(indices (N, k) int64, distances (N, k))`` numpy, nearest first.
    """
    prov = FeatureTiles([features], metric, block=block, device=device, normalize=normalize,
                        names=["features"])
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= prov.n:
        raise InputError(f"k must be an int in [1, {prov.n}] for {prov.n} items, got {k!r}")
    kc = min(prov.n, k + (k if margin is None else margin))
    if backend == "torch":
        val, idx, _ = search(prov, kc)
    elif backend == "faiss":
        val, idx = faiss_candidates(prov, kc)
    else:
        raise InputError(f"backend must be 'torch' or 'faiss', got {backend!r}")
    i, v = order(prov, val, idx, k, lambda x, _: x)
    return i[:, :k], v[:, :k]


def faiss_candidates(prov: FeatureTiles, kc: int) -> tuple[np.ndarray, np.ndarray]:
    """``kc`` candidates per row from an exact faiss flat index, re-scored by ``prov``."""
    try:
        import faiss  # optional extra: pip install 'semparts-reid[faiss]'
    except ImportError as exc:
        raise InputError("backend='faiss' needs faiss (pip install 'semparts-reid[faiss]'); "
                         "the default backend='torch' needs nothing") from exc
    x = np.ascontiguousarray(prov.features().cpu().numpy().astype(np.float32))
    index = faiss.IndexFlatIP(x.shape[1]) if prov.metric == "cosine" else faiss.IndexFlatL2(
        x.shape[1])
    index.add(x)
    _, cand = index.search(x, kc)
    idx = cand.astype(np.int64)
    val = prov.pairs(np.repeat(np.arange(prov.n), kc), idx.ravel()).reshape(prov.n, kc)
    return val, idx


def dense_matrix(prov: Provider) -> torch.Tensor:
    """The whole ``(N, N)`` matrix the search sees, assembled from the same tiles.

    For references and tests only: ``O(N^2)`` memory.
    """
    out = torch.empty((prov.n, prov.n), dtype=prov.dtype, device=prov.device)
    for rows, cols, t in iter_tiles(prov):
        out[rows[0] : rows[1], cols[0] : cols[1]] = t
        if prov.symmetric:
            out[cols[0] : cols[1], rows[0] : rows[1]] = t.T
    return out
