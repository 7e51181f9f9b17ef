"""Layouts described by list files: MSMT17 and generic ``path,pid,camid`` image lists."""

from __future__ import annotations

import os
from pathlib import Path

from .records import DatasetLayoutError, ImageRecord, ReIDDataset, _finish

__all__ = ["MSMT17", "ImageListDataset", "read_image_list"]


def _read_msmt_list(list_file: Path, image_dir: Path) -> list[ImageRecord]:
    if not list_file.is_file():
        raise DatasetLayoutError(
            f"missing list file {list_file}: expected lines '<relative path> <pid>'"
        )
    records, seen = [], set()
    for lineno, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            rel, pid = parts[0], int(parts[1])
            cam = int(Path(rel).name.split("_")[2])
        except (IndexError, ValueError):
            raise DatasetLayoutError(
                f"{list_file}:{lineno}: cannot parse {line!r}: expected "
                "'PPPP/PPPP_NNN_CC_<time>_<frame>_<n>.jpg <pid>' (CC = camera)"
            ) from None
        if rel in seen:
            raise DatasetLayoutError(f"{list_file}:{lineno}: duplicate entry {rel}")
        seen.add(rel)
        records.append(ImageRecord(str(image_dir / rel), pid, cam - 1))
    if not records:
        raise DatasetLayoutError(f"empty list file {list_file}: expected '<path> <pid>' lines")
    return records


def MSMT17(  # noqa: N802
    root: str | os.PathLike[str],
    *,
    combine_val: bool = True,
    skip_corrupt: bool = False,
    verify: bool = False,
) -> ReIDDataset:
    """MSMT17 (V1 or V2) from its list files.

    ``root`` holds ``list_train.txt``, ``list_val.txt``, ``list_query.txt``,
    ``list_gallery.txt`` and the image folders ``train/`` + ``test/`` (V1) or
    ``mask_train_v2/`` + ``mask_test_v2/`` (V2). Each list line is
    ``<path relative to the image folder> <pid>``; the camera is the third
    ``_``-separated field of the file name. ``combine_val`` adds the validation list
    to the training split (the usual protocol).
    """
    base = Path(root).expanduser()
    train_dir = next((base / d for d in ("train", "mask_train_v2") if (base / d).is_dir()), None)
    test_dir = next((base / d for d in ("test", "mask_test_v2") if (base / d).is_dir()), None)
    if train_dir is None or test_dir is None:
        raise DatasetLayoutError(
            f"missing image folders under {base}: expected train/ and test/ (MSMT17_V1) "
            "or mask_train_v2/ and mask_test_v2/ (MSMT17_V2)"
        )
    train = _read_msmt_list(base / "list_train.txt", train_dir)
    if combine_val and (base / "list_val.txt").is_file():
        train += _read_msmt_list(base / "list_val.txt", train_dir)
        train = list(dict.fromkeys(train))  # val may repeat train entries
    query = _read_msmt_list(base / "list_query.txt", test_dir)
    gallery = _read_msmt_list(base / "list_gallery.txt", test_dir)
    return _finish("msmt17", base, train, query, gallery, skip_corrupt=skip_corrupt, verify=verify)


def read_image_list(list_file: str | os.PathLike[str]) -> list[ImageRecord]:
    """Read ``path,pid,camid`` rows (CSV, optional header) or ``path pid camid`` lines.

    Relative paths are resolved against the list file's folder; ``camid`` is 0-based.
    """
    file = Path(list_file).expanduser()
    if not file.is_file():
        raise DatasetLayoutError(f"missing list file {file}: expected 'path,pid,camid' rows")
    records, seen = [], set()
    for lineno, line in enumerate(file.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in (line.split(",") if "," in line else line.split())]
        if lineno == 1 and fields[:3] == ["path", "pid", "camid"]:
            continue
        try:
            path, pid, camid = fields[0], int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            raise DatasetLayoutError(
                f"{file}:{lineno}: cannot parse {line!r}: expected 'path,pid,camid' "
                "(comma- or space-separated, camid 0-based)"
            ) from None
        full = str((file.parent / path) if not os.path.isabs(path) else Path(path))
        if full in seen:
            raise DatasetLayoutError(f"{file}:{lineno}: duplicate entry {path}")
        seen.add(full)
        records.append(ImageRecord(full, pid, camid))
    if not records:
        raise DatasetLayoutError(f"empty list file {file}: expected 'path,pid,camid' rows")
    return records


def ImageListDataset(  # noqa: N802
    root: str | os.PathLike[str] | None = None,
    *,
    train: str | os.PathLike[str] | None = None,
    query: str | os.PathLike[str] | None = None,
    gallery: str | os.PathLike[str] | None = None,
    skip_corrupt: bool = False,
    verify: bool = False,
    name: str = "imagelist",
) -> ReIDDataset:
    """A dataset from list files of ``path,pid,camid`` rows (see :func:`read_image_list`).

    Either give ``root``, a folder holding ``train``/``query``/``gallery`` with extension
    ``.csv`` or ``.txt`` (at least one of them), or the list files explicitly.
    Splits without a list are empty.
    """
    files: dict[str, Path | None] = {
        "train": Path(train) if train else None,
        "query": Path(query) if query else None,
        "gallery": Path(gallery) if gallery else None,
    }
    if root is not None:
        base = Path(root).expanduser()
        for split in files:
            if files[split] is None:
                found = [base / f"{split}{e}" for e in (".csv", ".txt")]
                files[split] = next((f for f in found if f.is_file()), None)
    if all(f is None for f in files.values()):
        raise DatasetLayoutError(
            f"no list files found{f' in {root}' if root else ''}: expected "
            "train.csv / query.csv / gallery.csv (or .txt) with 'path,pid,camid' rows"
        )
    splits = {k: read_image_list(f) if f is not None else [] for k, f in files.items()}
    base_dir = Path(root) if root else next(f for f in files.values() if f is not None).parent
    return _finish(
        name,
        base_dir,
        splits["train"],
        splits["query"],
        splits["gallery"],
        skip_corrupt=skip_corrupt,
        verify=verify,
    )
