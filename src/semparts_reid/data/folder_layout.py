"""Plain folder trees: ``root/{train,query,gallery}/<identity>/<image>`` (the ``folder:`` spec).

The identity of an image is the name of its folder; the camera is taken from an optional
``c<N>`` in the file name (1-based on disk, as Market-1501's ``c1``: ``img_c3_001.jpg``
is camera id 2), else it is **unknown**: camera id ``-1``
(:data:`~semparts_reid.data.records.UNKNOWN_CAMERA`). Evaluation then removes only the
query image itself from its gallery, and training switches camera-style augmentation
off (``docs/datasets.md``, ``docs/evaluation.md``).

Identity ids: folder names are sorted (numbers by value, ``"2"`` before ``"10"``, then
other names alphabetically) and numbered from 0, over ``train/`` for the training split
(so training ids are ``0 .. N-1``) and over ``query/`` and ``gallery/`` together for the
test splits, so one name has one id in both.

Example:
    >>> ds = read_folder_tree("/data/my_reid")  # doctest: +SKIP
    >>> ds.query[0]  # doctest: +SKIP
    ImageRecord(path='/data/my_reid/query/alice/img_c1_001.jpg', pid=0, camid=0)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .market_layout import IMAGE_EXTENSIONS
from .records import UNKNOWN_CAMERA, DatasetLayoutError, ImageRecord, ReIDDataset, finish_dataset

__all__ = ["FOLDER_SPLITS", "camera_from_name", "read_folder_tree"]

FOLDER_SPLITS = ("train", "query", "gallery")
# "c<N>" not glued to a preceding letter/digit and not followed by a digit:
# img_c3_001, 0002_c1s1_000451_03, cam-c12 -> 3, 1, 12 (1-based); "pic3", "disc12" do not count
_CAMERA_RE = re.compile(r"(?<![A-Za-z0-9])[cC](\d+)(?!\d)")
_LAYOUT = "<root>/{train,query,gallery}/<identity>/<image> (train/ optional)"


def camera_from_name(path: str | os.PathLike[str]) -> int:
    """The 0-based camera id of a file named with ``c<N>`` (1-based), else ``-1``.

    Raises:
        DatasetLayoutError: ``c0`` (cameras on disk start at ``c1``).
    """
    m = _CAMERA_RE.search(Path(path).stem)
    if m is None:
        return UNKNOWN_CAMERA
    cam = int(m.group(1))
    if cam < 1:
        raise DatasetLayoutError(
            f"camera c{m.group(1)} in {path}: c<N> in a file name is 1-based (c1 = the first "
            "camera); rename the file or drop the c<N> to leave the camera unknown"
        )
    return cam - 1


def _name_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _is_image(p: Path) -> bool:
    return (
        p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not p.name.endswith(".parts.png")
        and "_fake_" not in p.stem
    )


def _read_split(folder: Path) -> list[tuple[str, Path]]:
    """``(identity name, image path)`` of one split folder, sorted by name then file.

    Raises:
        DatasetLayoutError: an image directly in the split folder, or no image at all.
    """
    stray = sorted(p for p in folder.iterdir() if _is_image(p))
    if stray:
        raise DatasetLayoutError(
            f"image {stray[0]} lies directly in {folder}: expected {folder}/<identity>/<image>, "
            "one folder per identity"
        )
    items: list[tuple[str, Path]] = []
    for ident in sorted(folder.iterdir(), key=lambda p: _name_key(p.name)):
        if not ident.is_dir() or ident.name.startswith("."):
            continue
        items.extend((ident.name, p) for p in sorted(ident.iterdir()) if _is_image(p))
    if not items:
        raise DatasetLayoutError(
            f"no images in {folder}: expected {folder}/<identity>/<image> "
            f"({', '.join(IMAGE_EXTENSIONS)})"
        )
    return items


def _records(items: list[tuple[str, Path]], ids: dict[str, int]) -> list[ImageRecord]:
    return [ImageRecord(str(p), ids[name], camera_from_name(p)) for name, p in items]


def _numbering(*splits: list[tuple[str, Path]]) -> dict[str, int]:
    names = sorted({name for items in splits for name, _ in items}, key=_name_key)
    return {name: i for i, name in enumerate(names)}


def read_folder_tree(
    root: str | os.PathLike[str],
    *,
    skip_corrupt: bool = False,
    verify: bool = False,
    name: str = "folder",
) -> ReIDDataset:
    """The dataset of a plain folder tree (see the module docstring).

    Args:
        root: folder holding ``query/`` and ``gallery/`` (required) and ``train/``
            (optional: without it the training split is empty, enough to evaluate).
        skip_corrupt, verify: decode every image and drop (with a warning) or raise on
            undecodable ones.
        name: the dataset's name in summaries.

    Raises:
        DatasetLayoutError: ``root`` or ``query/`` / ``gallery/`` missing (the message
            names the root and what is missing), an image outside an identity folder, a
            split without images, a ``c0`` camera in a file name.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DatasetLayoutError(f"folder dataset root {base} does not exist: expected {_LAYOUT}")
    missing = [s for s in ("query", "gallery") if not (base / s).is_dir()]
    if missing:
        raise DatasetLayoutError(
            f"folder dataset root {base} has no {' and no '.join(f'{s}/' for s in missing)} "
            f"folder: expected {_LAYOUT}"
        )
    train_items = _read_split(base / "train") if (base / "train").is_dir() else []
    query_items, gallery_items = _read_split(base / "query"), _read_split(base / "gallery")
    test_ids = _numbering(query_items, gallery_items)
    return finish_dataset(
        name,
        base,
        _records(train_items, _numbering(train_items)),
        _records(query_items, test_ids),
        _records(gallery_items, test_ids),
        skip_corrupt=skip_corrupt,
        verify=verify,
    )
