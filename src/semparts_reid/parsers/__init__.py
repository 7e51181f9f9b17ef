"""Layer 2 parsers: human part parsers that turn person crops into part label maps.

A :class:`PartParser` takes RGB uint8 crops and returns a :class:`ParseResult`: one
(H, W) uint8 map per crop in the library's part classes (0 background, 1 head, 2 upper,
3 lower), a per-crop confidence and whether a pose was found. A parser needs no identity
label, so its maps may be used on a target domain; they are evidence, not an oracle.

* :class:`MediaPipeParser` -- MediaPipe pose landmarks + person segmentation, the mask
  cut at the shoulders and hips (:func:`cut_person_mask`). Needs the ``[parser]`` extra
  (``pip install 'semparts-reid[parser]'``); importing this package never does.
* :func:`parse_dataset` -- a parser over a dataset's crops, written as maps + manifest
  (:class:`PartMapWriter`); :class:`ParsedPartMaps` reads the folder back
  (format: :mod:`semparts_reid.parsers.maps`, ``docs/parsers.md``).

Modules: ``base`` (protocol, result), ``geometry`` (mask cutting, numpy), ``maps``
(output folder), ``run`` (parse_dataset), ``mediapipe_backend``.

Example:
    >>> from semparts_reid.parsers import MediaPipeParser, parse_dataset   # doctest: +SKIP
    >>> from semparts_reid.data import build_dataset                       # doctest: +SKIP
    >>> with MediaPipeParser(workers=2) as parser:                          # doctest: +SKIP
    ...     summary = parse_dataset(build_dataset("mot:/data/seq"), parser, "parsed/")
    >>> summary.labelled_fraction                                           # doctest: +SKIP
"""

from __future__ import annotations

from .base import ParseResult, PartParser, check_crops
from .geometry import BLAZEPOSE, cut_person_mask, pose_to_parts
from .maps import (
    ManifestRow,
    ParsedPartMaps,
    ParsedPartMapsSet,
    PartMapWriter,
    map_relpath,
    open_parsed_maps,
)
from .mediapipe_backend import MEDIAPIPE_HINT, MediaPipeParser, MediaPipeSettings
from .run import SPLITS, ParseSummary, parse_dataset

__all__ = [
    "BLAZEPOSE",
    "MEDIAPIPE_HINT",
    "SPLITS",
    "ManifestRow",
    "MediaPipeParser",
    "MediaPipeSettings",
    "ParseResult",
    "ParseSummary",
    "ParsedPartMaps",
    "ParsedPartMapsSet",
    "PartMapWriter",
    "PartParser",
    "check_crops",
    "cut_person_mask",
    "map_relpath",
    "open_parsed_maps",
    "parse_dataset",
    "pose_to_parts",
]
