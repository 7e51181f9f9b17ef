"""Layouts described by list files: MSMT17 and generic ``path,pid,camid[,split]`` image lists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from .records import DatasetLayoutError, ImageRecord, ReIDDataset, finish_dataset

__all__ = ["MSMT17", "SPLITS", "ImageListDataset", "read_image_list", "read_split_list"]


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
    return finish_dataset(
        "msmt17", base, train, query, gallery, skip_corrupt=skip_corrupt, verify=verify
    )


SPLITS = ("train", "query", "gallery")
_LIST_FORMAT = "'path,pid,camid' or 'path,pid,camid,split' rows (comma- or space-separated)"


class _Row(NamedTuple):
    lineno: int
    record: ImageRecord
    split: str | None
    path: str  # as written in the file


def _read_rows(file: Path) -> list[_Row]:
    """Every row of a list file, with its line number and split (``None`` if not given)."""
    if not file.is_file():
        raise DatasetLayoutError(f"missing list file {file}: expected {_LIST_FORMAT}")
    rows: list[_Row] = []
    for lineno, line in enumerate(file.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in (line.split(",") if "," in line else line.split())]
        if not rows and [f.lower() for f in fields[:3]] == ["path", "pid", "camid"]:
            continue  # header
        try:
            path, pid, camid = fields[0], int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            raise DatasetLayoutError(
                f"{file}:{lineno}: cannot parse {line!r}: expected {_LIST_FORMAT}, "
                "camid 0-based"
            ) from None
        split = fields[3].lower() if len(fields) > 3 and fields[3] else None
        if split is not None and split not in SPLITS:
            raise DatasetLayoutError(
                f"{file}:{lineno}: split {fields[3]!r}: expected one of {', '.join(SPLITS)}"
            )
        full = str((file.parent / path) if not os.path.isabs(path) else Path(path))
        rows.append(_Row(lineno, ImageRecord(full, pid, camid), split, path))
    if not rows:
        raise DatasetLayoutError(f"empty list file {file}: expected {_LIST_FORMAT}")
    return rows


def _check_unique(file: Path, rows: list[_Row]) -> None:
    seen: set[tuple[str | None, str]] = set()
    for row in rows:
        key = (row.split, row.record.path)
        if key in seen:
            where = f" in split {row.split}" if row.split else ""
            raise DatasetLayoutError(f"{file}:{row.lineno}: duplicate entry {row.path}{where}")
        seen.add(key)


def read_image_list(list_file: str | os.PathLike[str]) -> list[ImageRecord]:
    """Read ``path,pid,camid`` rows (CSV, optional header) or ``path pid camid`` lines.

    Relative paths are resolved against the list file's folder; ``camid`` is 0-based.
    A fourth ``split`` column, if present, is ignored here (see
    :func:`read_split_list`).
    """
    file = Path(list_file).expanduser()
    rows = [row._replace(split=None) for row in _read_rows(file)]
    _check_unique(file, rows)
    return [row.record for row in rows]


def read_split_list(
    list_file: str | os.PathLike[str], *, split: str | None = None
) -> dict[str, list[ImageRecord]]:
    """Read one list file holding several splits: ``path,pid,camid,split`` rows.

    Args:
        list_file: CSV (optional header ``path,pid,camid,split``) or space-separated.
        split: the split of rows without a fourth column (``"train"``, ``"query"`` or
            ``"gallery"``); needed when some row has none.

    Returns:
        ``{"train": [...], "query": [...], "gallery": [...]}`` (absent splits are empty).

    Raises:
        DatasetLayoutError: a row without a split when ``split`` is not given, an unknown
            split name, an unparsable row (``file:line``), a duplicate within a split.
    """
    if split is not None and split not in SPLITS:
        raise DatasetLayoutError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    file = Path(list_file).expanduser()
    rows = _read_rows(file)
    if split is None:
        unsplit = next((row.lineno for row in rows if row.split is None), None)
        if unsplit is not None:
            raise DatasetLayoutError(
                f"{file}:{unsplit}: row has no split column; add a fourth column "
                f"({', '.join(SPLITS)}) to every row, or name the split of all rows in the "
                f"spec, e.g. 'imagelist:{file}?split=query'"
            )
    rows = [row if row.split is not None else row._replace(split=split) for row in rows]
    _check_unique(file, rows)
    out: dict[str, list[ImageRecord]] = {k: [] for k in SPLITS}
    for row in rows:
        out[str(row.split)].append(row.record)
    return out


def ImageListDataset(  # noqa: N802
    root: str | os.PathLike[str] | None = None,
    *,
    train: str | os.PathLike[str] | None = None,
    query: str | os.PathLike[str] | None = None,
    gallery: str | os.PathLike[str] | None = None,
    split: str | None = None,
    skip_corrupt: bool = False,
    verify: bool = False,
    name: str = "imagelist",
) -> ReIDDataset:
    """A dataset from list files of ``path,pid,camid`` rows (see :func:`read_image_list`).

    ``root`` is either

    * one list file (``imagelist:/data/list.csv``) whose rows carry a fourth column
      ``split`` (``train``, ``query`` or ``gallery``); ``split=`` names the split of rows
      without one (``imagelist:/data/query.csv?split=query``); see
      :func:`read_split_list`; or
    * a folder holding ``train``/``query``/``gallery`` with extension ``.csv`` or
      ``.txt`` (at least one of them).

    Or give the per-split list files explicitly. Splits without rows are empty.
    """
    files: dict[str, Path | None] = {
        "train": Path(train) if train else None,
        "query": Path(query) if query else None,
        "gallery": Path(gallery) if gallery else None,
    }
    if root is not None and Path(root).expanduser().is_file():
        if any(f is not None for f in files.values()):
            raise DatasetLayoutError(
                f"{root} is a list file: give either it or train=/query=/gallery=, not both"
            )
        single = Path(root).expanduser()
        splits = read_split_list(single, split=split)
        return finish_dataset(name, single.parent, splits["train"], splits["query"],
                              splits["gallery"], skip_corrupt=skip_corrupt, verify=verify)
    if split is not None:
        raise DatasetLayoutError(
            f"split={split!r} applies to a single list file, but {root} is not a file"
        )
    if root is not None:
        base = Path(root).expanduser()
        if not base.is_dir():
            raise DatasetLayoutError(
                f"image list {base} does not exist: expected a list file "
                "(path,pid,camid,split rows) or a folder with train/query/gallery .csv/.txt"
            )
        for k in files:
            if files[k] is None:
                found = [base / f"{k}{e}" for e in (".csv", ".txt")]
                files[k] = next((f for f in found if f.is_file()), None)
    if all(f is None for f in files.values()):
        raise DatasetLayoutError(
            f"no list files found{f' in {root}' if root else ''}: expected "
            "train.csv / query.csv / gallery.csv (or .txt) with 'path,pid,camid' rows"
        )
    lists = {k: read_image_list(f) if f is not None else [] for k, f in files.items()}
    base_dir = Path(root) if root else next(f for f in files.values() if f is not None).parent
    return finish_dataset(
        name,
        base_dir,
        lists["train"],
        lists["query"],
        lists["gallery"],
        skip_corrupt=skip_corrupt,
        verify=verify,
    )
