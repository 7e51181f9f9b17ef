"""Part label maps: reading parser outputs and grouping them to background/head/upper/lower.

A part map is a single-channel PNG beside its image (``<stem>.parts.png``), same size,
one parser class per pixel. A *grouping table* maps the parser's classes to the library's
part indices (:mod:`semparts_reid.layers.parts`): 0 background, 1 head, 2 upper,
3 lower, 255 ignore. Built-in tables:

================  ==========================================================================
name              classes
================  ==========================================================================
``parts4``        already grouped: 0 bg, 1 head, 2 upper, 3 lower (synthetic domains)
``lip``           LIP-20: 0 bg, 1 hat, 2 hair, 3 glove, 4 sunglasses, 5 upper-clothes,
                  6 dress, 7 coat, 8 socks, 9 pants, 10 jumpsuits, 11 scarf, 12 skirt,
                  13 face, 14/15 left/right arm, 16/17 left/right leg, 18/19 left/right shoe
``cihp``          CIHP: the same 20 classes as LIP
``atr``           ATR-18: 0 bg, 1 hat, 2 hair, 3 sunglasses, 4 upper-clothes, 5 skirt, 6 pants,
                  7 dress, 8 belt, 9/10 left/right shoe, 11 face, 12/13 left/right leg,
                  14/15 left/right arm, 16 bag, 17 scarf
``pascal``        Pascal-Person-Part: 0 bg, 1 head, 2 torso, 3 upper arms, 4 lower arms,
                  5 upper legs, 6 lower legs
``parts8``        8-part DensePose-derived set: 0 bg, 1 head, 2 torso, 3 upper arms,
                  4 lower arms + hands, 5 upper legs, 6 lower legs, 7 feet
``densepose24``   DensePose I-index 0..24 (0 bg, 1-2 torso, 3-4 hands, 5-6 feet, 7-10 upper
                  legs, 11-14 lower legs, 15-18 upper arms, 19-22 lower arms, 23-24 head)
================  ==========================================================================

Choices: dresses, coats, jumpsuits, scarves, gloves and bags count as *upper*; belts,
socks, skirts and shoes as *lower*. Pixel value 255 in a map always means "ignore".

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
from ..layers.parts import BACKGROUND, HEAD, IGNORE_INDEX, LOWER, NUM_PART_CLASSES, UPPER

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

_B, _H, _U, _L = BACKGROUND, HEAD, UPPER, LOWER

GROUPING_TABLES: dict[str, dict[int, int]] = {
    "parts4": {0: _B, 1: _H, 2: _U, 3: _L},
    "lip": {
        0: _B,
        1: _H,
        2: _H,
        3: _U,
        4: _H,
        5: _U,
        6: _U,
        7: _U,
        8: _L,
        9: _L,
        10: _U,
        11: _U,
        12: _L,
        13: _H,
        14: _U,
        15: _U,
        16: _L,
        17: _L,
        18: _L,
        19: _L,
    },  # fmt: skip
    "atr": {
        0: _B,
        1: _H,
        2: _H,
        3: _H,
        4: _U,
        5: _L,
        6: _L,
        7: _U,
        8: _L,
        9: _L,
        10: _L,
        11: _H,
        12: _L,
        13: _L,
        14: _U,
        15: _U,
        16: _U,
        17: _U,
    },  # fmt: skip
    "pascal": {0: _B, 1: _H, 2: _U, 3: _U, 4: _U, 5: _L, 6: _L},
    "parts8": {0: _B, 1: _H, 2: _U, 3: _U, 4: _U, 5: _L, 6: _L, 7: _L},
    "densepose24": {
        0: _B,
        1: _U,
        2: _U,
        3: _U,
        4: _U,
        5: _L,
        6: _L,
        7: _L,
        8: _L,
        9: _L,
        10: _L,
        11: _L,
        12: _L,
        13: _L,
        14: _L,
        15: _U,
        16: _U,
        17: _U,
        18: _U,
        19: _U,
        20: _U,
        21: _U,
        22: _U,
        23: _H,
        24: _H,
    },  # fmt: skip
}
GROUPING_TABLES["cihp"] = dict(GROUPING_TABLES["lip"])


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
