"""Multi-object tracking metrics (IDF1, ID switches, MOTA, ...) through TrackEval.

:func:`evaluate_tracking` scores a tracker's output against ground truth, both as
MOTChallenge rows ``frame, id, x, y, w, h`` (extra columns ignored). The per-frame
matching uses the box IoU (threshold 0.5, as MOTChallenge), and the metrics are
computed by TrackEval's own ``Identity`` (IDF1, IDP, IDR; Ristani et al. 2016) and
``CLEAR`` (MOTA, MOTP, ID switches; Bernardin & Stiefelhagen 2008) classes, so the
numbers are the MOTChallenge devkit's:

* ``IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN)`` with identities matched once over the
  whole sequence (one tracker id per ground-truth id);
* ``MOTA = 1 - (FN + FP + IDSW) / GT`` with per-frame matching;
* ``MOTP`` = mean IoU of the matched boxes (TrackEval's convention: higher is better).

Why here (layer 0) and why TrackEval:

* This is computation on arrays: no file or network I/O, no global state. Reading
  ``gt.txt`` or a tracker's output file is the caller's job (``semparts_reid.data``
  or a benchmark), so the module sits in ``metrics/`` beside the re-ID metrics.
* ``trackeval`` (PyPI ``trackeval`` >= 1.3, the packaged TrackEval of the
  MOTChallenge/HOTA authors) runs on NumPy 2. ``motmetrics`` 1.4 still calls
  ``np.asfarray``, which NumPy 2 removed, and would need a patch of the ``numpy``
  module itself (global state) to run. TrackEval's metric classes take the
  per-frame id lists and similarity matrices that this module builds, which avoids
  its dataset readers and files altogether.
* ``trackeval`` is imported lazily, only when :func:`evaluate_tracking` runs: it is
  in the ``[tracking]`` extra, and importing ``semparts_reid`` never needs it.

Preprocessing is the caller's: pass only the ground-truth rows that count
(MOTChallenge's devkit drops rows with a zero ``flag`` and, for MOT16/17, the
non-pedestrian classes and the tracker boxes matched to them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["TrackingMetrics", "box_iou_xywh", "evaluate_tracking"]


@dataclass(frozen=True)
class TrackingMetrics:
    """Scores of one tracker output on one sequence (ratios in ``[0, 1]``; MOTA may be
    negative).

    Attributes:
        idf1, idp, idr: identity F1, precision and recall.
        idtp, idfp, idfn: their counts (boxes).
        mota: ``1 - (fn + fp + idsw) / num_gt``.
        motp: mean IoU of the per-frame matches.
        idsw: identity switches (CLEAR, counted against the last matched tracker id).
        tp, fp, fn: per-frame matched, unmatched tracker and unmatched ground-truth boxes.
        num_gt: ground-truth boxes; num_gt_ids: ground-truth identities.
        mostly_tracked, mostly_lost: identities tracked > 80 % / < 20 % of their frames.
        frag: track fragmentations.
    """

    idf1: float
    idp: float
    idr: float
    idtp: int
    idfp: int
    idfn: int
    mota: float
    motp: float
    idsw: int
    tp: int
    fp: int
    fn: int
    num_gt: int
    num_gt_ids: int
    mostly_tracked: int
    mostly_lost: int
    frag: int

    def as_dict(self) -> dict[str, float | int]:
        """Plain ``{name: value}`` (JSON-serialisable)."""
        return asdict(self)


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(N, 4)`` against ``(M, 4)`` boxes ``x, y, w, h`` -> ``(N, M)`` float64."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = np.clip(a[:, 2], 0, None) * np.clip(a[:, 3], 0, None)
    area_b = np.clip(b[:, 2], 0, None) * np.clip(b[:, 3], 0, None)
    union = area_a[:, None] + area_b[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _as_rows(rows: Any, name: str) -> np.ndarray:
    arr = np.asarray(rows, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 6), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise ValueError(
            f"{name}: expected MOT rows (N, >=6) of frame, id, x, y, w, h; got shape {arr.shape}"
        )
    if not np.isfinite(arr[:, :6]).all():
        raise ValueError(f"{name}: rows contain NaN or infinite values")
    return arr[:, :6]


def _dense_ids(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Ids relabelled ``0..K-1`` (TrackEval indexes its count arrays with them)."""
    uniq, dense = np.unique(ids.astype(np.int64), return_inverse=True)
    return dense.astype(np.int64), len(uniq)


def _sequence_data(gt: np.ndarray, tr: np.ndarray) -> dict[str, Any]:
    """TrackEval's per-sequence data dict: per-frame dense ids and IoU matrices."""
    gt_frames = gt[:, 0].astype(np.int64)
    tr_frames = tr[:, 0].astype(np.int64)
    frames = np.unique(np.concatenate([gt_frames, tr_frames]))
    gt_ids, num_gt_ids = _dense_ids(gt[:, 1])
    tr_ids, num_tr_ids = _dense_ids(tr[:, 1])
    data: dict[str, Any] = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for f in frames.tolist():
        g = gt_frames == f
        t = tr_frames == f
        data["gt_ids"].append(gt_ids[g])
        data["tracker_ids"].append(tr_ids[t])
        data["similarity_scores"].append(box_iou_xywh(gt[g, 2:6], tr[t, 2:6]))
    data.update(
        num_timesteps=len(frames),
        num_gt_dets=len(gt),
        num_tracker_dets=len(tr),
        num_gt_ids=num_gt_ids,
        num_tracker_ids=num_tr_ids,
    )
    return data


def _check_unique(rows: np.ndarray, name: str) -> None:
    keys = rows[:, :2].astype(np.int64)
    if len(np.unique(keys, axis=0)) != len(keys):
        raise ValueError(f"{name}: an id appears twice in one frame (rows must be unique per "
                         "frame and id)")


def evaluate_tracking(gt_rows: Any, tracker_rows: Any, *, iou_threshold: float = 0.5
                      ) -> TrackingMetrics:
    """IDF1, IDP, IDR, MOTA, MOTP and ID switches of a tracker's output on one sequence.

    Args:
        gt_rows: ``(G, >=6)`` ground-truth rows ``frame, id, x, y, w, h`` (pixels; boxes
            as MOTChallenge's ``bb_left, bb_top, bb_width, bb_height``). Only the rows
            that count: filter flags and classes before.
        tracker_rows: ``(T, >=6)`` the tracker's rows in the same format.
        iou_threshold: minimum IoU of a match (MOTChallenge: 0.5).

    Returns:
        :class:`TrackingMetrics`.

    Raises:
        ImportError: ``trackeval`` is not installed (``pip install semparts-reid[tracking]``).
        ValueError: malformed rows, or an id twice in one frame.

    Example:
        >>> gt = [[1, 1, 0, 0, 10, 20], [2, 1, 1, 0, 10, 20]]
        >>> evaluate_tracking(gt, gt).idf1
        1.0
    """
    gt = _as_rows(gt_rows, "gt_rows")
    tr = _as_rows(tracker_rows, "tracker_rows")
    _check_unique(gt, "gt_rows")
    _check_unique(tr, "tracker_rows")
    try:
        from trackeval.metrics import CLEAR, Identity
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "evaluate_tracking needs TrackEval: pip install 'semparts-reid[tracking]' "
            "(or pip install trackeval)"
        ) from exc
    config: Mapping[str, Any] = {"THRESHOLD": float(iou_threshold), "PRINT_CONFIG": False}
    data = _sequence_data(gt, tr)
    ident = Identity(dict(config)).eval_sequence(data)
    clear = CLEAR(dict(config)).eval_sequence(data)
    num_gt = len(gt)
    # TrackEval fills only the counts when one side is empty: complete the ratios
    idtp, idfp, idfn = int(ident["IDTP"]), int(ident["IDFP"]), int(ident["IDFN"])
    tp, fp, fn, idsw = (int(clear[k]) for k in ("CLR_TP", "CLR_FP", "CLR_FN", "IDSW"))
    mota = 1.0 - (fn + fp + idsw) / num_gt if num_gt else float("nan")
    return TrackingMetrics(
        idf1=idtp / max(1.0, idtp + 0.5 * idfp + 0.5 * idfn),
        idp=idtp / max(1.0, idtp + idfp),
        idr=idtp / max(1.0, idtp + idfn),
        idtp=idtp,
        idfp=idfp,
        idfn=idfn,
        mota=float(mota),
        motp=float(clear["MOTP_sum"]) / max(1.0, tp),
        idsw=idsw,
        tp=tp,
        fp=fp,
        fn=fn,
        num_gt=num_gt,
        num_gt_ids=int(data["num_gt_ids"]),
        mostly_tracked=int(clear["MT"]),
        mostly_lost=int(clear["ML"]),
        frag=int(clear["Frag"]),
    )
