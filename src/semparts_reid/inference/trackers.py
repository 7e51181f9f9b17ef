"""Adapters that plug a re-ID model into multi-object trackers.

:class:`TrackerEmbedder` offers both contracts trackers use for appearance embedders:

* ``predict(crops, bgr=True) -> list[np.ndarray]`` as in `deep-sort-realtime`: a list of
  BGR crops in, one vector per crop out. Pass the result as ``embeds=`` to
  ``DeepSort.update_tracks`` (with ``embedder=None``)::

      from deep_sort_realtime.deepsort_tracker import DeepSort
      from semparts_reid.inference import TrackerEmbedder

      embedder = TrackerEmbedder("checkpoint.pth")
      tracker = DeepSort(max_age=30, embedder=None)
      crops = [frame[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes_xyxy]
      detections = [([x1, y1, x2 - x1, y2 - y1], score, cls) for ...]
      tracks = tracker.update_tracks(detections, embeds=embedder.predict(crops), frame=frame)

* ``get_features(xyxys, frame_bgr) -> np.ndarray (N, D)`` as in `boxmot`'s ReID backends:
  boxes in pixel ``x1, y1, x2, y2`` on the full BGR frame, clipped to the frame and
  extracted in batches::

      embedder = TrackerEmbedder("checkpoint.pth")
      features = embedder.get_features(detections[:, :4], frame)   # (N, D), L2-normalised

  ``get_features`` also takes any detections object with an ``xyxy`` array, such as
  ``supervision.Detections`` (duck-typed: supervision is never imported here)::

      detections = sv.Detections.from_ultralytics(yolo(frame)[0])
      features = embedder.get_features(detections, frame)          # (len(detections), D)

Both return float32 L2-normalised features, so a cosine distance is ``1 - a @ b``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from torch import nn

from .extractor import FeatureExtractor

__all__ = ["TrackerEmbedder", "clip_boxes", "crop_boxes"]


def _boxes_of(detections: Any) -> Any:
    """The ``(N, 4+)`` ``x1, y1, x2, y2`` boxes of ``detections``.

    An object with an ``xyxy`` attribute (``supervision.Detections``, or any look-alike)
    gives that array; anything else (an array, a tensor, a list) is returned as it is.
    """
    return detections.xyxy if hasattr(detections, "xyxy") else detections


def clip_boxes(xyxys: Any, height: int, width: int) -> np.ndarray:
    """Round ``(N, 4)`` ``x1, y1, x2, y2`` boxes outwards to pixels and clip them to the frame.

    Every box keeps at least one pixel (a box wholly outside the frame shrinks to the
    nearest border pixel), so a crop is never empty.

    Returns:
        ``(N, 4)`` int64 array with ``0 <= x1 < x2 <= width`` and ``0 <= y1 < y2 <= height``.
    """
    boxes = np.asarray(xyxys, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if boxes.ndim != 2 or boxes.shape[1] < 4:
        raise ValueError(f"xyxys: expected an (N, 4) array of x1, y1, x2, y2, got {boxes.shape}")
    if not np.isfinite(boxes[:, :4]).all():
        raise ValueError("xyxys: boxes contain NaN or infinite coordinates")
    x1 = np.floor(np.minimum(boxes[:, 0], boxes[:, 2]))
    x2 = np.ceil(np.maximum(boxes[:, 0], boxes[:, 2]))
    y1 = np.floor(np.minimum(boxes[:, 1], boxes[:, 3]))
    y2 = np.ceil(np.maximum(boxes[:, 1], boxes[:, 3]))
    x1 = np.clip(x1, 0, width - 1)
    y1 = np.clip(y1, 0, height - 1)
    x2 = np.clip(np.maximum(x2, x1 + 1), 1, width)
    y2 = np.clip(np.maximum(y2, y1 + 1), 1, height)
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.int64)


def crop_boxes(frame: np.ndarray, xyxys: Any) -> list[np.ndarray]:
    """Crops (views, no copy) of ``frame (H, W, 3)`` for ``(N, 4)`` clipped boxes."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"frame: expected an (H, W, 3) uint8 image array, got shape {shape}")
    boxes = clip_boxes(xyxys, frame.shape[0], frame.shape[1])
    return [frame[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes.tolist()]


class TrackerEmbedder:
    """Appearance embedder for trackers (deep-sort-realtime and boxmot contracts).

    Args:
        model: a :class:`FeatureExtractor`, or anything it accepts (model, build_model
            name, checkpoint path); ``**kwargs`` go to the extractor.

    Example:
        >>> import numpy as np
        >>> emb = TrackerEmbedder("semparts_resnet18", device="cpu")
        >>> frame = np.zeros((240, 320, 3), np.uint8)
        >>> emb.get_features(np.array([[10, 20, 60, 140], [300, 200, 400, 300]]), frame).shape
        (2, 512)
        >>> len(emb.predict([frame[20:140, 10:60]]))
        1
    """

    def __init__(self, model: FeatureExtractor | nn.Module | str | os.PathLike[str],
                 **kwargs: Any) -> None:
        if isinstance(model, FeatureExtractor):
            if kwargs:
                raise TypeError(f"extractor options {sorted(kwargs)} given with an extractor")
            self.extractor = model
        else:
            self.extractor = FeatureExtractor(model, **kwargs)

    def predict(self, crops: list[np.ndarray], bgr: bool = True) -> list[np.ndarray]:
        """One ``(D,)`` float32 unit vector per crop (deep-sort-realtime embedder contract).

        Args:
            crops: ``(h, w, 3)`` uint8 crops of any sizes, BGR by default (OpenCV frames).
            bgr: set ``False`` for RGB crops.
        """
        if len(crops) == 0:
            return []
        feats = self.extractor(list(crops), bgr=bgr, return_numpy=True)
        return list(feats)  # type: ignore[arg-type]

    def get_features(self, xyxys: Any, frame_bgr: np.ndarray) -> np.ndarray:
        """Features ``(N, D)`` for boxes on a full BGR frame (boxmot ReID backend contract).

        Args:
            xyxys: ``(N, 4)`` boxes ``x1, y1, x2, y2`` in pixels (extra columns ignored),
                or an object with such an ``xyxy`` array (``supervision.Detections``);
                clipped to the frame. No boxes give a ``(0, D)`` array.
            frame_bgr: ``(H, W, 3)`` uint8 BGR frame.
        """
        crops = crop_boxes(frame_bgr, _boxes_of(xyxys))
        feats = self.extractor(crops, bgr=True, return_numpy=True)
        return np.asarray(feats)

    __call__ = get_features
