"""Re-association in one camera's video: find a person again after ``gap`` frames.

The detections of a video (one row per person per frame, with an identity and a frame
index) are both the queries and the gallery:

* **queries**: the detections in frames ``t`` with ``(t - t0) % stride == 0``, ``t0`` the
  first frame of the detection's group (its sequence; all detections when ``groups`` is
  None);
* **gallery of a query** at frame ``t``: every detection of the same group whose frame
  ``f`` satisfies ``|f - t| >= gap`` (so the query itself and the frames around it are
  out: the task is to find the person again later or earlier, not in the next frame);
* **true matches**: gallery detections with the query's identity; a query without any is
  not valid: it is left out of the averages and counted;
* ranking: gallery items by ascending distance, ties broken by gallery index;
  with ``r_1 < ... < r_m`` the 0-based positions of the ``m`` matches,
  R1 = ``[r_1 == 0]``, AP = ``mean_t t / (r_t + 1)``, RR = ``1 / (r_1 + 1)``;
  R1, mAP and MRR are their means over the valid queries.

Pure numpy/torch; the ``(Q, N)`` distances are formed a block of queries at a time, so
peak memory is ``O(chunk_size * N)``.

Example:
    >>> import numpy as np
    >>> feats = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1]], dtype=np.float32)
    >>> m = evaluate_reassociation(feats, [1, 2, 1, 2], [1, 1, 9, 9], gap=5)
    >>> m.rank1, m.mAP, m.num_valid_queries
    (1.0, 1.0, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .distance import compute_distance

__all__ = ["ReassociationMetrics", "evaluate_reassociation", "reassociation_queries"]

_BLOCK_ELEMS = 1 << 22  # about 4M distances per block of queries

ArrayLike = Sequence[int] | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class ReassociationMetrics:
    """Scores of the re-association protocol (fractions in ``[0, 1]``).

    Attributes:
        rank1: fraction of valid queries whose nearest gallery item is a true match.
        mAP: mean average precision over the valid queries.
        mrr: mean reciprocal rank of the first true match.
        cmc: ``(max_rank,)`` cumulative match curve (``cmc[0] == rank1``).
        num_valid_queries: queries with at least one true match in their gallery.
        num_queries: all queries (detections in the sampled frames).
        gap: minimum frame distance between a query and its gallery.
        stride: query frames are every ``stride``-th frame.
    """

    rank1: float
    mAP: float  # noqa: N815 - the usual name
    mrr: float
    num_valid_queries: int
    num_queries: int
    gap: int
    stride: int
    cmc: np.ndarray = field(repr=False)

    def rank(self, k: int) -> float:
        """CMC at rank ``k`` (1-based)."""
        if not 1 <= k <= len(self.cmc):
            raise InputError(f"rank k={k} outside 1..{len(self.cmc)} (max_rank)")
        return float(self.cmc[k - 1])

    def as_dict(self) -> dict[str, Any]:
        """The scores as plain numbers (JSON-ready)."""
        return {
            "rank1": self.rank1, "mAP": self.mAP, "mrr": self.mrr,
            "num_valid_queries": self.num_valid_queries, "num_queries": self.num_queries,
            "gap": self.gap, "stride": self.stride,
        }  # fmt: skip

    def __str__(self) -> str:
        return (
            f"re-association (gap {self.gap}, stride {self.stride}): R1 {100 * self.rank1:.2f}%  "
            f"mAP {100 * self.mAP:.2f}%  MRR {100 * self.mrr:.2f}%  "
            f"({self.num_valid_queries}/{self.num_queries} queries with a match)"
        )


def _ints(name: str, values: ArrayLike, n: int | None) -> np.ndarray:
    arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise InputError(
            f"{name} must be a 1-D integer array, got {arr.dtype} of shape {arr.shape}"
        )
    if n is not None and arr.shape[0] != n:
        raise InputError(f"{name} has {arr.shape[0]} entries, expected {n} (one per detection)")
    return arr.astype(np.int64)


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def reassociation_queries(
    frames: ArrayLike, stride: int = 1, groups: ArrayLike | None = None
) -> np.ndarray:
    """Indices of the query detections: those in every ``stride``-th frame of their group.

    Args:
        frames: ``(N,)`` frame index of each detection.
        stride: keep frames ``t`` with ``(t - t0) % stride == 0``, ``t0`` the group's
            first frame.
        groups: ``(N,)`` sequence of each detection (None: one sequence).

    Returns:
        ``(Q,)`` int64 sorted indices into the detections.

    Example:
        >>> reassociation_queries([3, 4, 5, 5, 7], stride=2).tolist()
        [0, 2, 3, 4]
    """
    f = _ints("frames", frames, None)
    stride = _positive("stride", stride)
    g = np.zeros_like(f) if groups is None else _ints("groups", groups, len(f))
    if f.size == 0:
        return np.zeros(0, dtype=np.int64)
    _, inv = np.unique(g, return_inverse=True)
    first = np.full(int(inv.max()) + 1, np.iinfo(np.int64).max)
    np.minimum.at(first, inv, f)
    return np.flatnonzero((f - first[inv]) % stride == 0)


def _block_scores(
    dist: np.ndarray, match: np.ndarray, valid: np.ndarray, max_rank: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-query AP, RR, first-match position and match count of one block of rows."""
    d = np.where(valid, dist, np.inf)
    order = np.argsort(d, axis=1, kind="stable")  # invalid items (inf) sort last
    hits = np.take_along_axis(match & valid, order, axis=1)
    n_match = hits.sum(axis=1)
    cum = np.cumsum(hits, axis=1)
    pos = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    ap = np.where(hits, cum / pos, 0.0).sum(axis=1) / np.maximum(n_match, 1)
    first = np.where(n_match > 0, hits.argmax(axis=1), max_rank)
    rr = np.where(n_match > 0, 1.0 / (first + 1.0), 0.0)
    return ap, rr, first, n_match


def _scores_by_block(
    x: np.ndarray | torch.Tensor,
    distances: bool,
    metric: str,
    q_idx: np.ndarray,
    labels: tuple[np.ndarray, np.ndarray, np.ndarray],
    gap: int,
    chunk_size: int,
    max_rank: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-query AP, RR, first-match position and match count of the queries ``q_idx``,
    ``chunk_size`` queries at a time; ``labels`` is ``(pids, frames, groups)``."""
    p, f, g = labels
    ap: list[np.ndarray] = []
    rr: list[np.ndarray] = []
    first: list[np.ndarray] = []
    n_match: list[np.ndarray] = []
    for lo in range(0, len(q_idx), chunk_size):
        q = q_idx[lo : lo + chunk_size]
        if distances:
            block = x[torch.from_numpy(q)] if isinstance(x, torch.Tensor) else x[q]
        else:
            block = compute_distance(x[torch.from_numpy(q)] if isinstance(x, torch.Tensor)
                                     else x[q], x, metric)  # fmt: skip
        d = block.detach().float().cpu().numpy() if isinstance(block, torch.Tensor) else block
        d = np.asarray(d, dtype=np.float64)
        if not np.isfinite(d).all():
            raise InputError(f"non-finite distance in query rows {lo}..{lo + len(q) - 1}")
        valid = (np.abs(f[None, :] - f[q][:, None]) >= gap) & (g[None, :] == g[q][:, None])
        match = p[None, :] == p[q][:, None]
        for out, val in zip((ap, rr, first, n_match), _block_scores(d, match, valid, max_rank)):
            out.append(val)
    ap_a, rr_a, first_a, nm = (np.concatenate(v) for v in (ap, rr, first, n_match))
    return ap_a, rr_a, first_a, nm


def evaluate_reassociation(
    inputs: np.ndarray | torch.Tensor,
    pids: ArrayLike,
    frames: ArrayLike,
    *,
    gap: int,
    distances: bool = False,
    stride: int = 1,
    groups: ArrayLike | None = None,
    metric: str = "cosine",
    max_rank: int = 20,
    chunk_size: int | None = None,
) -> ReassociationMetrics:
    """Score the re-association protocol (see the module docstring for the definitions).

    Args:
        inputs: ``(N, D)`` features of the detections (distances computed with
            ``metric``, a block of queries at a time), or with ``distances=True`` an
            ``(N, N)`` distance matrix between all detections (smaller is closer).
        pids: ``(N,)`` identity of each detection.
        frames: ``(N,)`` frame index of each detection.
        gap: minimum ``|f_gallery - f_query|`` (``>= 1``; the query itself is never in
            its gallery).
        stride: queries are the detections in every ``stride``-th frame.
        groups: ``(N,)`` sequence of each detection; a query's gallery is its own
            sequence only (None: one sequence).
        distances: ``inputs`` is an ``(N, N)`` distance matrix, not features.
        metric: ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"`` (features only).
        max_rank: length of the CMC curve.
        chunk_size: queries per block (None: about 4M distances per block).

    Returns:
        :class:`ReassociationMetrics`.

    Raises:
        InputError: mismatched lengths, non-finite distances, ``gap``/``stride`` below 1,
            or no valid query.
    """
    gap, stride = _positive("gap", gap), _positive("stride", stride)
    max_rank = _positive("max_rank", max_rank)
    x = inputs
    if not isinstance(x, (np.ndarray, torch.Tensor)) or x.ndim != 2:
        raise InputError(
            "inputs must be a 2-D (N, D) feature or (N, N) distance array, got "
            f"{type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}"
        )
    n = int(x.shape[0])
    if distances and x.shape[1] != n:
        raise InputError(f"distances=True needs an (N, N) matrix, got shape {tuple(x.shape)}")
    p = _ints("pids", pids, n)
    f = _ints("frames", frames, n)
    g = np.zeros(n, np.int64) if groups is None else _ints("groups", groups, n)
    q_idx = reassociation_queries(f, stride, g)
    if q_idx.size == 0:
        raise InputError("no query: the detections are empty")
    if chunk_size is None:
        chunk_size = max(1, _BLOCK_ELEMS // max(n, 1))
    chunk_size = _positive("chunk_size", chunk_size)
    ap_a, rr_a, first_a, nm = _scores_by_block(
        x, distances, metric, q_idx, (p, f, g), gap, chunk_size, max_rank
    )
    ok = nm > 0
    if not ok.any():
        raise InputError(
            f"no valid query: none of the {len(q_idx)} queries has a detection of the same "
            f"pid at least gap={gap} frames away in its sequence"
        )
    hist = np.bincount(np.minimum(first_a[ok], max_rank), minlength=max_rank + 1)[:max_rank]
    cmc = np.cumsum(hist) / float(ok.sum())
    return ReassociationMetrics(
        rank1=float(cmc[0]), mAP=float(ap_a[ok].mean()), mrr=float(rr_a[ok].mean()),
        num_valid_queries=int(ok.sum()), num_queries=int(len(q_idx)), gap=gap, stride=stride,
        cmc=cmc,
    )  # fmt: skip
