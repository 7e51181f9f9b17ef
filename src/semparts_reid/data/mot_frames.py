"""Frames of a MOTChallenge sequence and the crops of its boxes.

A sequence's frames are ``<root>/<imDir>/<frame:06d><imExt>`` (decoded with PIL) or,
where that folder is absent, a video file in the sequence folder (``video.mp4`` or the
only ``*.mp4`` / ``*.avi`` / ``*.mkv`` / ``*.mov`` there; decoded with OpenCV, imported
only then: ``pip install semparts-reid[video]``). Frame ``f`` of a video is its ``f``-th
decoded frame (1-based).

:func:`read_crops` decodes each needed frame once and cuts all of its boxes out of it
(views into the frame, no per-pixel work); :func:`write_crop_folder` writes crops as JPEG
files into a folder that appears atomically, complete with a marker, or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError, InputNotFoundError
from .image_io import load_rgb_array
from .mot_format import MOTBoxes, SequenceInfo

__all__ = [
    "CROP_MARKER",
    "VIDEO_EXTENSIONS",
    "find_video",
    "iter_frames",
    "read_crops",
    "write_crop_folder",
]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")
CROP_MARKER = "COMPLETE.json"


def find_video(info: SequenceInfo) -> Path | None:
    """The sequence's video file, or None when it has a frame folder.

    Raises:
        InputNotFoundError: neither the frame folder nor a video file exists.
        InputError: several video files and none named ``video.*``.
    """
    if (info.root / info.im_dir).is_dir():
        return None
    videos = sorted(p for p in info.root.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    named = [p for p in videos if p.stem == "video"]
    if named:
        return named[0]
    if len(videos) == 1:
        return videos[0]
    if not videos:
        raise InputNotFoundError(
            f"sequence {info.root}: no frame folder {info.im_dir}/ and no video file "
            f"({', '.join(VIDEO_EXTENSIONS)})"
        )
    raise InputError(
        f"sequence {info.root}: several video files {[p.name for p in videos]}; "
        "name the one to use video.<ext>"
    )


def _check_size(frame: np.ndarray, info: SequenceInfo, where: str) -> np.ndarray:
    if frame.shape[:2] != (info.height, info.width):
        raise InputError(
            f"{where}: frame of {frame.shape[1]}x{frame.shape[0]} px, seqinfo.ini says "
            f"{info.width}x{info.height}"
        )
    return frame


def _iter_video(path: Path, info: SequenceInfo, wanted: np.ndarray) -> Iterator[tuple[int, Any]]:
    try:
        import cv2
    except ImportError:
        raise ImportError(
            f"reading the video {path} needs OpenCV: pip install 'semparts-reid[video]' "
            "(opencv-python-headless), or extract its frames to img1/000001.jpg ..."
        ) from None
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"cannot open video {path} with OpenCV")
    pos, last = 0, int(wanted[-1])
    todo = set(wanted.tolist())
    try:
        while pos < last:
            ok = cap.grab()
            if not ok:
                break
            pos += 1
            if pos in todo:
                ok, bgr = cap.retrieve()
                if not ok:
                    raise InputError(f"video {path}: cannot decode frame {pos}")
                yield pos, _check_size(np.ascontiguousarray(bgr[:, :, ::-1]), info, str(path))
    finally:
        cap.release()
    if pos < last:
        raise InputError(f"video {path} has {pos} frames; boxes need frame {last}")


def iter_frames(
    info: SequenceInfo, frames: Sequence[int] | np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame, image (H, W, 3) uint8 RGB)`` for the sorted unique ``frames``.

    Raises:
        InputNotFoundError: a frame image or the video is missing.
        InputError: a frame's size differs from ``seqinfo.ini``, the video is too short.
    """
    wanted = np.unique(np.asarray(frames, dtype=np.int64))
    if wanted.size == 0:
        return
    video = find_video(info)
    if video is not None:
        yield from _iter_video(video, info, wanted)
        return
    folder = info.root / info.im_dir
    for f in wanted.tolist():
        path = folder / f"{f:06d}{info.im_ext}"
        if not path.is_file():
            raise InputNotFoundError(f"frame {f} of {info.root}: {path} not found")
        yield f, _check_size(load_rgb_array(path), info, str(path))


def read_crops(info: SequenceInfo, boxes: MOTBoxes) -> list[np.ndarray]:
    """The crop of every row of ``boxes``, in row order, decoding each frame once.

    Returns:
        ``len(boxes)`` uint8 arrays ``(h_i, w_i, 3)`` (RGB), views into their frame.
    """
    crops: list[np.ndarray] = [np.empty((0, 0, 3), np.uint8)] * len(boxes)
    if not len(boxes):
        return crops
    order = np.argsort(boxes.frame, kind="stable")
    frames_sorted = boxes.frame[order]
    bounds = np.searchsorted(frames_sorted, np.unique(frames_sorted), side="left").tolist()
    bounds.append(len(order))
    starts = dict(zip(np.unique(frames_sorted).tolist(), zip(bounds[:-1], bounds[1:])))
    for f, image in iter_frames(info, frames_sorted):
        lo, hi = starts[f]
        for i, (x1, y1, x2, y2) in zip(order[lo:hi].tolist(), boxes.box[order[lo:hi]].tolist()):
            crops[i] = image[y1:y2, x1:x2]
    return crops


def _write_jpeg(path: str, crop: np.ndarray, quality: int) -> None:
    Image.fromarray(np.ascontiguousarray(crop)).save(path, quality=quality)


def write_crop_folder(
    folder: str | os.PathLike[str],
    names: Sequence[str],
    crops: Sequence[np.ndarray],
    *,
    meta: dict[str, Any] | None = None,
    quality: int = 95,
) -> Path:
    """Write ``crops`` as ``folder/<name>`` JPEG files, atomically as a whole.

    The files go to a temporary folder beside ``folder``, with a ``COMPLETE.json`` marker
    (holding ``meta``) written last, and the temporary folder is renamed onto ``folder``.
    A folder that already has the marker is reused as it is (its crops are not
    rewritten); one without it is a leftover of an interrupted run and is replaced.

    Returns:
        ``folder``.
    """
    final = Path(folder).expanduser()
    if (final / CROP_MARKER).is_file():
        return final
    if len(names) != len(crops):
        raise InputError(f"{len(names)} crop names for {len(crops)} crops")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:  # JPEG encoding releases the GIL
            paths = [str(tmp / n) for n in names]
            list(pool.map(_write_jpeg, paths, crops, [quality] * len(paths)))
        marker = {"crops": len(names), **(meta or {})}
        (tmp / CROP_MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        if final.exists():
            logger.warning("replacing incomplete crop folder %s", final)
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / CROP_MARKER).is_file():  # not a concurrent winner: a real error
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
