"""Parser output folders: part maps in the project's format plus a manifest.

A parse of a dataset writes one folder::

    DIR/
      manifest.csv        one row per crop (record) of the parsed splits
      parse.json          the run: spec, splits, parser and its settings, counts, speed
      maps/<rel>.parts.png
                          one map per crop with a pose

* ``maps/<rel>.parts.png`` is a single-channel 8-bit PNG of the crop's size, one class
  per pixel in the ``parts4`` grouping (0 background, 1 head, 2 upper, 3 lower;
  :func:`semparts_reid.data.part_labels.read_part_map` with ``table="parts4"`` reads
  it). ``<rel>`` is the crop's image path relative to the dataset root with its suffix
  replaced, so ``root/bounding_box_train/0001_c1s1_000151_00.jpg`` gets
  ``maps/bounding_box_train/0001_c1s1_000151_00.parts.png`` -- the name the library
  reads *beside* an image (:func:`~semparts_reid.data.part_labels.part_map_path`), in a
  mirror tree. A path outside the root, or one that is not a plain file path (a video
  crop's address), gets ``maps/_crops/<sha1 of the path, 16 hex>.parts.png``.
* ``manifest.csv`` has the header
  ``split,index,path,map,found,confidence,width,height``: the split and position of the
  record in it, its image path as the dataset gives it, the map's path relative to
  ``DIR`` (empty where no pose was found), ``found`` 1/0, the parser's ``confidence``
  (0 where not found, 4 decimals) and the crop's size. A crop in several splits has a
  row in each and one map.
* **Fallback.** A crop without a pose has no map (an old one at its name is removed)
  and ``found=0``; whoever reads the folder keeps that crop's current labels (its own
  maps, a prior, or none). ``parse.json`` counts them under ``"fallback"``.

:class:`ParsedPartMaps` reads such a folder back: ``maps.read(image_path)`` gives the
crop's (H, W) uint8 map, or ``None`` for a fallback crop or a path the parse did not see.
Every file is written atomically (:mod:`semparts_reid._io`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from .._io import atomic_open, atomic_write_text
from ..errors import InputError, InputNotFoundError
from ..layers.parts import NUM_PART_CLASSES

__all__ = [
    "MANIFEST_NAME",
    "MAPS_DIR",
    "SUMMARY_NAME",
    "ManifestRow",
    "ParsedPartMaps",
    "ParsedPartMapsSet",
    "PartMapWriter",
    "map_relpath",
    "open_parsed_maps",
]

MANIFEST_NAME = "manifest.csv"
SUMMARY_NAME = "parse.json"
MAPS_DIR = "maps"
_PLAIN = re.compile(r"^[A-Za-z0-9._+\-/]+$")


@dataclass(frozen=True)
class ManifestRow:
    """One crop of ``manifest.csv`` (``map`` is relative to the folder, ``""``: none)."""

    split: str
    index: int
    path: str
    map: str
    found: bool
    confidence: float
    width: int
    height: int


def map_relpath(image_path: str, root: str | os.PathLike[str] | None) -> str:
    """The map's path inside the output folder for the crop at ``image_path``.

    Example:
        >>> map_relpath("/d/bounding_box_train/0001_c1s1_01.jpg", "/d")
        'maps/bounding_box_train/0001_c1s1_01.parts.png'
        >>> map_relpath("/d/seq/video.mp4#f=3&box=1,2,3,4", "/d")[:12]
        'maps/_crops/'
    """
    rel: str | None = None
    if root is not None:
        try:
            rel = os.path.relpath(os.path.abspath(image_path), os.path.abspath(root))
        except ValueError:  # another drive (Windows)
            rel = None
    if rel is not None:
        rel = rel.replace(os.sep, "/")
    if rel is None or rel.startswith("../") or rel == ".." or not _PLAIN.match(rel):
        digest = hashlib.sha1(image_path.encode("utf-8")).hexdigest()[:16]
        return f"{MAPS_DIR}/_crops/{digest}.parts.png"
    pure = PurePosixPath(rel)
    return str(PurePosixPath(MAPS_DIR) / pure.with_name(pure.stem + ".parts.png"))


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise ValueError(f"{where}: label map {arr.shape} {arr.dtype}: expected (H, W) uint8")
    if arr.size and int(arr.max()) >= NUM_PART_CLASSES:
        raise ValueError(f"{where}: label map holds {int(arr.max())}: expected 0..3")
    return arr


class PartMapWriter:
    """Write part maps and the manifest of one parse into ``out_dir``.

    Args:
        out_dir: the output folder (created).
        root: the dataset root; map names mirror image paths relative to it
            (:func:`map_relpath`).

    Call :meth:`add` once per crop (per split it appears in), then :meth:`finish`.
    """

    def __init__(self, out_dir: str | os.PathLike[str], *, root: str | None) -> None:
        self.out_dir = Path(out_dir)
        self.root = root
        self.rows: list[ManifestRow] = []
        self._written: dict[str, str] = {}  # image path -> map written for it ("" none)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def add(
        self,
        split: str,
        index: int,
        path: str,
        labels: np.ndarray | None,
        *,
        confidence: float,
        found: bool,
        size: tuple[int, int],
    ) -> ManifestRow:
        """Record a crop; write its map if ``found`` (once per path).

        Args:
            split / index / path: the record (split name, position, image path).
            labels: (H, W) uint8 in 0..3 (ignored when not ``found``).
            confidence: the parser's confidence.
            found: whether the parser found a pose.
            size: the crop's ``(width, height)``.
        """
        rel = self._written.get(path)
        if rel is None:
            rel = map_relpath(path, self.root)
            target = self.out_dir / rel
            if found:
                arr = _check_labels(labels, f"crop {path}")  # type: ignore[arg-type]
                if (arr.shape[1], arr.shape[0]) != tuple(size):
                    raise ValueError(
                        f"crop {path}: label map {arr.shape[1]}x{arr.shape[0]} (WxH) but the "
                        f"crop is {size[0]}x{size[1]}: expected the same size"
                    )
                buf = io.BytesIO()
                Image.fromarray(arr, mode="L").save(buf, format="PNG", compress_level=1)
                with atomic_open(target, "wb") as handle:
                    handle.write(buf.getvalue())
            else:
                target.unlink(missing_ok=True)  # no stale map from an earlier parse
                rel = ""
            self._written[path] = rel
        row = ManifestRow(
            split, int(index), path, rel, bool(found and rel),
            round(float(confidence), 4) if rel else 0.0, int(size[0]), int(size[1]),
        )  # fmt: skip
        self.rows.append(row)
        return row

    def finish(self, summary: Mapping[str, Any]) -> Path:
        """Write ``manifest.csv`` and ``parse.json`` (``summary`` plus the counts); return
        the manifest's path."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([f.name for f in fields(ManifestRow)])
        for row in self.rows:
            values = list(astuple(row))
            values[4] = int(row.found)
            writer.writerow(values)
        manifest = self.out_dir / MANIFEST_NAME
        atomic_write_text(manifest, buf.getvalue())
        found = sum(1 for p in self._written.values() if p)
        data = {
            **summary,
            "num_crops": len(self._written),
            "num_records": len(self.rows),
            "found": found,
            "fallback": len(self._written) - found,
            "labelled_fraction": found / len(self._written) if self._written else 0.0,
            "format": {"maps": f"{MAPS_DIR}/<rel>.parts.png", "table": "parts4",
                       "classes": ["background", "head", "upper", "lower"]},
        }  # fmt: skip
        atomic_write_text(self.out_dir / SUMMARY_NAME, json.dumps(data, indent=1) + "\n")
        return manifest


class ParsedPartMaps:
    """A parse output folder, read back: which crops have a map, and the maps.

    Args:
        out_dir: a folder written by :class:`PartMapWriter` (``semparts-reid parse``).

    Example:
        >>> maps = ParsedPartMaps("parsed/")                      # doctest: +SKIP
        >>> maps.read(dataset.train[0].path)                      # doctest: +SKIP
        array([[0, 0, 1, ...]], dtype=uint8)                      # or None: keep labels
    """

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.out_dir = Path(out_dir)
        manifest = self.out_dir / MANIFEST_NAME
        if not manifest.is_file():
            raise InputNotFoundError(
                f"{manifest} not found: expected a folder written by 'semparts-reid parse'"
            )
        self.rows = _read_manifest(manifest)
        summary = self.out_dir / SUMMARY_NAME
        self.summary: dict[str, Any] = (
            json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}
        )
        self._by_path: dict[str, ManifestRow] = {}
        for row in self.rows:
            self._by_path.setdefault(row.path, row)

    def __len__(self) -> int:
        """Distinct crops in the manifest."""
        return len(self._by_path)

    def __contains__(self, image_path: object) -> bool:
        return image_path in self._by_path

    def __iter__(self) -> Iterator[ManifestRow]:
        return iter(self.rows)

    @property
    def num_found(self) -> int:
        """Crops with a map."""
        return sum(1 for r in self._by_path.values() if r.found)

    @property
    def num_fallback(self) -> int:
        """Crops without a pose: they keep their current labels."""
        return len(self) - self.num_found

    def row(self, image_path: str) -> ManifestRow | None:
        """The manifest row of a crop (its first split), or None."""
        return self._by_path.get(str(image_path))

    def map_path(self, image_path: str) -> Path | None:
        """The map file of a crop, or None (no pose found, or not parsed)."""
        row = self.row(image_path)
        return self.out_dir / row.map if row is not None and row.found else None

    def read(self, image_path: str, *, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """The crop's (H, W) uint8 map (0 bg / 1 head / 2 upper / 3 lower), or None.

        Args:
            image_path: the record's path, as in the manifest.
            size: expected ``(width, height)``; default: the size in the manifest.
        """
        from ..data.part_labels import read_part_map  # torch-free import of this module

        row = self.row(image_path)
        if row is None or not row.found:
            return None
        return read_part_map(self.out_dir / row.map, table="parts4",
                             size=size or (row.width, row.height))  # fmt: skip


class ParsedPartMapsSet:
    """Several parse output folders read as one (e.g. one per domain): a crop's map
    comes from the first folder whose manifest lists it.

    Args:
        folders: the :class:`ParsedPartMaps` (each folder opened).
    """

    def __init__(self, folders: Sequence[ParsedPartMaps]) -> None:
        self.folders = list(folders)

    def __len__(self) -> int:
        """Distinct crops over all folders."""
        return len({row.path for folder in self.folders for row in folder})

    def __contains__(self, image_path: object) -> bool:
        return any(image_path in folder for folder in self.folders)

    def row(self, image_path: str) -> ManifestRow | None:
        """The manifest row of a crop in the first folder that lists it, or None."""
        for folder in self.folders:
            row = folder.row(image_path)
            if row is not None:
                return row
        return None

    def read(self, image_path: str, *, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """The crop's map from the first folder that lists it (:meth:`ParsedPartMaps.read`)."""
        for folder in self.folders:
            if image_path in folder:
                return folder.read(image_path, size=size)
        return None

    def __repr__(self) -> str:
        return f"ParsedPartMapsSet({[str(f.out_dir) for f in self.folders]})"


def open_parsed_maps(
    folders: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> ParsedPartMaps | ParsedPartMapsSet:
    """Open parse output folder(s): one path, a comma-separated list of paths (as
    ``TrainConfig.parts.parser_maps`` holds them) or a sequence of paths.

    Raises:
        InputNotFoundError: a folder without ``manifest.csv`` (the message names it).
        InputError: no folder given, or a folder's manifest is malformed.

    Example:
        >>> open_parsed_maps("parsed/source,parsed/target")      # doctest: +SKIP
        ParsedPartMapsSet(['parsed/source', 'parsed/target'])
    """
    if isinstance(folders, (str, os.PathLike)):
        text = os.fspath(folders)
        names = [part.strip() for part in text.split(",") if part.strip()]
    else:
        names = [os.fspath(f) for f in folders]
    if not names:
        raise InputError(f"parser maps {folders!r}: expected a folder of 'semparts-reid parse'")
    opened = [ParsedPartMaps(name) for name in names]
    return opened[0] if len(opened) == 1 else ParsedPartMapsSet(opened)


def _read_manifest(path: Path) -> list[ManifestRow]:
    names = [f.name for f in fields(ManifestRow)]
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != names:
            raise InputError(f"{path}: header {header}: expected {names}")
        rows = []
        for line, values in enumerate(reader, start=2):
            try:
                split, index, img, rel, found, conf, width, height = values
                rows.append(ManifestRow(split, int(index), img, rel, found == "1",
                                        float(conf), int(width), int(height)))  # fmt: skip
            except ValueError as err:
                raise InputError(f"{path}, line {line}: {values}: {err}") from err
    return rows
