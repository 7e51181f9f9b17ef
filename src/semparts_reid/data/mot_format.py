"""MOTChallenge text files: ``seqinfo.ini`` and the box files (``gt.txt``, ``det.txt``,
a tracker's output), parsed and filtered into arrays. No image is read here.

Box rows are ``frame, id, bb_left, bb_top, bb_width, bb_height, c7, ...`` with 1-based
frames and 1-based pixel coordinates (the top-left pixel is ``(1, 1)``); boxes returned
here are 0-based ``x1, y1, x2, y2`` pixel bounds, clipped to the frame. The meaning of the
columns after the box depends on the file:

* MOT15 ``gt.txt`` (10 columns): ``flag, x, y, z`` (no class, no visibility);
* MOT16/17/20 ``gt.txt`` (9 columns): ``flag, class, visibility``: only class 1
  (pedestrian) is kept, and only rows with ``visibility >= min_visibility``;
* ``det.txt`` and tracker outputs: ``conf`` (then ``x, y, z`` or nothing); the id column
  is ``-1`` in a detection file and the track id in a tracker's output.

A ground-truth row with ``flag == 0`` ("do not consider") is dropped.

Example:
    >>> info = read_seqinfo("/data/MOT17/train/MOT17-02-FRCNN")  # doctest: +SKIP
    >>> boxes = read_mot_boxes(info.root / "gt" / "gt.txt", "gt", info)  # doctest: +SKIP
"""

from __future__ import annotations

import configparser
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, InputNotFoundError

__all__ = ["BOX_KINDS", "MOTBoxes", "SequenceInfo", "clip_boxes", "read_mot_boxes", "read_seqinfo"]

logger = logging.getLogger(__name__)

#: what a box file holds: ground truth, detections without ids, a tracker's output
BOX_KINDS: tuple[str, ...] = ("gt", "det", "tracks")
_PEDESTRIAN = 1  # MOT16/17/20 class id of a pedestrian


@dataclass(frozen=True)
class SequenceInfo:
    """The ``[Sequence]`` section of a ``seqinfo.ini``.

    Attributes:
        root: the sequence folder.
        name: sequence name (``name=``; the folder name if absent).
        frame_rate: frames per second (``frameRate=``).
        length: number of frames (``seqLength=``); frames are ``1 .. length``.
        width, height: frame size in pixels (``imWidth=``, ``imHeight=``).
        im_dir: folder of the frame images (``imDir=``, default ``img1``).
        im_ext: frame image extension (``imExt=``, default ``.jpg``).
    """

    root: Path
    name: str
    frame_rate: float
    length: int
    width: int
    height: int
    im_dir: str = "img1"
    im_ext: str = ".jpg"


def read_seqinfo(folder: str | os.PathLike[str]) -> SequenceInfo:
    """Read ``folder/seqinfo.ini``.

    Raises:
        InputNotFoundError: no such folder or no ``seqinfo.ini`` in it.
        InputError: the file lacks a ``[Sequence]`` section or a required key, or a value
            is not a positive number.
    """
    root = Path(folder).expanduser()
    path = root / "seqinfo.ini"
    if not path.is_file():
        raise InputNotFoundError(
            f"{path} not found: a MOTChallenge sequence folder holds seqinfo.ini "
            "(name, frameRate, seqLength, imWidth, imHeight, imDir)"
        )
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
        sec = parser["Sequence"]
    except (configparser.Error, KeyError) as err:
        raise InputError(f"{path}: expected a [Sequence] section ({err})") from None

    def positive(key: str, cast: type[int] | type[float]) -> float:
        if key not in sec:
            raise InputError(f"{path}: missing key {key!r} in [Sequence]")
        try:
            value = cast(float(sec[key])) if cast is int else float(sec[key])
        except ValueError:
            raise InputError(f"{path}: {key}={sec[key]!r} is not a number") from None
        if value <= 0:
            raise InputError(f"{path}: {key}={sec[key]!r}, expected a positive number")
        return value

    ext = sec.get("imExt", ".jpg").strip() or ".jpg"
    return SequenceInfo(
        root=root,
        name=sec.get("name", root.name).strip() or root.name,
        frame_rate=float(positive("frameRate", float)),
        length=int(positive("seqLength", int)),
        width=int(positive("imWidth", int)),
        height=int(positive("imHeight", int)),
        im_dir=sec.get("imDir", "img1").strip() or "img1",
        im_ext=ext if ext.startswith(".") else "." + ext,
    )


@dataclass(frozen=True)
class MOTBoxes:
    """Rows of a box file after filtering, sorted by frame (then file order).

    Attributes:
        frame: ``(N,)`` int64 1-based frame index.
        track: ``(N,)`` int64 the id column (ground-truth identity, tracker track id, or
            ``-1`` in a detection file).
        box: ``(N, 4)`` int64 ``x1, y1, x2, y2`` 0-based pixel bounds (``x2``/``y2``
            exclusive), inside the frame; the crop is ``image[y1:y2, x1:x2]``.
        score: ``(N,)`` float64 the 7th column (flag or confidence; 1 where absent).
        visibility: ``(N,)`` float64 visibility ratio (1 where the file has none).
    """

    frame: np.ndarray
    track: np.ndarray
    box: np.ndarray
    score: np.ndarray
    visibility: np.ndarray

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def select(self, keep: np.ndarray) -> MOTBoxes:
        """The rows where the boolean mask (or index array) ``keep`` selects."""
        return MOTBoxes(
            self.frame[keep], self.track[keep], self.box[keep], self.score[keep],
            self.visibility[keep],
        )  # fmt: skip


def clip_boxes(
    ltwh: np.ndarray, width: int, height: int, *, min_size: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """1-based ``left, top, width, height`` boxes -> clipped 0-based integer bounds.

    Args:
        ltwh: ``(N, 4)`` float boxes as in a MOT file.
        width, height: frame size.
        min_size: boxes narrower or shorter than this after clipping are degenerate.

    Returns:
        ``(bounds (N, 4) int64 x1, y1, x2, y2, keep (N,) bool)``: ``x1 = floor(left - 1)``
        and ``x2 = ceil(left - 1 + w)``, clipped to ``[0, width]`` (rows likewise);
        ``keep`` is False for boxes wholly outside the frame or degenerate.

    Example:
        >>> b, keep = clip_boxes(np.array([[-9., 1., 20., 10.], [700., 5., 10., 10.]]), 640, 480)
        >>> b[0].tolist(), keep.tolist()
        ([0, 0, 10, 10], [True, False])
    """
    lt = ltwh[:, :2] - 1.0
    lo = np.floor(lt)
    hi = np.ceil(lt + ltwh[:, 2:4])
    limit = np.array([width, height], dtype=np.float64)
    lo = np.clip(lo, 0, limit)
    hi = np.clip(hi, 0, limit)
    bounds = np.concatenate([lo, hi], axis=1).astype(np.int64)
    keep = np.all(bounds[:, 2:] - bounds[:, :2] >= min_size, axis=1)
    return bounds, keep


def _load_rows(path: Path) -> np.ndarray:
    """The numeric rows of a comma-separated MOT file, (N, C) float64."""
    if not path.is_file():
        raise InputNotFoundError(f"box file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"box file {path} is not a text file") from None
    lines = [ln.strip().rstrip(",") for ln in text.splitlines() if ln.strip()]
    if not lines:
        return np.zeros((0, 10))
    widths = {ln.count(",") for ln in lines}
    if len(widths) != 1:
        raise InputError(
            f"box file {path}: rows have different numbers of columns "
            f"({sorted(w + 1 for w in widths)}); expected one MOT layout"
        )
    try:
        rows = np.array([ln.split(",") for ln in lines], dtype=np.float64)
    except ValueError as err:
        raise InputError(f"box file {path}: a value is not a number ({err})") from None
    if rows.shape[1] < 6:
        raise InputError(
            f"box file {path}: {rows.shape[1]} columns, expected at least 6 "
            "(frame, id, bb_left, bb_top, bb_width, bb_height, ...)"
        )
    if not np.isfinite(rows[:, :6]).all():
        raise InputError(f"box file {path}: NaN or inf in the frame/id/box columns")
    return rows


def read_mot_boxes(
    path: str | os.PathLike[str],
    kind: str,
    info: SequenceInfo,
    *,
    min_visibility: float = 0.0,
    min_score: float | None = None,
    min_size: int = 2,
) -> MOTBoxes:
    """Read and filter one box file of a sequence.

    Args:
        path: the file (``gt/gt.txt``, ``det/det.txt`` or a tracker's output).
        kind: ``"gt"`` (flag, class and visibility filters apply), ``"det"`` (ids are
            ignored: every row gets ``track = -1``) or ``"tracks"`` (the id column is a
            tracklet id).
        info: the sequence (frame size and length).
        min_visibility: ground truth with a visibility column (MOT16/17/20): drop rows
            below this visibility.
        min_score: ``det`` / ``tracks``: drop rows whose confidence is below this.
        min_size: minimum crop width and height in pixels after clipping.

    Returns:
        :class:`MOTBoxes`, sorted by frame. Counts of dropped and clipped rows are logged.

    Raises:
        InputError: unknown ``kind``, an unreadable file, frames outside ``1..length``.
    """
    if kind not in BOX_KINDS:
        raise InputError(f"box file kind {kind!r}: expected one of {BOX_KINDS}")
    file = Path(path).expanduser()
    rows = _load_rows(file)
    n_cols = rows.shape[1]
    keep = np.ones(len(rows), dtype=bool)
    dropped: dict[str, int] = {}

    def drop(reason: str, mask: np.ndarray) -> None:
        dropped[reason] = int((keep & mask).sum())
        keep[mask] = False

    score = rows[:, 6] if n_cols > 6 else np.ones(len(rows))
    visibility = np.ones(len(rows))
    if kind == "gt":
        if n_cols > 6:
            drop("flag 0", score == 0)
        if n_cols == 9:  # MOT16/17/20: flag, class, visibility
            drop("not a pedestrian", rows[:, 7] != _PEDESTRIAN)
            visibility = rows[:, 8]
            drop(f"visibility < {min_visibility}", visibility < min_visibility)
    elif min_score is not None:
        drop(f"score < {min_score}", score < min_score)
    frames = rows[:, 0].astype(np.int64)
    bad = (frames < 1) | (frames > info.length)
    if bad.any():
        raise InputError(
            f"box file {file}: frame {int(frames[bad][0])} is outside 1..{info.length} "
            f"(seqLength of {info.root / 'seqinfo.ini'})"
        )
    bounds, inside = clip_boxes(rows[:, 2:6], info.width, info.height, min_size=min_size)
    drop(f"outside the frame or under {min_size} px", ~inside)
    lt, rb = rows[:, 2:4] - 1.0, rows[:, 2:4] - 1.0 + rows[:, 4:6]
    clipped = keep & (np.any(lt < 0, axis=1) | (rb[:, 0] > info.width) | (rb[:, 1] > info.height))
    track = rows[:, 1].astype(np.int64) if kind != "det" else np.full(len(rows), -1, np.int64)
    order = np.flatnonzero(keep)
    order = order[np.argsort(frames[order], kind="stable")]
    out = MOTBoxes(frames, track, bounds, score, visibility).select(order)
    logger.info(
        "%s: %d of %d rows kept (%d clipped at the frame edge); dropped: %s",
        file, len(out), len(rows), int(clipped.sum()),
        ", ".join(f"{n} {why}" for why, n in dropped.items() if n) or "none",
    )  # fmt: skip
    return out
