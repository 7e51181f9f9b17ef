"""Part label maps: reading parser outputs and grouping them to background/head/upper/lower.

A part map is a single-channel PNG beside its image (``<stem>.parts.png``), same size,
one parser class per pixel. A *grouping table* (:data:`GROUPING_TABLES`, defined with
the list of built-in tables in the torch-free :mod:`semparts_reid.data.part_tables`)
maps the parser's classes to the library's part indices
(:mod:`semparts_reid.layers.parts`): 0 background, 1 head, 2 upper, 3 lower, 255 ignore.
Pixel value 255 in a map always means "ignore".

The self-supervised pseudo labels (ISP-style clustering of feature maps,
:func:`pseudo_part_labels`) and the horizontal-band prior (:func:`band_prior`) are pure
tensor code in :mod:`semparts_reid.layers.part_clustering`; they are re-exported here so
every way of getting part labels is reachable from one module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..layers.part_clustering import band_labels, band_prior, pseudo_part_labels
from ..layers.parts import IGNORE_INDEX, NUM_PART_CLASSES
from .part_tables import GROUPING_TABLES

__all__ = [
    "GROUPING_TABLES",
    "PartMapError",
    "band_labels",
    "band_prior",
    "make_lut",
    "part_map_path",
    "pseudo_part_labels",
    "read_part_map",
]


class PartMapError(InputError):
    """A part map file does not fit its image or its grouping table (an ``InputError``)."""


def part_map_path(image_path: str | os.PathLike[str]) -> str:
    """``.../0001_c1s1_000151_00.jpg`` -> ``.../0001_c1s1_000151_00.parts.png``."""
    p = Path(image_path)
    return str(p.with_name(p.stem + ".parts.png"))


def make_lut(table: str | Mapping[int, int] | None = "parts4") -> np.ndarray:
    """A 256-entry uint8 lookup table from a grouping table name or a ``{class: part}`` dict.

    Classes missing from the table map to the sentinel 254 (flagged as errors by
    :func:`read_part_map`); 255 always maps to 255 (ignore).
    """
    if table is None:
        table = "parts4"
    if isinstance(table, str):
        if table not in GROUPING_TABLES:
            raise InputError(f"table={table!r}: expected one of {sorted(GROUPING_TABLES)}")
        table = GROUPING_TABLES[table]
    lut = np.full(256, 254, np.uint8)
    for cls, part in table.items():
        if not (0 <= int(cls) <= 254):
            raise InputError(f"grouping table class {cls}: expected 0..254")
        if int(part) not in (*range(NUM_PART_CLASSES), IGNORE_INDEX):
            raise InputError(
                f"grouping table maps class {cls} to {part}: expected 0..3 or {IGNORE_INDEX}"
            )
        lut[int(cls)] = int(part)
    lut[255] = IGNORE_INDEX
    return lut


def read_part_map(
    path: str | os.PathLike[str],
    *,
    table: str | Mapping[int, int] | np.ndarray | None = "parts4",
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read a single-channel part map PNG and group it to part indices.

    Args:
        path: the ``.parts.png`` file.
        table: grouping table name, ``{class: part}`` dict, or a lookup table from
            :func:`make_lut`.
        size: expected ``(width, height)`` (the image's PIL size); ``None`` skips the check.

    Returns:
        uint8 array (H, W) of 0 bg / 1 head / 2 upper / 3 lower / 255 ignore.

    Raises:
        PartMapError: wrong size, more than one channel, or a class outside the table
            (the message names the file and the classes).
    """
    lut = table if isinstance(table, np.ndarray) else make_lut(table)
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P", "I", "I;16"):
                raise PartMapError(
                    f"part map {path} has mode {img.mode}: expected a single-channel PNG"
                )
            if size is not None and img.size != tuple(size):
                raise PartMapError(
                    f"part map {path} is {img.size[0]}x{img.size[1]} (WxH) but its image is "
                    f"{size[0]}x{size[1]}: expected the same size"
                )
            raw = np.asarray(img)
    except (OSError, SyntaxError) as err:
        raise PartMapError(f"cannot read part map {path}: {err}") from err
    if raw.dtype != np.uint8:
        if raw.size and (raw.min() < 0 or raw.max() > 255):
            raise PartMapError(f"part map {path} holds values outside 0..255")
        raw = raw.astype(np.uint8)
    out = lut[raw]
    if (out == 254).any():
        bad = sorted(np.unique(raw[out == 254]).tolist())
        raise PartMapError(f"part map {path} holds classes {bad} that the grouping table lacks")
    return out
