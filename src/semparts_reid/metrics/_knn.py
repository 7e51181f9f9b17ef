"""Exact k-nearest neighbours among ``N`` items, tile by tile, in ``O(N k)`` memory.

The ``(N, N)`` distance matrix is never held. It is produced in ``(b, b)`` tiles by a
*provider*:

* :class:`FeatureTiles`: from ``(N, D)`` features (given as parts, e.g. query then
  gallery, never concatenated), one ``addmm`` per tile on the CPU or a GPU, with the
  formulas of :func:`~semparts_reid.metrics.distance.compute_distance`. The matrix is
  symmetric *by construction*: only the tiles ``(A, B)`` with ``A <= B`` are computed,
  tile ``(B, A)`` is the transpose and a diagonal tile is mirrored from its upper
  triangle, so the search costs half the matmul and :func:`dense_matrix` rebuilds the
  very matrix it searched (for references and tests).
* :class:`MatrixTiles`: from the query-gallery, query-query and gallery-gallery matrices
  of :func:`~semparts_reid.metrics.rerank.re_ranking`, read in place. Item ``i`` sees the
  *column* ``i`` of the block matrix ``D = [[qq, qg], [qg^T, gg]]`` (torchreid's
  convention; the same as its row when ``D`` is symmetric).

The search keeps ``kc >= k`` running candidates per row. A tile first seen by a row goes
through ``topk``; afterwards only the entries below the row's current ``kc``-th value
(a handful per tile) are extracted and merged. The final order is by
``(transformed value, index)`` -- ties by index -- and is exact: a row whose ``k``-th
value equals its ``kc``-th (a run of ties across the margin) is recomputed in full.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..errors import InputError
from .distance import _EPS, METRICS, _block, _to_tensor

__all__ = ["FeatureTiles", "MatrixTiles", "dense_matrix", "nearest", "search"]

Transform = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``transform(raw (r, m), rows (r,))``: the value neighbours are ranked by (monotone)."""


def _partition(sizes: Sequence[int], block: int) -> list[tuple[int, int]]:
    """Blocks of at most ``block`` items that never straddle two parts."""
    out, start = [], 0
    for size in sizes:
        out += [(start + a, start + min(a + block, size)) for a in range(0, size, block)]
        start += size
    return out


class FeatureTiles:
    """Distance tiles among the rows of ``parts`` (e.g. ``[query, gallery]``), stacked.

    Args:
        parts: ``(N_i, D)`` numpy arrays or tensors (float64 kept, else float32).
        metric: ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"``.
        block: tile side ``b``; memory is ``O(b^2)`` per tile.
        device: where tiles are computed (default: the first tensor's device, else CPU).
        normalize: L2-normalise the features first (``"cosine"`` always does).
    """

    symmetric = True

    def __init__(
        self,
        parts: Sequence[np.ndarray | torch.Tensor],
        metric: str,
        *,
        block: int = 2048,
        device: str | torch.device | None = None,
        normalize: bool = False,
        names: Sequence[str] | None = None,
    ) -> None:
        if metric not in METRICS:
            raise InputError(f"metric must be one of {METRICS}, got {metric!r}")
        names = list(names or [f"features[{i}]" for i in range(len(parts))])
        if device is None:
            device = next((p.device for p in parts if isinstance(p, torch.Tensor)), "cpu")
        dev = torch.device(device)
        ts = [_to_tensor(n, p, dev) for n, p in zip(names, parts)]
        if any(t.dtype == torch.float64 for t in ts):
            ts = [t.to(torch.float64) for t in ts]
        dims = {int(t.shape[1]) for t in ts}
        if len(dims) != 1 or 0 in dims:
            shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(names, ts))
            raise InputError(f"features must share one dimension D >= 1, got {shapes}")
        for n, t in zip(names, ts):  # a cheap sum first: exact test only if it is not finite
            if not bool(torch.isfinite(t.sum())) and not bool(torch.isfinite(t).all()):
                raise InputError(f"{n} of shape {tuple(t.shape)} holds NaN/inf; expected "
                                 "finite features")
        if normalize or metric == "cosine":
            ts = [t / t.norm(dim=1, keepdim=True).clamp_min(_EPS) for t in ts]
        self.metric, self.device, self.dtype = metric, dev, ts[0].dtype
        self.sizes = [int(t.shape[0]) for t in ts]
        self.n = sum(self.sizes)
        self.blocks = _partition(self.sizes, block)
        self._parts = ts
        self._starts = np.cumsum([0, *self.sizes])
        self._sq = [None if metric == "cosine" else (t * t).sum(dim=1) for t in ts]

    def _slice(self, a: int, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        i = int(np.searchsorted(self._starts, a, side="right") - 1)
        s = int(self._starts[i])
        sq = self._sq[i]
        return self._parts[i][a - s : b - s], None if sq is None else sq[a - s : b - s]

    def tile(self, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
        """``(b_r, b_c)`` distances, for ``rows <= cols`` (diagonal tiles symmetrised)."""
        x, x_sq = self._slice(*rows)
        y, y_sq = self._slice(*cols)
        if self.device.type != "cpu":
            t = _block(x, y, y_sq, self.metric)
            if rows == cols:
                t = t.triu()
                t += t.triu(1).T
            return t
        # the formula of distance._block; its element-wise steps in numpy (exact IEEE
        # operations, so the same values, and cheaper than torch's on a busy CPU)
        if self.metric == "cosine":
            t = torch.addmm(torch.ones((), dtype=x.dtype), x, y.T, alpha=-1.0)
            a = t.numpy()
            np.clip(a, 0.0, 2.0, out=a)
        else:
            assert x_sq is not None and y_sq is not None
            t = torch.addmm(y_sq.unsqueeze(0), x, y.T, alpha=-2.0)
            a = t.numpy()
            np.add(a, x_sq.numpy()[:, None], out=a)
            np.maximum(a, 0.0, out=a)
            if self.metric == "euclidean":
                np.sqrt(a, out=a)
        if rows == cols:
            _mirror_upper(a)
        return t

    def pairs(self, p: np.ndarray, j: np.ndarray) -> np.ndarray:
        """``(m,)`` distances of the pairs ``(p[i], j[i])``: the tile formula, per pair."""
        out = np.empty(len(p), dtype=_np(torch.empty(0, dtype=self.dtype)).dtype)
        step = max(1, 2**22 // int(self._parts[0].shape[1]))  # bounded gathers
        for a in range(0, len(p), step):
            fp, fj = self._gather(p[a : a + step]), self._gather(j[a : a + step])
            dot = (fp * fj).sum(dim=1)
            if self.metric == "cosine":
                d = (1.0 - dot).clamp_(0.0, 2.0)
            else:
                sq_p, sq_j = self._gather(p[a : a + step], sq=True), self._gather(
                    j[a : a + step], sq=True)
                d = (sq_j - 2.0 * dot + sq_p).clamp_min_(0.0)
                d = d.sqrt_() if self.metric == "euclidean" else d
            out[a : a + step] = _np(d)
        return out

    def _gather(self, idx: np.ndarray, sq: bool = False) -> torch.Tensor:
        """Rows ``idx`` of the stacked parts ``(m, D)`` (``sq``: their squared norms)."""
        src = self._sq if sq else self._parts
        if self.device.type == "cpu":  # numpy's take: cheaper than torch indexing
            whole = [s.numpy() for s in src]  # type: ignore[union-attr]
            part = np.searchsorted(self._starts, idx, side="right") - 1
            if len(whole) == 1:
                return torch.from_numpy(whole[0][idx])
            out_np = np.empty((len(idx), *whole[0].shape[1:]), dtype=whole[0].dtype)
            for i, w in enumerate(whole):
                m = np.flatnonzero(part == i)
                out_np[m] = w[idx[m] - self._starts[i]]
            return torch.from_numpy(out_np)
        part_t = torch.from_numpy(np.searchsorted(self._starts, idx, side="right") - 1)
        idx_t = torch.from_numpy(idx - self._starts[part_t.numpy()])
        out = torch.empty((len(idx), *src[0].shape[1:]), dtype=self.dtype,  # type: ignore[union-attr]
                          device=self.device)
        for i, t in enumerate(src):
            m = (part_t == i).nonzero().squeeze(1)
            if len(m):
                out[m.to(self.device)] = t.index_select(0, idx_t[m].to(self.device))  # type: ignore[union-attr]
        return out

    def features(self) -> torch.Tensor:
        """The ``(N, D)`` stacked (normalised) features -- a copy, for faiss."""
        return torch.cat(self._parts)


def _mirror_upper(a: np.ndarray, step: int = 256) -> None:
    """Copy the upper triangle of the square ``a`` onto its lower one, in place."""
    for i in range(0, len(a), step):
        for j in range(0, i, step):
            a[i : i + step, j : j + step] = a[j : j + step, i : i + step].T
        d = a[i : i + step, i : i + step]
        low = np.tril_indices(len(d), -1)
        d[low] = d.T[low]


class MatrixTiles:
    """Tiles of ``D^T`` for ``D = [[qq, qg], [qg^T, gg]]``, read from the three matrices.

    Row ``i`` of the provided matrix is column ``i`` of ``D`` (torchreid's orientation).
    The matrices are used in place (numpy views), never concatenated.
    """

    symmetric = False

    def __init__(self, qg: np.ndarray, qq: np.ndarray, gg: np.ndarray, *, block: int = 1024):
        self.qg, self.qq, self.gg = qg, qq, gg
        self.nq, self.ng = qg.shape
        self.n = self.nq + self.ng
        self.sizes = [self.nq, self.ng]
        self.blocks = _partition(self.sizes, block)
        self.col_blocks = _partition(self.sizes, max(self.sizes))  # whole parts
        self.device = torch.device("cpu")
        self.dtype = torch.from_numpy(np.empty(0, np.result_type(qg, qq, gg))).dtype

    def _d(self, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        """``D[rows, cols]`` as a (strided) numpy view; rows/cols within one part."""
        (a, b), (c, d), q = rows, cols, self.nq
        if a < q:
            return self.qq[a:b, c:d] if c < q else self.qg[a:b, c - q : d - q]
        return self.qg[c:d, a - q : b - q].T if c < q else self.gg[a - q : b - q, c - q : d - q]

    def tile(self, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
        """``(b_r, b_c)`` tile: ``D[cols, rows]^T``."""
        return torch.from_numpy(np.ascontiguousarray(self._d(cols, rows).T))

    def pairs(self, p: np.ndarray, j: np.ndarray) -> np.ndarray:
        """``D[j, p]`` for each pair."""
        pn, jn, q = p, j, self.nq
        out = np.empty(len(pn), dtype=np.result_type(self.qg, self.qq, self.gg))
        for pq in (True, False):
            for jq in (True, False):
                m = ((pn < q) == pq) & ((jn < q) == jq)
                pp, jj = pn[m] - (0 if pq else q), jn[m] - (0 if jq else q)
                if jq and pq:
                    out[m] = self.qq[jj, pp]
                elif jq:
                    out[m] = self.qg[jj, pp]
                elif pq:
                    out[m] = self.qg[pp, jj]
                else:
                    out[m] = self.gg[jj, pp]
        return out


Provider = FeatureTiles | MatrixTiles


def _col_blocks(prov: Provider) -> list[tuple[int, int]]:
    return getattr(prov, "col_blocks", prov.blocks)


def _tiles(prov: Provider):  # noqa: ANN202 - a generator of (rows, cols, tile)
    """Every tile once: for a symmetric provider the diagonal tiles first (every row's
    first candidates then come from a contiguous top-k), then the upper triangle."""
    if prov.symmetric:
        pairs = [(a, a) for a in prov.blocks]
        pairs += [(a, b) for i, a in enumerate(prov.blocks) for b in prov.blocks[i + 1 :]]
    else:
        pairs = [(a, b) for a in prov.blocks for b in _col_blocks(prov)]
    for rows, cols in pairs:
        yield rows, cols, prov.tile(rows, cols)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _amax(t: torch.Tensor, axis: int) -> np.ndarray:
    return t.numpy().max(axis=axis) if t.device.type == "cpu" else _np(t.amax(dim=axis))


def _hits(t: torch.Tensor, thr: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """Entries of ``t`` below the threshold of their row (``axis=1``) or column
    (``axis=0``): ``(owner, other, value)`` with owner the row (resp. column) index."""
    if t.device.type == "cpu":  # numpy: far cheaper than torch for these passes
        x = t.numpy()
        flat = np.flatnonzero(x < (thr[:, None] if axis == 1 else thr[None, :]))
        i, j = np.divmod(flat, x.shape[1])
        v = x.ravel()[flat]
    else:
        th = torch.from_numpy(thr).to(t.device)
        i, j = (t < (th[:, None] if axis == 1 else th[None, :])).nonzero().unbind(1)
        v = _np(t[i, j])
        i, j = _np(i), _np(j)
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
            v, i = torch.topk(x[sel], min(self.kc, x.shape[1]), dim=1, largest=False,
                              sorted=False)
            self._merge(np.repeat(fresh + own[0], v.shape[1]), _np(i).ravel() + other[0],
                        _np(v).ravel())
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
    for rows, cols, t in _tiles(prov):
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
    for rows, cols, t in _tiles(prov):
        out[rows[0] : rows[1], cols[0] : cols[1]] = t
        if prov.symmetric:
            out[cols[0] : cols[1], rows[0] : rows[1]] = t.T
    return out
