"""MediaPipe pose + person segmentation as a :class:`~.base.PartParser` (``[parser]`` extra).

MediaPipe's legacy pose solution (``mediapipe.solutions.pose`` with
``enable_segmentation=True``, BlazePose "full", ``model_complexity=1``) ships its model
files inside the ``mediapipe`` wheel up to 0.10.21; later wheels ship none, and the
"lite" and "heavy" models are downloaded on first use, so only ``model_complexity=1``
works offline. The ``[parser]`` extra pins 0.10.14, the newest version with them that does not
require numpy<2 (its maps are identical to 0.10.21's; ``docs/parsers.md``).

Each crop is upscaled to ``input_height`` pixels, centred on a square canvas with a
``margin`` of grey on every side (the pose detector expects a person with some context),
run through the pose model, and the person mask and the landmarks are mapped back to the
crop's own pixels, where :func:`~.geometry.pose_to_parts` cuts the mask into head /
upper / lower. Since every crop sits alike on its canvas, the graph runs in MediaPipe's
video mode (``reuse_roi``): the landmark model starts from the previous crop's body
region and the person detector runs only where that fails, which finds more bodies on
small crops at the same cost. MediaPipe's solution runs one image at a time;
``workers > 1`` runs that many pose graphs side by side, in threads
(``backend="thread"``, the default: MediaPipe releases the GIL while a graph runs, and on
TUD-Stadtmitte's crops threads were as fast as or faster than processes, with less CPU
per crop and no start-up) or in worker processes (``backend="process"``).

``import mediapipe`` happens only when a :class:`MediaPipeParser` is made, so this module
imports without it.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .base import ParseResult, check_crops
from .geometry import BLAZEPOSE, pose_to_parts

__all__ = ["MEDIAPIPE_HINT", "MediaPipeParser", "MediaPipeSettings", "import_mediapipe"]

MEDIAPIPE_HINT = (
    "the MediaPipe part parser needs mediapipe 0.10.14 (0.10.15 to 0.10.21 also work but "
    "need numpy<2; later wheels ship no pose model) on Python <= 3.12: "
    "pip install 'semparts-reid[parser]'"
)


def import_mediapipe() -> Any:
    """``import mediapipe`` with its legacy pose solution, or an ImportError with the fix."""
    try:
        mp = importlib.import_module("mediapipe")
    except ImportError as err:
        raise ImportError(f"{MEDIAPIPE_HINT} ({err})") from err
    solutions = getattr(mp, "solutions", None)
    if solutions is None or not hasattr(solutions, "pose"):
        version = getattr(mp, "__version__", "?")
        raise ImportError(
            f"mediapipe {version} has no mediapipe.solutions.pose (removed after 0.10.21, "
            f"along with the bundled models); {MEDIAPIPE_HINT}"
        )
    return mp


@dataclass(frozen=True)
class MediaPipeSettings:
    """How crops are prepared and results read (picklable: sent to worker processes).

    Attributes:
        input_height: crop height after upscaling, in pixels.
        margin: grey border on each side of the square canvas, as a fraction of the
            upscaled crop's longer side.
        pad_value: grey level of the border.
        min_detection_confidence: MediaPipe's person-detector threshold.
        mask_threshold: person-mask probability above which a pixel is the person.
        min_mask_fraction: a pose whose mask covers less of the crop than this counts as
            not found.
        min_visibility: an arm shapes the map only where its elbow and wrist are this
            visible.
        head_line / waist_line / arm_radius: see :func:`~.geometry.cut_person_mask`.
        reuse_roi: run the pose graph in MediaPipe's video mode, so that the landmark
            model starts from the previous crop's body region and the person detector
            runs only where that fails (crops are all placed alike on the canvas); a
            crop it misses is run again through a static graph. The graph restarts at
            each chunk, so a result depends on its chunk, never on the worker. Off:
            detector + landmarks on every crop (more misses on small crops, same CPU).
        max_tilt: a pose whose shoulder-to-hip axis leans more than this many degrees
            from the image's downward direction counts as not found (pedestrians stand;
            such a pose is nearly always a wrong one). ``None``: any tilt.
    """

    input_height: int = 256
    margin: float = 0.25
    pad_value: int = 114
    min_detection_confidence: float = 0.5
    mask_threshold: float = 0.5
    min_mask_fraction: float = 0.05
    min_visibility: float = 0.5
    head_line: float = -0.1
    waist_line: float = 0.8
    arm_radius: float = 0.12
    reuse_roi: bool = True
    max_tilt: float | None = 60.0


class _Engine:
    """One MediaPipe pose graph (not thread-safe: one per worker)."""

    def __init__(self, settings: MediaPipeSettings) -> None:
        mp = import_mediapipe()
        self.settings = settings
        self.cv2 = importlib.import_module("cv2")  # a dependency of mediapipe

        def graph(static: bool) -> Any:
            return mp.solutions.pose.Pose(
                static_image_mode=static,
                model_complexity=1,
                smooth_landmarks=False,
                enable_segmentation=True,
                smooth_segmentation=False,
                min_detection_confidence=settings.min_detection_confidence,
            )

        self.pose = graph(static=not settings.reuse_roi)
        # with reuse_roi: a static graph for the crops the previous crop's region misses
        # (cheaper than restarting the tracking graph, which costs about 60 ms)
        self.detect = graph(static=True) if settings.reuse_roi else None

    def close(self) -> None:
        self.pose.close()
        if self.detect is not None:
            self.detect.close()

    def _canvas(self, crop: np.ndarray) -> tuple[np.ndarray, float, int, int, int, int]:
        """The crop upscaled and centred on a square grey canvas; with its scale and the
        placed crop's ``x0, y0, width, height`` on the canvas."""
        st = self.settings
        h, w = crop.shape[:2]
        scale = st.input_height / h
        nw, nh = max(1, round(w * scale)), st.input_height
        big = self.cv2.resize(crop, (nw, nh), interpolation=self.cv2.INTER_LINEAR)
        side = round(max(nw, nh) * (1 + 2 * st.margin))
        canvas = np.full((side, side, 3), st.pad_value, np.uint8)
        x0, y0 = (side - nw) // 2, (side - nh) // 2
        canvas[y0 : y0 + nh, x0 : x0 + nw] = big
        return canvas, scale, x0, y0, nw, nh

    def parse_one(self, crop: np.ndarray) -> tuple[np.ndarray, float, bool]:
        st = self.settings
        h, w = crop.shape[:2]
        empty = np.zeros((h, w), np.uint8)
        canvas, scale, x0, y0, nw, nh = self._canvas(crop)
        res = self.pose.process(canvas)
        if self.detect is not None and res.pose_landmarks is None:
            res = self.detect.process(canvas)  # the previous crop's region did not fit
        if res.pose_landmarks is None or res.segmentation_mask is None:
            return empty, 0.0, False
        prob = res.segmentation_mask[y0 : y0 + nh, x0 : x0 + nw]
        prob = self.cv2.resize(prob, (w, h), interpolation=self.cv2.INTER_AREA)
        mask = prob > st.mask_threshold
        if mask.mean() < st.min_mask_fraction:
            return empty, 0.0, False
        side = canvas.shape[0]
        lm = res.pose_landmarks.landmark
        kp = np.array([(p.x, p.y, p.visibility) for p in lm], np.float64)
        # normalised canvas coordinates -> crop pixels (pixel centres at integers)
        kp[:, 0] = (kp[:, 0] * side - x0) / scale - 0.5
        kp[:, 1] = (kp[:, 1] * side - y0) / scale - 0.5
        b = BLAZEPOSE
        shoulders = kp[[b["left_shoulder"], b["right_shoulder"]]]
        hips = kp[[b["left_hip"], b["right_hip"]]]
        if st.max_tilt is not None:
            dx, dy = hips[:, :2].mean(axis=0) - shoulders[:, :2].mean(axis=0)
            if np.degrees(np.arctan2(abs(dx), dy)) > st.max_tilt:
                return empty, 0.0, False
        labels = pose_to_parts(
            mask, kp, min_visibility=st.min_visibility, head_line=st.head_line,
            waist_line=st.waist_line, arm_radius=st.arm_radius,
        )  # fmt: skip
        confidence = float(np.clip(np.r_[shoulders[:, 2], hips[:, 2]].mean(), 0.0, 1.0))
        return labels, confidence, True

    def parse_many(self, crops: Sequence[np.ndarray]) -> list[tuple[np.ndarray, float, bool]]:
        """Parse one chunk; with ``reuse_roi`` the graph starts afresh for each chunk, so a
        result depends on its chunk only, not on which worker ran it."""
        if self.settings.reuse_roi:
            self.pose.reset()
        return [self.parse_one(c) for c in crops]


# one engine per worker process (set by the pool initializer) or per thread
_PROCESS_ENGINE: _Engine | None = None
_THREAD_ENGINES = threading.local()


def _init_process(settings: MediaPipeSettings) -> None:
    global _PROCESS_ENGINE
    os.environ.setdefault("GLOG_minloglevel", "2")
    _PROCESS_ENGINE = _Engine(settings)


def _process_chunk(crops: list[np.ndarray]) -> list[tuple[np.ndarray, float, bool]]:
    assert _PROCESS_ENGINE is not None, "worker started without its engine"
    return _PROCESS_ENGINE.parse_many(crops)


class MediaPipeParser:
    """Head / upper / lower maps from MediaPipe's pose landmarks and person mask.

    Args:
        workers: pose graphs run side by side (1: in this process, no pool).
        backend: ``"thread"`` (a thread pool, one graph per thread) or ``"process"`` (a
            pool of ``workers`` processes, started once and kept until :meth:`close`).
        chunk_size: crops sent to a worker at a time.
        settings: a :class:`MediaPipeSettings`; ``**overrides`` replace its fields.

    Raises:
        ImportError: mediapipe (0.10.14 to 0.10.21) is not installed, or a later one
            without the pose solution; the message says ``pip install
            'semparts-reid[parser]'``.

    Example:
        >>> with MediaPipeParser(workers=2) as parser:            # doctest: +SKIP
        ...     result = parser.parse(crops)                      # RGB uint8 (H, W, 3)
        >>> result.found.mean(), result.labels[0].shape           # doctest: +SKIP
    """

    name = "mediapipe-pose"

    def __init__(
        self,
        *,
        workers: int = 1,
        backend: str = "thread",
        chunk_size: int = 32,
        settings: MediaPipeSettings | None = None,
        **overrides: Any,
    ) -> None:
        if backend not in ("process", "thread"):
            raise ValueError(f"backend={backend!r}: expected 'process' or 'thread'")
        if workers < 1 or chunk_size < 1:
            raise ValueError(f"workers={workers}, chunk_size={chunk_size}: expected >= 1")
        mp = import_mediapipe()  # fail here, not in a worker
        self.version = str(getattr(mp, "__version__", "?"))
        self.settings = settings or MediaPipeSettings()
        if overrides:
            self.settings = MediaPipeSettings(**{**asdict(self.settings), **overrides})
        self.workers, self.backend, self.chunk_size = workers, backend, chunk_size
        self._engine: _Engine | None = None
        self._pool: Executor | None = None

    def describe(self) -> dict[str, Any]:
        """The parser's name, MediaPipe version and settings (for manifests)."""
        return {"parser": self.name, "mediapipe": self.version, **asdict(self.settings)}

    def _thread_chunk(self, crops: list[np.ndarray]) -> list[tuple[np.ndarray, float, bool]]:
        engine = getattr(_THREAD_ENGINES, "engine", None)
        if engine is None:
            engine = _THREAD_ENGINES.engine = _Engine(self.settings)
        return engine.parse_many(crops)

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.backend == "process":
                # spawn: a forked copy of a process running torch/OpenMP threads can hang
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_process, initargs=(self.settings,),
                )  # fmt: skip
            else:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mediapipe")
        return self._pool

    def parse(self, crops: Sequence[np.ndarray]) -> ParseResult:
        """Parse RGB uint8 crops (H, W, 3); one map per crop, in order."""
        arrays = check_crops(crops)
        chunks = [arrays[i : i + self.chunk_size]
                  for i in range(0, len(arrays), self.chunk_size)]  # fmt: skip
        if self.workers == 1:
            if self._engine is None:
                self._engine = _Engine(self.settings)
            out = [item for chunk in chunks for item in self._engine.parse_many(chunk)]
        else:
            fn = _process_chunk if self.backend == "process" else self._thread_chunk
            out = [item for part in self._executor().map(fn, chunks) for item in part]
        return ParseResult(
            [o[0] for o in out],
            np.array([o[1] for o in out], np.float32),
            np.array([o[2] for o in out], bool),
        )

    def close(self) -> None:
        """Stop the worker pool and release the pose graph(s)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> MediaPipeParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
