"""MOTChallenge sequences as a re-ID dataset: ``mot:/path/seq``.

A sequence folder holds ``seqinfo.ini``, its frames (``img1/*.jpg`` or a video file),
``gt/gt.txt`` and optionally ``det/det.txt`` (see :mod:`.mot_format` and
:mod:`.mot_frames`). :func:`mot_dataset` reads one or several sequences (each one
camera) into a :class:`MOTDataset`:

* **temporal split** (default): the first ``train_frames`` of each sequence (a fraction,
  or a number of frames) are the adaptation part, the rest the evaluation part; a model
  adapts on yesterday's footage and is scored on today's. ``split="transductive"`` uses
  every frame for both (label such numbers as transductive).
* **train** (the unlabeled target): the crops of ``source`` in the adaptation part:
  ``det/det.txt``, a tracker's output file, or the ground-truth *boxes* (``gt``) with
  their ids thrown away. **No ground-truth id reaches a training record**: a crop's pid
  is its tracklet (only a tracker's output has tracklets), else the crop's own index;
  ``train_table.tracklet`` is ``-1`` for a crop without a tracklet. ``train_table.frame``
  and ``train_table.sequence`` give the cannot-links (two crops of one frame are two
  people); equal tracklets are must-links.
* **evaluation** from ``gt/gt.txt`` in the evaluation part. ``query`` / ``gallery``
  follow the **segment protocol**: each sequence's evaluation part is cut into
  ``segments`` equal time segments, each a camera (``camid``), and the Market-1501 rules
  apply (a gallery crop of the query's person in the query's segment is junk); the
  queries are one crop per person and segment (the middle one of their frames there),
  the gallery is every ground-truth crop. ``eval`` / ``eval_table`` hold every crop of
  the evaluation part with its frame for the **re-association protocol**
  (:meth:`MOTDataset.evaluate_reassociation`, :mod:`semparts_reid.metrics.reassociation`).

Why crops go to disk: the trainer, the feature extractor and the part parser all read
:class:`ImageRecord` paths through worker processes; a crop folder keeps every one of
them working unchanged. The folder is a cache: written once per sequence, box file and
filter settings (each frame decoded once, all its boxes cut out of it), atomically, under
``cache_dir()/mot`` or ``cache=DIR``; a later build reuses it. :func:`read_crops` gives
the crops in memory without any file.

Example:
    >>> ds = build_dataset("mot:/data/MOT17/train/MOT17-02-FRCNN?source=det")  # doctest: +SKIP
    >>> ds.train_table.frame[:3], ds.train_table.tracklet[:3]  # doctest: +SKIP
    >>> ds = build_dataset("mot:/data/TUD-Campus,/data/TUD-Stadtmitte")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, InputNotFoundError
from .mot_format import MOTBoxes, SequenceInfo, read_mot_boxes, read_seqinfo
from .mot_frames import find_video, read_crops, write_crop_folder
from .records import ImageRecord, ReIDDataset
from .synthetic import cache_dir

if TYPE_CHECKING:  # torch and the metrics load only when a model is scored
    import torch

    from ..metrics.reassociation import ReassociationMetrics

__all__ = [
    "SPLITS",
    "CropTable",
    "MOTDataset",
    "find_sequences",
    "mot_dataset",
    "split_frame",
]

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("temporal", "transductive")
_CACHE_VERSION = 1


@dataclass(frozen=True)
class CropTable:
    """Per-crop facts aligned with a record list (row ``i`` is record ``i``).

    Attributes:
        frame: ``(N,)`` int64 1-based frame index in its sequence.
        sequence: ``(N,)`` int64 index of the sequence (in :attr:`MOTDataset.sequences`).
        tracklet: ``(N,)`` int64 dataset-wide tracklet id, ``-1`` where the source has
            none (detections, ground-truth boxes used as an unlabeled target).
        pid: ``(N,)`` int64 dataset-wide ground-truth identity (evaluation tables);
            ``-1`` in the training table (no ground truth is used there).
        segment: ``(N,)`` int64 dataset-wide time segment (the segment protocol's camera),
            ``-1`` in the training table.
        box: ``(N, 4)`` int64 ``x1, y1, x2, y2`` in the frame.
    """

    frame: np.ndarray
    sequence: np.ndarray
    tracklet: np.ndarray
    pid: np.ndarray
    segment: np.ndarray
    box: np.ndarray

    def __len__(self) -> int:
        return int(self.frame.shape[0])


class MOTDataset(ReIDDataset):
    """A :class:`ReIDDataset` read from MOTChallenge sequences, with per-crop tables.

    Attributes:
        train: the unlabeled target's crops (pid = tracklet or own index, camid = sequence).
        query / gallery: the segment protocol (camid = time segment, pid = ground truth).
        eval: every ground-truth crop of the evaluation part (camid = sequence).
        train_table / eval_table: :class:`CropTable` aligned with ``train`` / ``eval``.
        sequences: the :class:`SequenceInfo` of each sequence (index = ``sequence``).
        split_frames: first evaluation frame of each sequence (1 when transductive).
        split: ``"temporal"`` or ``"transductive"``.
        source: what the training crops came from (``gt``, ``det`` or a file path).
        gap, stride: the re-association protocol's defaults.
    """

    def __init__(
        self,
        name: str,
        root: str | os.PathLike[str],
        train: list[ImageRecord],
        query: list[ImageRecord],
        gallery: list[ImageRecord],
        *,
        eval_records: list[ImageRecord],
        train_table: CropTable,
        eval_table: CropTable,
        sequences: list[SequenceInfo],
        split_frames: list[int],
        split: str,
        source: str,
        gap: int,
        stride: int,
    ) -> None:
        super().__init__(name, root, train, query, gallery)
        self.eval = eval_records
        self.train_table = train_table
        self.eval_table = eval_table
        self.sequences = sequences
        self.split_frames = split_frames
        self.split = split
        self.source = source
        self.gap = gap
        self.stride = stride

    @property
    def tracklets(self) -> np.ndarray:
        """``(N_train,)`` tracklet id of each training crop (``-1``: none)."""
        return self.train_table.tracklet

    @property
    def frames(self) -> np.ndarray:
        """``(N_train,)`` frame index of each training crop (see ``train_table.sequence``)."""
        return self.train_table.frame

    def evaluate_reassociation(
        self,
        features: np.ndarray | torch.Tensor,
        *,
        gap: int | None = None,
        stride: int | None = None,
        metric: str = "cosine",
    ) -> ReassociationMetrics:
        """Score features ``(len(eval), D)`` of :attr:`eval` under the re-association protocol.

        A query's gallery is its own sequence; ``gap`` / ``stride`` default to the
        dataset's (the spec options).
        """
        from ..metrics.reassociation import evaluate_reassociation

        if int(features.shape[0]) != len(self.eval):
            raise InputError(
                f"features have {features.shape[0]} rows, expected one per eval crop "
                f"({len(self.eval)})"
            )
        t = self.eval_table
        return evaluate_reassociation(
            features, t.pid, t.frame, gap=self.gap if gap is None else gap,
            stride=self.stride if stride is None else stride, groups=t.sequence, metric=metric,
        )  # fmt: skip


def find_sequences(arg: str | os.PathLike[str]) -> list[Path]:
    """The sequence folders a ``mot:`` argument names.

    ``arg`` is a sequence folder (it has ``seqinfo.ini``), a folder whose sub-folders are
    sequences (all of them, sorted by name), or a comma-separated list of either.

    Raises:
        InputNotFoundError: a path does not exist or holds no sequence.
    """
    out: list[Path] = []
    for part in str(arg).split(","):
        if not part.strip():
            continue
        p = Path(part.strip()).expanduser()
        if (p / "seqinfo.ini").is_file():
            out.append(p)
            continue
        subs = sorted(q for q in p.iterdir() if (q / "seqinfo.ini").is_file()) if p.is_dir() else []
        if not subs:
            raise InputNotFoundError(
                f"{p}: not a MOTChallenge sequence folder (no seqinfo.ini) nor a folder of them"
            )
        out.extend(subs)
    if not out:
        raise InputNotFoundError(f"mot spec argument {arg!r} names no sequence folder")
    return out


def split_frame(info: SequenceInfo, train_frames: float) -> int:
    """The first evaluation frame: frames ``< split_frame`` are the adaptation part.

    ``train_frames`` in ``(0, 1)`` is a fraction of the sequence (``floor(f * length)``
    frames), an integer ``>= 1`` a number of frames.

    Example:
        >>> info = SequenceInfo(Path("."), "s", 25.0, 71, 640, 480)
        >>> split_frame(info, 0.5), split_frame(info, 40)
        (36, 41)
    """
    if isinstance(train_frames, bool) or not isinstance(train_frames, (int, float)):
        raise InputError(
            f"train_frames must be a fraction in (0, 1) or a frame count, got {train_frames!r}"
        )
    if 0 < train_frames < 1:
        n = int(np.floor(train_frames * info.length))
    elif float(train_frames).is_integer() and 1 <= train_frames < info.length:
        n = int(train_frames)
    else:
        raise InputError(
            f"train_frames={train_frames!r} for {info.name} ({info.length} frames): expected a "
            f"fraction in (0, 1) or a whole number of frames in 1..{info.length - 1}"
        )
    if n < 1:
        raise InputError(f"train_frames={train_frames!r} leaves no adaptation frame in {info.name}")
    return n + 1


def _file_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _source_file(info: SequenceInfo, source: str) -> tuple[str, Path]:
    """(kind, file) of a training source for one sequence."""
    if source == "auto":
        source = "det" if (info.root / "det" / "det.txt").is_file() else "gt"
    if source in ("gt", "det"):
        path = info.root / source / f"{source}.txt"
        if not path.is_file():
            raise InputNotFoundError(f"source={source}: {path} not found")
        return source, path
    p = Path(source).expanduser()
    if p.is_dir():  # a tracker's results folder: one <sequence name>.txt per sequence
        p = p / f"{info.name}.txt"
    if not p.is_file():
        raise InputNotFoundError(
            f"source={source!r}: {p} not found (expected 'gt', 'det', 'auto', a tracker "
            "output file, or a folder of <sequence>.txt tracker outputs)"
        )
    return "tracks", p


class _Crops:
    """The box table of one file of one sequence and its crop folder in the cache."""

    def __init__(
        self, info: SequenceInfo, kind: str, path: Path, cache: Path, filt: dict[str, Any]
    ) -> None:
        self.boxes: MOTBoxes = read_mot_boxes(path, kind, info, **filt)
        video = find_video(info)
        key = {
            "version": _CACHE_VERSION, "kind": kind, "file": _file_key(path),
            "frames": _file_key(video) if video else str((info.root / info.im_dir).resolve()),
            "filters": filt,
        }  # fmt: skip
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        self.folder = cache / f"{info.name}-{kind}-{digest}"
        self.key = key
        self.names = [f"{f:06d}_{i:06d}.jpg" for i, f in enumerate(self.boxes.frame.tolist())]

    def paths(self, rows: np.ndarray) -> list[str]:
        return [str(self.folder / self.names[i]) for i in rows.tolist()]


def _materialise(info: SequenceInfo, tables: list[_Crops]) -> None:
    """Write the crop folders that are not in the cache yet, decoding each frame once."""
    todo = [
        t
        for t in {str(t.folder): t for t in tables}.values()
        if not (t.folder / "COMPLETE.json").is_file()
    ]
    if not todo:
        return
    combined = MOTBoxes(*(np.concatenate([getattr(t.boxes, k) for t in todo]) for k in
                          ("frame", "track", "box", "score", "visibility")))  # fmt: skip
    logger.info(
        "cropping %d boxes of %s into %s", len(combined), info.name, [str(t.folder) for t in todo]
    )
    crops = read_crops(info, combined)
    start = 0
    for t in todo:
        stop = start + len(t.boxes)
        write_crop_folder(t.folder, t.names, crops[start:stop], meta=t.key)
        start = stop


def _segments(frames: np.ndarray, first: int, last: int, n: int) -> np.ndarray:
    """Segment index 0..n-1 of each frame in ``first..last`` (equal lengths)."""
    span = last - first + 1
    return np.minimum((frames - first) * n // max(span, 1), n - 1)


def _segment_queries(pid: np.ndarray, segment: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Index of the middle crop (by frame) of each (pid, segment) group."""
    order = np.lexsort((frame, segment, pid))
    key = pid[order] * (int(segment.max()) + 1) + segment[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    return np.sort(order[starts + (counts - 1) // 2])


def mot_dataset(
    arg: str | os.PathLike[str],
    *,
    source: str = "auto",
    split: str = "temporal",
    train_frames: float = 0.5,
    segments: int = 4,
    gap: int = 25,
    stride: int = 5,
    min_visibility: float = 0.0,
    min_score: float | None = None,
    min_size: int = 2,
    cache: str | os.PathLike[str] | None = None,
) -> MOTDataset:
    """The ``mot:`` dataset of one or several MOTChallenge sequences (one camera each).

    Args:
        arg: a sequence folder, a folder of sequences, or a comma-separated list.
        source: the unlabeled training crops: ``"det"`` (``det/det.txt``), ``"gt"``
            (``gt/gt.txt`` boxes, ids dropped), a tracker output file (MOT format; its
            ids become tracklets) or a folder of ``<sequence name>.txt`` tracker outputs;
            ``"auto"``: ``det`` where the sequence has it, else ``gt``.
        split: ``"temporal"`` (adapt on frames before the split frame, evaluate on the
            rest) or ``"transductive"`` (both on every frame).
        train_frames: the adaptation part: a fraction in ``(0, 1)`` or a frame count.
        segments: time segments per sequence in the segment protocol (each a camera).
        gap, stride: re-association defaults (frames).
        min_visibility: ground truth with a visibility column: minimum visibility.
        min_score: detections / tracker output: minimum confidence.
        min_size: minimum crop width and height in pixels after clipping.
        cache: crop cache folder (default ``cache_dir()/"mot"``).

    Returns:
        :class:`MOTDataset`.

    Raises:
        InputError: a missing sequence or file, a bad option, a video that cannot be read.
    """
    _check_mot_options(split, segments=segments, gap=gap, stride=stride, min_size=min_size)
    root = Path(cache).expanduser() if cache is not None else cache_dir() / "mot"
    infos = [read_seqinfo(p) for p in find_sequences(arg)]
    train_recs: list[ImageRecord] = []
    eval_recs: list[ImageRecord] = []
    tr: dict[str, list[np.ndarray]] = {k: [] for k in ("frame", "sequence", "tracklet", "box")}
    ev: dict[str, list[np.ndarray]] = {
        k: [] for k in ("frame", "sequence", "pid", "segment", "box")
    }
    splits: list[int] = []
    next_tracklet = next_pid = 0
    filters = {"min_visibility": min_visibility, "min_score": min_score, "min_size": min_size}
    for s, info in enumerate(infos):
        kind, train_src, gt = _sequence_crops(info, source, root, filters)
        _materialise(info, [train_src, gt])
        cut = split_frame(info, train_frames) if split == "temporal" else 1
        splits.append(cut)
        # training part: never a ground-truth id
        recs, n_train, next_tracklet = _train_part(
            s, kind, train_src, cut, split, next_tracklet, tr
        )
        train_recs += recs
        # evaluation part, from the ground truth
        recs, n_people, next_pid = _eval_part(s, info, gt, cut, segments, next_pid, ev)
        eval_recs += recs
        logger.info(
            "%s: %d training crops (%s, frames < %d), %d evaluation crops of %d people",
            info.name, n_train, kind, cut, len(recs), n_people,
        )  # fmt: skip
    train_table = _table(tr, len(train_recs))
    eval_table = _table(ev, len(eval_recs))
    # a training pid is the crop's tracklet, else its own index (never a ground-truth id)
    own = np.cumsum(train_table.tracklet < 0) - 1 + next_tracklet
    train_pids = np.where(train_table.tracklet >= 0, train_table.tracklet, own)
    train_recs = [
        ImageRecord(r.path, int(p), r.camid) for r, p in zip(train_recs, train_pids.tolist())
    ]
    query, gallery = _segment_protocol(eval_recs, eval_table)
    name = "mot-" + "+".join(i.name for i in infos)
    return MOTDataset(
        name, infos[0].root if len(infos) == 1 else infos[0].root.parent, train_recs, query,
        gallery, eval_records=eval_recs, train_table=train_table, eval_table=eval_table,
        sequences=infos, split_frames=splits, split=split, source=str(source), gap=gap,
        stride=stride,
    )  # fmt: skip


def _check_mot_options(split: str, **positive: int) -> None:
    """Raise :class:`InputError` on a bad ``split`` or a ``positive`` option below 1."""
    if split not in SPLITS:
        raise InputError(f"split={split!r}: expected one of {SPLITS}")
    for nm, val in positive.items():
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise InputError(f"{nm}={val!r}: expected an integer >= 1")


def _sequence_crops(
    info: SequenceInfo, source: str, root: Path, filters: dict[str, Any]
) -> tuple[str, _Crops, _Crops]:
    """The kind of the training source, its crops and the ground-truth crops of one
    sequence; ``filters`` holds ``min_visibility``, ``min_score`` and ``min_size``."""
    kind, path = _source_file(info, source)
    train_src = _Crops(
        info,
        kind,
        path,
        root,
        {"min_score": filters["min_score"], "min_size": filters["min_size"]}
        if kind != "gt"
        else {"min_visibility": filters["min_visibility"], "min_size": filters["min_size"]},
    )
    gt_filt = {"min_visibility": filters["min_visibility"], "min_size": filters["min_size"]}
    gt = (
        train_src
        if kind == "gt"
        else _Crops(info, "gt", info.root / "gt" / "gt.txt", root, gt_filt)
    )
    return kind, train_src, gt


def _train_part(
    s: int,
    kind: str,
    train_src: _Crops,
    cut: int,
    split: str,
    next_tracklet: int,
    tr: dict[str, list[np.ndarray]],
) -> tuple[list[ImageRecord], int, int]:
    """Training records of sequence ``s`` (pid ``-1``; never a ground-truth id), their
    table columns appended to ``tr``; returns the records, their count and the next
    free tracklet id."""
    b = train_src.boxes
    rows = np.flatnonzero(b.frame < cut) if split == "temporal" else np.arange(len(b))
    if kind == "tracks":
        ids, inv = np.unique(b.track[rows], return_inverse=True)
        tracklet = inv.astype(np.int64) + next_tracklet
        next_tracklet += len(ids)
    else:
        tracklet = np.full(len(rows), -1, np.int64)
    recs = [ImageRecord(p, -1, s) for p in train_src.paths(rows)]
    for k, v in (("frame", b.frame[rows]), ("sequence", np.full(len(rows), s)),
                 ("tracklet", tracklet), ("box", b.box[rows])):  # fmt: skip
        tr[k].append(v)
    return recs, len(rows), next_tracklet


def _eval_part(
    s: int,
    info: SequenceInfo,
    gt: _Crops,
    cut: int,
    segments: int,
    next_pid: int,
    ev: dict[str, list[np.ndarray]],
) -> tuple[list[ImageRecord], int, int]:
    """Evaluation records of sequence ``s`` from its ground truth at frames ``>= cut``,
    their table columns appended to ``ev``; returns the records, the number of people
    and the next free pid."""
    g = gt.boxes
    rows = np.flatnonzero(g.frame >= cut)
    ids, inv = np.unique(g.track[rows], return_inverse=True)
    pid = inv.astype(np.int64) + next_pid
    next_pid += len(ids)
    seg = _segments(g.frame[rows], cut, info.length, segments) + s * segments
    recs = [ImageRecord(p, int(i), s) for p, i in zip(gt.paths(rows), pid.tolist())]
    for k, v in (("frame", g.frame[rows]), ("sequence", np.full(len(rows), s)),
                 ("pid", pid), ("segment", seg), ("box", g.box[rows])):  # fmt: skip
        ev[k].append(v)
    return recs, len(ids), next_pid


def _table(cols: dict[str, list[np.ndarray]], n: int) -> CropTable:
    def col(k: str) -> np.ndarray:
        if k not in cols or not cols[k]:
            return np.full(n, -1, np.int64) if k != "box" else np.zeros((n, 4), np.int64)
        return np.concatenate(cols[k]).astype(np.int64)

    return CropTable(*(col(k) for k in ("frame", "sequence", "tracklet", "pid", "segment", "box")))


def _segment_protocol(
    eval_recs: list[ImageRecord], t: CropTable
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Query and gallery of the segment protocol (camid = time segment)."""
    gallery = [ImageRecord(r.path, r.pid, int(c)) for r, c in zip(eval_recs, t.segment.tolist())]
    if not gallery:
        return [], []
    q = _segment_queries(t.pid, t.segment, t.frame)
    return [gallery[i] for i in q.tolist()], gallery
