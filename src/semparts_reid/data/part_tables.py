"""Grouping tables: a human parser's classes -> background/head/upper/lower (torch-free).

A *grouping table* maps the parser's classes to the library's part indices
(:mod:`semparts_reid.layers.parts`): 0 background, 1 head, 2 upper, 3 lower, 255 ignore.
Built-in tables:

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

This module imports neither torch nor PIL, so configuration checks (``TrainConfig``'s
``part_table``) run without them; :mod:`semparts_reid.data.part_labels` reads part maps
with these tables.
"""

from __future__ import annotations

from ..layers.parts import BACKGROUND, HEAD, LOWER, UPPER

__all__ = ["GROUPING_TABLES"]

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
