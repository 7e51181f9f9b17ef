"""Detections for the tracking benchmark: jittered ground truth and OpenCV's HOG detector.

Both give ``{frame: (N, 5) array of x, y, w, h, score}`` (pixels, MOTChallenge
``bb_left, bb_top, bb_width, bb_height``), the input of
:func:`semparts_reid.inference.tracking.embed_detections`.

* :func:`jitter_ground_truth`: ground-truth boxes with a fixed, seeded fraction dropped
  and Gaussian jitter proportional to the box size: what a good detector gives,
  without a detector (no download).
* :class:`HOGPeopleDetector`: OpenCV's built-in HOG + linear SVM pedestrian detector
  (``cv2.HOGDescriptor_getDefaultPeopleDetector``, Dalal & Triggs 2005; weights compiled
  into OpenCV, no download), with non-maximum suppression. OpenCV 5 moved HOG out of
  the main package, so the ``[tracking]`` extra pins ``opencv-python < 5``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["HOGPeopleDetector", "detection_recall_precision", "jitter_ground_truth", "nms_xywh"]


def jitter_ground_truth(gt_rows: Any, *, drop: float = 0.1, jitter: float = 0.05,
                        seed: int = 0) -> dict[int, np.ndarray]:
    """Ground-truth boxes as detections, a fraction dropped and the rest jittered.

    Each row is dropped with probability ``drop``; a kept box ``x, y, w, h`` gets its
    centre moved by ``N(0, jitter*w)`` horizontally and ``N(0, jitter*h)`` vertically
    and its width and height scaled by ``1 + N(0, jitter)`` (clipped to ``[0.5, 1.5]``).
    The random numbers of a box depend only on ``seed``, its frame and its id (not on
    the row order or the other rows), so the same seed gives the same detections.

    Args:
        gt_rows: ``(G, >=6)`` MOT rows ``frame, id, x, y, w, h``.
        drop: probability of dropping a box (missed detection).
        jitter: relative standard deviation of the box noise.
        seed: the random seed.

    Returns:
        ``{frame: (N, 5) x, y, w, h, score}`` with score 1, rows sorted by id; every
        frame of ``gt_rows`` is a key (possibly with zero boxes).
    """
    if not 0 <= drop < 1:
        raise ValueError(f"drop: expected 0 <= drop < 1, got {drop}")
    if jitter < 0:
        raise ValueError(f"jitter: expected >= 0, got {jitter}")
    gt = np.asarray(gt_rows, dtype=np.float64)
    if gt.size == 0:
        return {}
    if gt.ndim != 2 or gt.shape[1] < 6:
        raise ValueError(f"gt_rows: expected (G, >=6) frame, id, x, y, w, h, got {gt.shape}")
    out: dict[int, np.ndarray] = {}
    for frame in np.unique(gt[:, 0]).astype(np.int64).tolist():
        rows = gt[gt[:, 0] == frame]
        rows = rows[np.argsort(rows[:, 1], kind="stable")]
        kept = []
        for r in rows:
            rng = np.random.default_rng([int(seed), int(frame), int(r[1])])
            u, n = rng.random(), rng.standard_normal(4)
            if u < drop:
                continue
            x, y, w, h = r[2:6]
            cx = x + w / 2 + n[0] * jitter * w
            cy = y + h / 2 + n[1] * jitter * h
            w2 = w * float(np.clip(1 + n[2] * jitter, 0.5, 1.5))
            h2 = h * float(np.clip(1 + n[3] * jitter, 0.5, 1.5))
            kept.append((cx - w2 / 2, cy - h2 / 2, w2, h2, 1.0))
        out[frame] = np.asarray(kept, dtype=np.float64).reshape(-1, 5)
    return out


def nms_xywh(boxes: Any, scores: Any, iou_threshold: float = 0.4) -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept ``x, y, w, h`` boxes, best first."""
    from ..metrics.tracking import box_iou_xywh

    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(b) != len(s):
        raise ValueError(f"nms_xywh: {len(b)} boxes but {len(s)} scores")
    order = np.argsort(-s, kind="stable")
    iou = box_iou_xywh(b, b)
    keep: list[int] = []
    suppressed = np.zeros(len(b), dtype=bool)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return np.asarray(keep, dtype=np.int64)


class HOGPeopleDetector:
    """OpenCV's default HOG people detector with non-maximum suppression.

    The detector's window is 64x128 pixels with the person about 48x96 inside it, so
    people smaller than about 100 px tall are missed at ``upscale=1``: ``upscale``
    enlarges the frame first (boxes are returned in the original pixels).

    Args:
        upscale: frame scale factor before detection.
        hit_threshold: SVM score threshold of ``detectMultiScale``.
        min_score: boxes with a lower SVM score are dropped after detection.
        win_stride, padding, scale: ``detectMultiScale`` options.
        nms_iou: IoU above which a lower-scored box is suppressed.
        shrink: ``(fx, fy)``: the HOG window has a margin around the person; each box
            loses ``fx*w`` on the left and right and ``fy*h`` at the top and bottom.

    Call: ``detector(frame_bgr) -> (N, 5) x, y, w, h, score`` float64, best first.
    """

    def __init__(self, *, upscale: float = 1.0, hit_threshold: float = 0.0,
                 min_score: float = 0.0, win_stride: tuple[int, int] = (8, 8),
                 padding: tuple[int, int] = (8, 8), scale: float = 1.05, nms_iou: float = 0.4,
                 shrink: tuple[float, float] = (0.2, 0.08)) -> None:
        try:
            import cv2
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("HOGPeopleDetector needs OpenCV: "
                              "pip install 'semparts-reid[tracking]'") from exc
        if not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
            raise ImportError(f"OpenCV {cv2.__version__} has no HOG people detector "
                              "(moved out of OpenCV 5's main package): "
                              "pip install 'opencv-python<5'")
        if upscale <= 0:
            raise ValueError(f"upscale: expected > 0, got {upscale}")
        self._cv2 = cv2
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.upscale = float(upscale)
        self.hit_threshold = float(hit_threshold)
        self.min_score = float(min_score)
        self.win_stride = tuple(win_stride)
        self.padding = tuple(padding)
        self.scale = float(scale)
        self.nms_iou = float(nms_iou)
        self.shrink = (float(shrink[0]), float(shrink[1]))

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        img = np.asarray(frame_bgr)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"frame: expected an (H, W, 3) uint8 BGR image, got "
                             f"{img.shape} {img.dtype}")
        if self.upscale != 1.0:
            img = self._cv2.resize(img, None, fx=self.upscale, fy=self.upscale,
                                   interpolation=self._cv2.INTER_LINEAR)
        rects, weights = self.hog.detectMultiScale(
            img, hitThreshold=self.hit_threshold, winStride=self.win_stride,
            padding=self.padding, scale=self.scale)
        if len(rects) == 0:
            return np.zeros((0, 5), dtype=np.float64)
        boxes = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / self.upscale
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)
        ok = scores >= self.min_score
        boxes, scores = boxes[ok], scores[ok]
        keep = nms_xywh(boxes, scores, self.nms_iou)
        boxes, scores = boxes[keep], scores[keep]
        fx, fy = self.shrink
        boxes = np.stack([boxes[:, 0] + fx * boxes[:, 2], boxes[:, 1] + fy * boxes[:, 3],
                          boxes[:, 2] * (1 - 2 * fx), boxes[:, 3] * (1 - 2 * fy)], axis=1)
        return np.concatenate([boxes, scores[:, None]], axis=1)

    def detect_frames(self, frames: Any) -> dict[int, np.ndarray]:
        """``{frame: detections}`` for ``(frame_number, BGR image)`` pairs."""
        return {int(f): self(img) for f, img in frames}


def detection_recall_precision(gt_rows: Any, detections: Mapping[int, Any], *,
                               iou_threshold: float = 0.5) -> tuple[float, float]:
    """Recall and precision of per-frame detections against ground truth (one-to-one
    matching at ``iou_threshold`` by the Hungarian algorithm on the IoU)."""
    from scipy.optimize import linear_sum_assignment

    from ..metrics.tracking import box_iou_xywh

    gt = np.asarray(gt_rows, dtype=np.float64)
    tp = num_det = 0
    for f in np.unique(gt[:, 0]).astype(np.int64).tolist():
        g = gt[gt[:, 0] == f, 2:6]
        d = np.asarray(detections.get(f, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
        num_det += len(d)
        if len(d) and len(g):
            iou = box_iou_xywh(g, d[:, :4])
            r, c = linear_sum_assignment(-iou)
            tp += int((iou[r, c] >= iou_threshold).sum())
    frames = set(np.unique(gt[:, 0]).astype(np.int64).tolist())
    num_det += sum(len(np.asarray(d).reshape(-1, 5)) for f, d in detections.items()
                   if int(f) not in frames)
    recall = tp / len(gt) if len(gt) else float("nan")
    precision = tp / num_det if num_det else float("nan")
    return recall, precision
