"""An appearance-free IoU tracker: detections linked over consecutive frames into tracklets.

Video gives free supervision (:mod:`semparts_reid.memory.constraints`): detections linked
over consecutive frames are one person (must-links), two people in one frame are two
people (cannot-links). A detection file (``det.txt``) or ground-truth *boxes* used as an
unlabeled target carry no track ids, so :func:`iou_tracker` makes tracklets from the
boxes alone, without any appearance model (so no feature, and no identity label, feeds
them), and :func:`assign_tracklets` fills the ``tracklet`` column of a
:class:`~semparts_reid.data.mot.CropTable` (or anything with the same columns) with them.

**The tracker.** Each sequence is processed frame by frame in time order (a Python loop
over frames: a track's state at frame ``t`` depends on frame ``t - 1``; everything inside
a frame is vectorised). At frame ``f``:

1. the *active* tracks are those last seen at a frame ``t`` with ``f - t - 1 <= max_gap``
   (``max_gap`` missed frames; ``0``: consecutive frames only);
2. each active track's box is its last box, shifted by its velocity times ``f - t``
   when ``predict`` (constant velocity of the box's left/top; width and height kept);
3. the IoU of every (track, detection) pair of the frame (one broadcast,
   :func:`box_iou`) and a Hungarian assignment
   (:func:`scipy.optimize.linear_sum_assignment`) on ``1 - IoU``; only pairs with
   ``IoU >= iou_threshold`` are links;
4. **conservative** mode (default): a wrong must-link hurts training more than a missing
   one, so a link is refused when it is ambiguous: its track has a second candidate
   detection, or its detection a second candidate track, with ``IoU >= iou_threshold``
   and within ``ambiguity_margin`` of the best one. The track is *ended* (it never links
   again) and the detection starts a new track. Two people crossing thus end both tracks
   and start two new ones after the crossing;
5. unmatched detections start new tracks, except those with ``score < min_score``
   (when given), which may extend a track but never start one (they stay ``-1``).

Tracklets shorter than ``min_length`` are dropped (``-1``). Ids are ``0..T-1`` in order
of first appearance (sequence, then frame). A tracklet never holds two detections of one
frame.

:func:`tracklet_quality` scores tracklets against identities (an *evaluation*: identity
labels must never feed training).

Example:
    >>> import numpy as np
    >>> boxes = np.array([[0, 0, 10, 20], [50, 0, 10, 20], [1, 0, 10, 20], [51, 0, 10, 20]])
    >>> iou_tracker(boxes, np.array([1, 1, 2, 2])).tolist()
    [0, 1, 0, 1]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import InputError

__all__ = [
    "TrackletQuality",
    "assign_tracklets",
    "box_iou",
    "iou_tracker",
    "tracklet_quality",
]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair of boxes ``a`` (M, 4) and ``b`` (K, 4), ``left, top, width, height``.

    One broadcast over all ``M × K`` pairs; a pair whose union is empty has IoU 0.

    Returns:
        ``(M, K)`` float64.

    Example:
        >>> box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 2, 2], [5, 5, 1, 1]])).round(3)
        array([[0.333, 0.   ]])
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2]) - np.maximum(
        a[:, None, 0], b[None, :, 0]
    )
    ih = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3]) - np.maximum(
        a[:, None, 1], b[None, :, 1]
    )
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _column(x: Any, name: str, n: int, dtype: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.shape != (n,):
        raise InputError(f"{name} of shape {arr.shape}: expected ({n},), one per box")
    if np.issubdtype(dtype, np.integer):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise InputError(f"{name}: expected integers, got dtype {arr.dtype}")
    elif arr.size and not np.all(np.isfinite(arr.astype(np.float64))):
        raise InputError(f"{name}: expected finite values")
    return arr.astype(dtype)


def _ambiguous(iou: np.ndarray, cand: np.ndarray, margin: float, axis: int) -> np.ndarray:
    """Rows (axis=1) or columns (axis=0) whose two best candidate IoUs are within margin."""
    if iou.shape[axis] < 2:
        return np.zeros(iou.shape[1 - axis], dtype=bool)
    v = np.where(cand, iou, -np.inf)
    top2 = -np.partition(-v, 1, axis=axis)
    best, second = top2[:2] if axis == 0 else top2[:, :2].T
    found = np.isfinite(second)  # two candidates (then the best one is finite too)
    gap = np.full(best.shape, np.inf)
    np.subtract(best, second, out=gap, where=found)
    return found & (gap < margin)


def iou_tracker(
    boxes: np.ndarray,
    frames: np.ndarray,
    sequences: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    *,
    iou_threshold: float = 0.3,
    max_gap: int = 2,
    predict: bool = True,
    conservative: bool = True,
    ambiguity_margin: float = 0.1,
    min_score: float | None = None,
    min_length: int = 1,
) -> np.ndarray:
    """Link detections into tracklets by box overlap alone (see the module docstring).

    Args:
        boxes: ``(N, 4)`` ``left, top, width, height`` (pixels; width, height >= 0).
        frames: ``(N,)`` integer frame index (any origin; only order and differences
            matter).
        sequences: optional ``(N,)`` integer sequence id; tracks never cross sequences.
        scores: optional ``(N,)`` detection confidence (used with ``min_score``).
        iou_threshold: minimum IoU of a link, in ``(0, 1]``.
        max_gap: frames a track may miss and still be extended (``>= 0``).
        predict: extrapolate a track's box with its constant velocity over the gap.
        conservative: refuse ambiguous links and end their track (module docstring).
        ambiguity_margin: IoU margin that makes a link ambiguous (conservative mode).
        min_score: detections below it never start a track (``None``: all may).
        min_length: tracklets with fewer detections become ``-1``.

    Returns:
        ``(N,)`` int64 tracklet id per box, in input order (``-1``: none).

    Raises:
        InputError: a shape mismatch, a non-finite or negative-size box, a bad option.
    """
    b, f_all, s_all, sc = _checked_detections(boxes, frames, sequences, scores)
    _check_tracker_options(iou_threshold, max_gap, min_length, ambiguity_margin)
    n = b.shape[0]
    out = np.full(n, -1, np.int64)
    if n == 0:
        return out

    order = np.lexsort((np.arange(n), f_all, s_all))
    s_sorted, f_sorted = s_all[order], f_all[order]
    starts = np.flatnonzero(
        np.r_[True, (s_sorted[1:] != s_sorted[:-1]) | (f_sorted[1:] != f_sorted[:-1])]
    )
    ends = np.r_[starts[1:], n]
    next_id = 0
    cur_seq: int | None = None
    tracks = _Tracks.empty()
    for st, en in zip(starts.tolist(), ends.tolist()):
        rows = order[st:en]
        seq, f = int(s_sorted[st]), int(f_sorted[st])
        if seq != cur_seq:
            cur_seq = seq
            tracks = tracks.select(slice(0, 0))
        tracks = tracks.select((f - tracks.seen - 1) <= max_gap)
        det = b[rows]
        r, c, ended = _link(tracks, det, f, iou_threshold, predict, conservative, ambiguity_margin)
        if len(r):  # extend the linked tracks
            tracks.extend(r, det[c], f)
            out[rows[c]] = tracks.tid[r]
        if len(ended):
            keep = np.ones(len(tracks.tid), bool)
            keep[ended] = False
            tracks = tracks.select(keep)
        # unmatched detections start tracks
        free = np.ones(len(rows), bool)
        free[c] = False
        if sc is not None and min_score is not None:
            free &= sc[rows] >= min_score
        new = np.flatnonzero(free)
        if len(new):
            ids = np.arange(next_id, next_id + len(new), dtype=np.int64)
            next_id += len(new)
            out[rows[new]] = ids
            tracks = tracks.started(ids, det[new], f)
    return _compact(out, min_length)


def _checked_detections(
    boxes: np.ndarray,
    frames: np.ndarray,
    sequences: np.ndarray | None,
    scores: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`iou_tracker`'s columns, checked: float64 boxes, int64 frames and
    sequences (zeros where ``None``), float64 scores or ``None``."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise InputError(f"boxes of shape {b.shape}: expected (N, 4) left, top, width, height")
    n = b.shape[0]
    if n and not np.all(np.isfinite(b)):
        raise InputError("boxes: expected finite values")
    if n and (b[:, 2:] < 0).any():
        raise InputError("boxes: negative width or height (expected left, top, width, height)")
    f_all = _column(frames, "frames", n, np.int64)
    s_all = (
        np.zeros(n, np.int64) if sequences is None else _column(sequences, "sequences", n, np.int64)
    )
    sc = None if scores is None else _column(scores, "scores", n, np.float64)
    return b, f_all, s_all, sc


def _check_tracker_options(
    iou_threshold: float, max_gap: int, min_length: int, ambiguity_margin: float
) -> None:
    """Raise :class:`InputError` on a bad option of :func:`iou_tracker`."""
    if not (isinstance(iou_threshold, (int, float)) and 0 < iou_threshold <= 1):
        raise InputError(f"iou_threshold={iou_threshold!r}: expected a value in (0, 1]")
    for name, val, lo in (("max_gap", max_gap, 0), ("min_length", min_length, 1)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo:
            raise InputError(f"{name}={val!r}: expected an integer >= {lo}")
    if not (isinstance(ambiguity_margin, (int, float)) and ambiguity_margin >= 0):
        raise InputError(f"ambiguity_margin={ambiguity_margin!r}: expected a value >= 0")


@dataclass
class _Tracks:
    """The active tracks of :func:`iou_tracker`, one row each: id, last box
    ``(T, 4)``, velocity ``(T, 4)``, last frame seen and number of observations."""

    tid: np.ndarray
    last: np.ndarray
    vel: np.ndarray
    seen: np.ndarray
    nobs: np.ndarray

    @classmethod
    def empty(cls) -> _Tracks:
        """No track."""
        z = np.zeros(0, np.int64)
        return cls(z, np.zeros((0, 4)), np.zeros((0, 4)), np.zeros(0, np.int64), z.copy())

    def select(self, rows: Any) -> _Tracks:
        """The tracks picked by a mask, slice or index array."""
        return _Tracks(
            self.tid[rows], self.last[rows], self.vel[rows], self.seen[rows], self.nobs[rows]
        )

    def extend(self, r: np.ndarray, boxes: np.ndarray, f: int) -> None:
        """Extend tracks ``r`` with ``boxes`` seen at frame ``f`` (in place)."""
        dt = (f - self.seen[r]).astype(np.float64)[:, None]
        step = (boxes - self.last[r]) / dt
        self.vel[r] = np.where(self.nobs[r, None] > 1, 0.5 * self.vel[r] + 0.5 * step, step)
        self.last[r], self.seen[r] = boxes, f
        self.nobs[r] += 1

    def started(self, ids: np.ndarray, boxes: np.ndarray, f: int) -> _Tracks:
        """These tracks and new ones ``ids`` starting with ``boxes`` at frame ``f``."""
        k = len(ids)
        return _Tracks(
            np.r_[self.tid, ids],
            np.r_[self.last, boxes],
            np.r_[self.vel, np.zeros((k, 4))],
            np.r_[self.seen, np.full(k, f, np.int64)],
            np.r_[self.nobs, np.ones(k, np.int64)],
        )


def _link(
    tracks: _Tracks,
    det: np.ndarray,
    f: int,
    iou_threshold: float,
    predict: bool,
    conservative: bool,
    ambiguity_margin: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Links of frame ``f``: ``(track rows, detection rows, ambiguous track rows)``.

    A link is a one-to-one assignment of maximal total IoU, at least ``iou_threshold``;
    in conservative mode an ambiguous link is refused and its track listed as ended.
    """
    from scipy.optimize import linear_sum_assignment

    r = c = np.zeros(0, np.int64)
    ended = np.zeros(0, np.int64)
    if len(tracks.tid) and len(det):
        pred = tracks.last.copy()
        if predict:
            pred[:, :2] += tracks.vel[:, :2] * (f - tracks.seen)[:, None]
        iou = box_iou(pred, det)
        cand = iou >= iou_threshold
        r, c = linear_sum_assignment(np.where(cand, 1.0 - iou, 2.0))
        ok = cand[r, c]
        r, c = r[ok], c[ok]
        if conservative and len(r):
            amb = (
                _ambiguous(iou, cand, ambiguity_margin, 1)[r]
                | _ambiguous(iou, cand, ambiguity_margin, 0)[c]
            )
            ended, r, c = r[amb], r[~amb], c[~amb]
    return r, c, ended


def _compact(ids: np.ndarray, min_length: int) -> np.ndarray:
    """Drop tracklets shorter than ``min_length`` and renumber 0..T-1 (same order)."""
    out = np.full(len(ids), -1, np.int64)
    has = ids >= 0
    if not has.any():
        return out
    uniq, inv, counts = np.unique(ids[has], return_inverse=True, return_counts=True)
    keep = counts >= min_length
    new = np.cumsum(keep) - 1
    out[has] = np.where(keep[inv], new[inv], -1)
    return out


class TableLike(Protocol):
    """What :func:`assign_tracklets` reads: :class:`~semparts_reid.data.mot.CropTable`'s
    ``frame``, ``sequence``, ``tracklet`` (N,) and ``box`` (N, 4) columns."""

    @property
    def frame(self) -> np.ndarray: ...

    @property
    def sequence(self) -> np.ndarray: ...

    @property
    def tracklet(self) -> np.ndarray: ...

    @property
    def box(self) -> np.ndarray: ...


def assign_tracklets(table: TableLike, *, box_format: str = "xyxy", **tracker: Any) -> np.ndarray:
    """Tracklet ids for a crop table whose box source has none, from :func:`iou_tracker`.

    Rows that already have a tracklet (``table.tracklet >= 0``, e.g. a tracker's output
    file) keep it; the rows with ``-1`` are tracked per sequence, from their boxes alone,
    and get new ids after the largest existing one. Nothing but the boxes, frames and
    sequences is read (no identity, no appearance).

    Args:
        table: a :class:`~semparts_reid.data.mot.CropTable` or anything with ``frame``,
            ``sequence``, ``tracklet`` ``(N,)`` and ``box`` ``(N, 4)`` arrays.
        box_format: ``"xyxy"`` (``x1, y1, x2, y2``: ``CropTable``) or ``"ltwh"``.
        **tracker: options of :func:`iou_tracker` (``iou_threshold``, ``max_gap``, ...).

    Returns:
        ``(N,)`` int64 tracklets (``-1``: none), aligned with the table's rows.

    Example:
        >>> ds = build_dataset("mot:/data/TUD-Campus?source=gt")  # doctest: +SKIP
        >>> tracklets = assign_tracklets(ds.train_table)  # doctest: +SKIP
    """
    box = np.asarray(table.box, dtype=np.float64)
    n = len(box)
    if box.shape != (n, 4):
        raise InputError(f"table.box of shape {box.shape}: expected (N, 4)")
    if box_format == "xyxy":
        ltwh = np.concatenate([box[:, :2], box[:, 2:] - box[:, :2]], axis=1)
    elif box_format == "ltwh":
        ltwh = box
    else:
        raise InputError(f"box_format={box_format!r}: expected 'xyxy' or 'ltwh'")
    old = _column(table.tracklet, "table.tracklet", n, np.int64)
    frames = _column(table.frame, "table.frame", n, np.int64)
    seqs = _column(table.sequence, "table.sequence", n, np.int64)
    out = old.copy()
    todo = np.flatnonzero(old < 0)
    if len(todo):
        new = iou_tracker(ltwh[todo], frames[todo], seqs[todo], **tracker)
        base = int(old.max()) + 1 if (old >= 0).any() else 0
        out[todo] = np.where(new >= 0, new + base, -1)
    return out


@dataclass(frozen=True)
class TrackletQuality:
    """Tracklets scored against identities (an evaluation only).

    Attributes:
        purity: share of tracklet members whose identity is their tracklet's majority one.
        pair_precision: share of must-link pairs (two members of one tracklet) that are
            one identity.
        fragmentation: mean number of tracklets per identity (over identities with a
            tracked detection; 1 is ideal).
        num_tracklets: tracklets (of any length).
        mean_length: mean members per tracklet.
        coverage: share of detections in a tracklet of >= 2 members.
        must_link_pairs: same-tracklet pairs.
    """

    purity: float
    pair_precision: float
    fragmentation: float
    num_tracklets: int
    mean_length: float
    coverage: float
    must_link_pairs: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def tracklet_quality(tracklets: np.ndarray, identities: np.ndarray) -> TrackletQuality:
    """Purity, pairwise precision and fragmentation of ``tracklets`` against ``identities``.

    Args:
        tracklets: ``(N,)`` int tracklet id (``-1``: none, left out).
        identities: ``(N,)`` int ground-truth identity (``-1``: unknown, e.g. a false
            detection; counts as its own identity, so it lowers purity when linked).

    Example:
        >>> q = tracklet_quality(np.array([0, 0, 0, 1, 1]), np.array([5, 5, 6, 6, 6]))
        >>> round(q.purity, 3), q.pair_precision, q.fragmentation
        (0.8, 0.5, 1.5)
    """
    t = np.asarray(tracklets, dtype=np.int64).reshape(-1)
    ids = _column(identities, "identities", len(t), np.int64)
    has = t >= 0
    t, ids = t[has], ids[has]
    if len(t) == 0:
        return TrackletQuality(float("nan"), float("nan"), float("nan"), 0, 0.0, 0.0, 0)
    _, tc = np.unique(t, return_inverse=True)
    uid, ic = np.unique(ids, return_inverse=True)
    ic = np.where(ids < 0, len(uid) + np.arange(len(ids)), ic)  # unknowns: each its own
    pair_key = tc * (int(ic.max()) + 1) + ic
    _, pair_counts = np.unique(pair_key, return_counts=True)
    pair_t = np.unique(pair_key) // (int(ic.max()) + 1)
    best = np.zeros(int(tc.max()) + 1, np.int64)
    np.maximum.at(best, pair_t, pair_counts)
    sizes = np.bincount(tc)
    pairs = int((sizes * (sizes - 1) // 2).sum())
    good = int((pair_counts * (pair_counts - 1) // 2).sum())
    known = ids >= 0
    per_id = np.unique(pair_key[known]) % (int(ic.max()) + 1)
    frag = float(np.bincount(per_id).sum() / max(len(np.unique(per_id)), 1))
    return TrackletQuality(
        purity=float(best.sum() / len(t)),
        pair_precision=float(good / pairs) if pairs else float("nan"),
        fragmentation=frag,
        num_tracklets=len(sizes),
        mean_length=float(sizes.mean()),
        coverage=float((sizes[tc] >= 2).sum() / len(has)),
        must_link_pairs=pairs,
    )
