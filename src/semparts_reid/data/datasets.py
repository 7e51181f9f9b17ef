"""Re-ID dataset layouts: Market-1501, DukeMTMC-reID, MSMT17, image lists, synthetic domains.

A dataset is three lists of :class:`ImageRecord` (``train``, ``query``, ``gallery``).
Training identities are relabelled ``0 .. N-1``; camera ids are 0-based in every split;
query and gallery keep their original identity numbers (``0`` marks Market/Duke
distractors, which stay in the gallery). Junk detections (pid ``-1``) are dropped.

Datasets are named by spec strings (see :func:`build_dataset`)::

    >>> ds = build_dataset("synthetic:a?size=tiny")            # doctest: +SKIP
    >>> ds = build_dataset("market1501:/data/Market-1501-v15.09.15")  # doctest: +SKIP
    >>> print(ds.summary_table())                               # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from .image_io import CorruptImageError, check_image

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_MARKET_RE = re.compile(r"^(-?\d+)_c(\d+)")
_MARKET_PATTERN = "PPPP_cC<anything>.jpg (e.g. 0002_c1s1_000451_03.jpg; pid -1 = junk)"


class ImageRecord(NamedTuple):
    """One image of a split: its path, identity and 0-based camera id."""

    path: str
    pid: int
    camid: int


class DatasetLayoutError(ValueError):
    """A dataset folder or list file does not match the expected layout."""


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
        """Number of cameras seen in the training split."""
        return len({r.camid for r in self.train})

    @property
    def num_cams(self) -> int:
        """Number of cameras over all splits (camids are ``0 .. num_cams-1``)."""
        cams = {r.camid for split in (self.train, self.query, self.gallery) for r in split}
        return max(cams) + 1 if cams else 0

    def summary(self) -> dict[str, dict[str, int]]:
        """Identities, images and cameras per split, as data."""
        out: dict[str, dict[str, int]] = {}
        for split in ("train", "query", "gallery"):
            recs: list[ImageRecord] = getattr(self, split)
            out[split] = {
                "ids": len({r.pid for r in recs}),
                "images": len(recs),
                "cams": len({r.camid for r in recs}),
            }
        return out

    def summary_table(self) -> str:
        """The summary as a fixed-width text table."""
        rows = [f"{self.name} ({self.root})", "  split   |   ids | images | cams", "  " + "-" * 32]
        for split, s in self.summary().items():
            rows.append(f"  {split:<7} | {s['ids']:5d} | {s['images']:6d} | {s['cams']:4d}")
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


# ----------------------------------------------------------------------------- helpers


def relabel(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """Map the pids of ``records`` to ``0 .. N-1`` in sorted order of the original pids."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [ImageRecord(r.path, mapping[r.pid], r.camid) for r in records]


def _list_images(folder: Path) -> list[Path]:
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


def _parse_market_folder(folder: Path, *, drop_junk: bool = True) -> list[ImageRecord]:
    records = []
    for p in _list_images(folder):
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


def _finish(
    name: str,
    root: Path,
    train: list[ImageRecord],
    query: list[ImageRecord],
    gallery: list[ImageRecord],
    *,
    skip_corrupt: bool,
    verify: bool,
) -> ReIDDataset:
    bad = 0
    splits = []
    for recs in (train, query, gallery):
        kept, n = _filter_corrupt(recs, skip_corrupt, verify)
        splits.append(kept)
        bad += n
    if bad:
        logger.warning("skipped %d corrupt images in %s", bad, root)
    return ReIDDataset(name, root, relabel(splits[0]), splits[1], splits[2], num_corrupt=bad)


# ----------------------------------------------------------------------------- layouts


def _folder_dataset(
    name: str, root: str | os.PathLike[str], *, skip_corrupt: bool = False, verify: bool = False
) -> ReIDDataset:
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DatasetLayoutError(
            f"{name} root {base} does not exist: expected a folder holding "
            "bounding_box_train/, query/ and bounding_box_test/"
        )
    train = _parse_market_folder(base / "bounding_box_train")
    query = _parse_market_folder(base / "query")
    gallery = _parse_market_folder(base / "bounding_box_test")
    return _finish(name, base, train, query, gallery, skip_corrupt=skip_corrupt, verify=verify)


def Market1501(  # noqa: N802 - reads like a class, the usual name in re-ID code
    root: str | os.PathLike[str], *, skip_corrupt: bool = False, verify: bool = False
) -> ReIDDataset:
    """Market-1501: ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` under ``root``.

    File names are ``PPPP_cCsS_FFFFFF_NN.jpg``: identity ``PPPP`` (``-1`` junk, dropped;
    ``0000`` distractor, kept in the gallery), camera ``C`` (1-based on disk, 0-based here).
    ``skip_corrupt=True`` decodes every image and drops undecodable ones with a warning;
    ``verify=True`` decodes every image and raises on the first bad one.
    """
    return _folder_dataset("market1501", root, skip_corrupt=skip_corrupt, verify=verify)


def DukeMTMCreID(  # noqa: N802
    root: str | os.PathLike[str], *, skip_corrupt: bool = False, verify: bool = False
) -> ReIDDataset:
    """DukeMTMC-reID: same folder layout as Market-1501, names ``PPPP_cC_fFFFFFFF.jpg``."""
    return _folder_dataset("dukemtmcreid", root, skip_corrupt=skip_corrupt, verify=verify)


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


# ----------------------------------------------------------------------------- factory


def _synthetic(domain: str, **kw: Any) -> ReIDDataset:
    from .synthetic import synthetic_dataset

    return synthetic_dataset(domain, **kw)


_FACTORIES: dict[str, Callable[..., ReIDDataset]] = {
    "market1501": Market1501,
    "dukemtmcreid": DukeMTMCreID,
    "msmt17": MSMT17,
    "imagelist": ImageListDataset,
    "synthetic": _synthetic,
}
_ALIASES = {"market": "market1501", "duke": "dukemtmcreid", "dukemtmc": "dukemtmcreid"}


def list_datasets() -> list[str]:
    """Names usable in a :func:`build_dataset` spec."""
    return sorted(_FACTORIES)


def _coerce(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def parse_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """Split ``"name:argument?key=value&..."`` into ``(name, argument, options)``."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(
            f"dataset spec {spec!r} is not 'name:path' (e.g. 'market1501:/data/Market', "
            f"'synthetic:a'); known names: {', '.join(list_datasets())}"
        )
    name, rest = spec.split(":", 1)
    arg, _, query = rest.partition("?")
    opts = {k: _coerce(v) for k, v in parse_qsl(query, keep_blank_values=True)}
    return name.strip().lower(), arg, opts


def build_dataset(spec: str, **kwargs: Any) -> ReIDDataset:
    """Build a dataset from a spec string.

    Args:
        spec: ``"<name>:<argument>[?key=value&...]"``: ``market1501:/path``,
            ``dukemtmcreid:/path``, ``msmt17:/path``, ``imagelist:/folder``,
            ``synthetic:a`` / ``synthetic:b`` (options e.g. ``?size=tiny&seed=1``).
        **kwargs: keyword arguments of the dataset function; they override spec options.

    Example:
        >>> ds = build_dataset("synthetic:a?size=tiny")  # doctest: +SKIP
        >>> ds.num_train_pids  # doctest: +SKIP
        12
    """
    name, arg, opts = parse_spec(spec)
    name = _ALIASES.get(name, name)
    if name not in _FACTORIES:
        raise ValueError(f"unknown dataset {name!r} in spec {spec!r}; known: {list_datasets()}")
    if not arg:
        raise ValueError(f"dataset spec {spec!r} has no path/argument after '{name}:'")
    opts.update(kwargs)
    return _FACTORIES[name](arg, **opts)


def iter_splits(ds: ReIDDataset) -> Iterable[tuple[str, list[ImageRecord]]]:
    """``(split name, records)`` for train, query and gallery."""
    return (("train", ds.train), ("query", ds.query), ("gallery", ds.gallery))
