"""The Market-1501 folder layout, read by the real datasets and by the synthetic domains.

A dataset root holds ``bounding_box_train/``, ``query/`` and ``bounding_box_test/``; an
image is named ``PPPP_cC<anything>.<ext>``: identity ``PPPP`` (``-1`` junk, dropped;
``0000`` distractor, kept) and 1-based camera ``C`` (0-based in the records). Part maps
(``*.parts.png``) and CamStyle images (``*_fake_*``) beside the images are not images of
the split.

Both :mod:`semparts_reid.data.datasets` (Market-1501, DukeMTMC-reID) and
:mod:`semparts_reid.data.synthetic` (which writes its domains in this layout) read
folders through :func:`read_market_folder`, so neither imports the other's internals.

Example:
    >>> ds = read_market_folder("market1501", "/data/Market-1501-v15.09.15")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .records import DatasetLayoutError, ImageRecord, ReIDDataset, finish_dataset

__all__ = ["IMAGE_EXTENSIONS", "SPLIT_FOLDERS", "read_market_folder", "read_market_split"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
_MARKET_RE = re.compile(r"^(-?\d+)_c(\d+)")
_MARKET_PATTERN = "PPPP_cC<anything>.jpg (e.g. 0002_c1s1_000451_03.jpg; pid -1 = junk)"


def _list_images(folder: Path) -> list[Path]:
    """The split's image files, sorted; raises on a missing/empty folder or a duplicate."""
    if not folder.is_dir():
        raise DatasetLayoutError(f"missing split folder {folder}: expected a folder of images")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and not p.name.endswith(".parts.png")
        and "_fake_" not in p.stem
    )
    if not files:
        raise DatasetLayoutError(f"empty split folder {folder}: expected images {_MARKET_PATTERN}")
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem in stems:
            raise DatasetLayoutError(
                f"duplicate image {p} (same name as {stems[p.stem]}): one file per image expected"
            )
        stems[p.stem] = p
    return files


def read_market_split(
    folder: str | os.PathLike[str], *, drop_junk: bool = True
) -> list[ImageRecord]:
    """The records of one split folder, in file-name order (original pids, 0-based cameras).

    Raises:
        DatasetLayoutError: the folder is missing or empty, two files share a name, or a
            name does not parse as ``PPPP_cC...`` with pid >= -1 and camera >= 1.
    """
    records = []
    for p in _list_images(Path(folder)):
        m = _MARKET_RE.match(p.name)
        if m is None:
            raise DatasetLayoutError(
                f"cannot parse identity/camera from {p}: expected {_MARKET_PATTERN}"
            )
        pid, cam = int(m.group(1)), int(m.group(2))
        if pid == -1 and drop_junk:
            continue
        if pid < -1 or cam < 1:
            raise DatasetLayoutError(
                f"bad pid {pid} or camera {cam} in {p}: expected pid >= -1, camera >= 1"
            )
        records.append(ImageRecord(str(p), pid, cam - 1))
    return records


def read_market_folder(
    name: str, root: str | os.PathLike[str], *, skip_corrupt: bool = False, verify: bool = False
) -> ReIDDataset:
    """The dataset ``name`` stored in the Market-1501 layout under ``root``.

    Training pids are relabelled ``0 .. N-1``; query and gallery keep theirs.
    ``skip_corrupt=True`` decodes every image and drops undecodable ones with a warning;
    ``verify=True`` decodes every image and raises on the first bad one.

    Raises:
        DatasetLayoutError: ``root`` or a split folder is missing, or a file name does
            not match the layout (the message names the file).
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DatasetLayoutError(
            f"{name} root {base} does not exist: expected a folder holding "
            "bounding_box_train/, query/ and bounding_box_test/"
        )
    train, query, gallery = (read_market_split(base / d) for d in SPLIT_FOLDERS.values())
    return finish_dataset(
        name, base, train, query, gallery, skip_corrupt=skip_corrupt, verify=verify
    )
