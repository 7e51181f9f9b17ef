"""Distance tiles for the exact k-nearest-neighbour search of :mod:`.knn`.

A *provider* hands out ``(b_r, b_c)`` tiles of an ``(N, N)`` distance matrix that is
never held whole:

* :class:`FeatureTiles`: from ``(N, D)`` features (given as parts, e.g. query then
  gallery, never concatenated), one ``addmm`` per tile on the CPU or a GPU, through the
  package's one distance kernel :func:`~semparts_reid.metrics.distance.distance_block`.
  The matrix is symmetric *by construction*: only tiles ``(A, B)`` with ``A <= B`` are
  asked for, tile ``(B, A)`` is the transpose and a diagonal tile is mirrored from its
  upper triangle.
* :class:`MatrixTiles`: from the query-gallery, query-query and gallery-gallery matrices
  of :func:`~semparts_reid.metrics.rerank.re_ranking`, read in place. Item ``i`` sees the
  *column* ``i`` of the block matrix ``D = [[qq, qg], [qg^T, gg]]`` (torchreid's
  convention; the same as its row when ``D`` is symmetric).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import InputError
from .distance import EPS, METRICS, distance_block, pair_distances, to_feature_tensor

__all__ = ["FeatureTiles", "MatrixTiles", "Provider", "np_of", "numpy_path"]


def np_of(t: torch.Tensor) -> np.ndarray:
    """A tensor as a numpy array (on the CPU)."""
    return t.detach().cpu().numpy()


def numpy_path(device: torch.device) -> bool:
    """Whether tiles on ``device`` take the numpy code path (CPU) rather than torch's
    (a GPU). One switch, so tests can run the torch path on a CPU."""
    return device.type == "cpu"


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
        ts = [to_feature_tensor(n, p, dev) for n, p in zip(names, parts)]
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
            ts = [t / t.norm(dim=1, keepdim=True).clamp_min(EPS) for t in ts]
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
        t = distance_block(x, y, self.metric, x_sq=x_sq, y_sq=y_sq)
        if rows == cols:  # symmetric by construction: the lower triangle is the upper's
            if numpy_path(self.device):
                _mirror_upper(t.numpy())
            else:
                t = t.triu()
                t += t.triu(1).T
        return t

    def pairs(self, p: np.ndarray, j: np.ndarray) -> np.ndarray:
        """``(m,)`` distances of the pairs ``(p[i], j[i])``: the kernel's formula, per pair
        (:func:`~semparts_reid.metrics.distance.pair_distances`)."""
        out = np.empty(len(p), dtype=np_of(torch.empty(0, dtype=self.dtype)).dtype)
        step = max(1, 2**22 // int(self._parts[0].shape[1]))  # bounded gathers
        for a in range(0, len(p), step):
            fp, fj = self._gather(p[a : a + step]), self._gather(j[a : a + step])
            sq_p = sq_j = None
            if self.metric != "cosine":
                sq_p = self._gather(p[a : a + step], sq=True)
                sq_j = self._gather(j[a : a + step], sq=True)
            d = pair_distances(fp, fj, self.metric, x_sq=sq_p, y_sq=sq_j)
            out[a : a + step] = np_of(d)
        return out

    def _gather(self, idx: np.ndarray, sq: bool = False) -> torch.Tensor:
        """Rows ``idx`` of the stacked parts ``(m, D)`` (``sq``: their squared norms)."""
        src = self._sq if sq else self._parts
        if numpy_path(self.device):  # numpy's take: cheaper than torch indexing
            whole = [s.numpy() for s in src]  # type: ignore[union-attr]
            part = np.searchsorted(self._starts, idx, side="right") - 1
            if len(whole) == 1:
                return torch.from_numpy(whole[0][idx])
            out_np = np.empty((len(idx), *whole[0].shape[1:]), dtype=whole[0].dtype)
            for i, w in enumerate(whole):
                m = np.flatnonzero(part == i)
                out_np[m] = w[idx[m] - self._starts[i]]
            return torch.from_numpy(out_np)
        part = np.searchsorted(self._starts, idx, side="right") - 1
        local = torch.from_numpy(idx - self._starts[part]).to(self.device)
        shape = (len(idx), *src[0].shape[1:])  # type: ignore[union-attr]
        out = torch.empty(shape, dtype=self.dtype, device=self.device)
        for i, t in enumerate(src):
            sel = torch.from_numpy(np.flatnonzero(part == i)).to(self.device)
            if len(sel):
                out[sel] = t.index_select(0, local[sel])  # type: ignore[union-attr]
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
