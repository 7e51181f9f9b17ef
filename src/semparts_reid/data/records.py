"""Records and the dataset container shared by every layout reader.

A dataset split is a list of :class:`ImageRecord` ``(path, pid, camid)``; a
:class:`ReIDDataset` holds the three splits (train, query, gallery) and describes them.
A camera id is 0-based, or :data:`UNKNOWN_CAMERA` (``-1``) where the data has none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError
from .image_io import CorruptImageError, check_image

__all__ = [
    "UNKNOWN_CAMERA",
    "DatasetLayoutError",
    "ImageRecord",
    "ReIDDataset",
    "finish_dataset",
    "relabel",
]

#: the camera id of an image whose camera is not known (e.g. a plain folder tree)
UNKNOWN_CAMERA = -1

logger = logging.getLogger(__name__)


class ImageRecord(NamedTuple):
    """One image of a split: its path, identity and 0-based camera id (``-1``: unknown)."""

    path: str
    pid: int
    camid: int


class DatasetLayoutError(InputError):
    """A dataset folder or list file does not match the expected layout (an ``InputError``)."""


class ReIDDataset:
    """Three splits of :class:`ImageRecord` plus their description.

    Attributes:
        name: dataset name (e.g. ``"market1501"``).
        root: folder the dataset was read from.
        train / query / gallery: the splits.
        num_corrupt: images dropped because they could not be decoded
            (only with ``skip_corrupt=True``).
    """

    def __init__(
        self,
        name: str,
        root: str | os.PathLike[str],
        train: list[ImageRecord],
        query: list[ImageRecord],
        gallery: list[ImageRecord],
        *,
        num_corrupt: int = 0,
    ) -> None:
        self.name = name
        self.root = str(root)
        self.train = train
        self.query = query
        self.gallery = gallery
        self.num_corrupt = num_corrupt

    @property
    def num_train_pids(self) -> int:
        """Number of training identities (labels are ``0 .. num_train_pids-1``)."""
        return len({r.pid for r in self.train})

    @property
    def num_train_cams(self) -> int:
        """Number of known cameras seen in the training split (0 when none is known)."""
        return len({r.camid for r in self.train if r.camid >= 0})

    @property
    def num_cams(self) -> int:
        """Number of cameras over all splits (known camids are ``0 .. num_cams-1``)."""
        cams = {r.camid for split in (self.train, self.query, self.gallery) for r in split}
        return max(cams) + 1 if cams and max(cams) >= 0 else 0

    @property
    def num_images_without_camera(self) -> int:
        """Images over all splits whose camera is unknown (camid ``-1``)."""
        splits = (self.train, self.query, self.gallery)
        return sum(1 for split in splits for r in split if r.camid < 0)

    def summary(self) -> dict[str, dict[str, int]]:
        """Identities, images and known cameras per split, as data."""
        out: dict[str, dict[str, int]] = {}
        for split in ("train", "query", "gallery"):
            recs: list[ImageRecord] = getattr(self, split)
            out[split] = {
                "ids": len({r.pid for r in recs}),
                "images": len(recs),
                "cams": len({r.camid for r in recs if r.camid >= 0}),
            }
        return out

    def summary_table(self) -> str:
        """The summary as a fixed-width text table."""
        rows = [f"{self.name} ({self.root})", "  split   |   ids | images | cams", "  " + "-" * 32]
        for split, s in self.summary().items():
            rows.append(f"  {split:<7} | {s['ids']:5d} | {s['images']:6d} | {s['cams']:4d}")
        if n := self.num_images_without_camera:
            rows.append(f"  ({n} images without a camera id: camid -1)")
        if self.num_corrupt:
            rows.append(f"  ({self.num_corrupt} corrupt images skipped)")
        return "\n".join(rows)

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"ReIDDataset({self.name!r}, train={s['train']['images']} imgs/"
            f"{s['train']['ids']} ids, query={s['query']['images']}, "
            f"gallery={s['gallery']['images']})"
        )


def relabel(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """Map the pids of ``records`` to ``0 .. N-1`` in sorted order of the original pids."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [ImageRecord(r.path, mapping[r.pid], r.camid) for r in records]


def _filter_corrupt(
    records: list[ImageRecord], skip_corrupt: bool, verify: bool
) -> tuple[list[ImageRecord], int]:
    """Decode every image once; drop (skip_corrupt) or raise on the bad ones."""
    if not (skip_corrupt or verify):
        return records, 0
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:
        errors = list(pool.map(_try_check, [r.path for r in records]))
    bad = [(r, e) for r, e in zip(records, errors) if e is not None]
    if bad and not skip_corrupt:
        raise bad[0][1]  # type: ignore[misc]
    for r, e in bad:
        logger.warning("skipping corrupt image %s (%s)", r.path, e)
    return [r for r, e in zip(records, errors) if e is None], len(bad)


def _try_check(path: str) -> CorruptImageError | None:
    try:
        check_image(path)
    except CorruptImageError as err:
        return err
    return None


def finish_dataset(
    name: str,
    root: Path,
    train: list[ImageRecord],
    query: list[ImageRecord],
    gallery: list[ImageRecord],
    *,
    skip_corrupt: bool,
    verify: bool,
) -> ReIDDataset:
    """The :class:`ReIDDataset` of three parsed splits, every layout reader's last step.

    Relabels the training pids ``0 .. N-1``; with ``skip_corrupt`` / ``verify`` decodes
    every image first and drops (with a warning) or raises on the undecodable ones.
    """
    bad = 0
    splits = []
    for recs in (train, query, gallery):
        kept, n = _filter_corrupt(recs, skip_corrupt, verify)
        splits.append(kept)
        bad += n
    if bad:
        logger.warning("skipped %d corrupt images in %s", bad, root)
    return ReIDDataset(name, root, relabel(splits[0]), splits[1], splits[2], num_corrupt=bad)
