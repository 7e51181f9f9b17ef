"""Semantic part conventions shared by every layer.

Part label maps and the part classifier's channels use one index per class:

====  ==========  ==========================================
idx   name        meaning
====  ==========  ==========================================
0     background  everything that is not the person
1     head        hair, face, hat, neck
2     upper       torso, arms, upper clothes, bags carried on the torso
3     lower       legs, lower clothes, shoes
255   (ignore)    unknown / not labelled; ignored by the part loss
====  ==========  ==========================================

Pooled *body-part* tensors (``part_feats``, ``visibility``) have ``K = 3`` entries in
the order head, upper, lower: body-part ``k`` is classifier channel ``k + 1``.
"""

from __future__ import annotations

BACKGROUND: int = 0
HEAD: int = 1
UPPER: int = 2
LOWER: int = 3
IGNORE_INDEX: int = 255

PART_NAMES: tuple[str, ...] = ("background", "head", "upper", "lower")
BODY_PART_NAMES: tuple[str, ...] = ("head", "upper", "lower")
NUM_BODY_PARTS: int = len(BODY_PART_NAMES)
NUM_PART_CLASSES: int = len(PART_NAMES)

__all__ = [
    "BACKGROUND",
    "BODY_PART_NAMES",
    "HEAD",
    "IGNORE_INDEX",
    "LOWER",
    "NUM_BODY_PARTS",
    "NUM_PART_CLASSES",
    "PART_NAMES",
    "UPPER",
]
