"""Procedurally generated pedestrian domains: ``synthetic:a``, ``synthetic:b``, ``synthetic:c``.

``a`` and ``b`` are the embedded default dataset pair: no download, generated in seconds,
written to disk in the Market-1501 layout (``bounding_box_train/``, ``query/``,
``bounding_box_test/``) with a ground-truth part map ``<stem>.parts.png`` (0 background,
1 head, 2 upper, 3 lower) beside every image, so the demo runs through the same loaders
as real data.

Identity is the appearance of head, upper and lower body (skin, hair, hat, garment colours
and patterns, sleeves, shorts/trousers/skirt, bag, body shape). The two domains differ like
Market-1501 and DukeMTMC-reID: background kinds and palettes, clutter, per-camera colour
casts and brightness, clothing statistics (shorts in ``a``, trousers in ``b``), 6 vs 8
cameras, detection misalignment, occlusion, blur and noise. Within a domain an identity
tends to reappear in front of the same scene and clutter at a given camera (probability
``DomainStyle.scene_reuse``), so a source model can shortcut identity through the
background; that shortcut does not carry over to the other domain, while aligned body
parts do.

``c`` is a third domain for testing on rendering nobody tuned to: other body proportions
(heads 0.9-1.4x, legs 46-56% of the height, shoulders up to 1.25x), other poses (legs
apart, arms away from the body), other clothing (dresses, long open coats, long skirts,
checks), other backgrounds (foliage, station floors, lit facades; cool blue-violet
palettes) and 7 cameras with their own tone curves. :func:`write_synthetic_market`
writes any domain, by default without part maps, as a Market-1501 folder for the
``market1501:`` loader. Adding ``c`` changed no byte of ``a`` or ``b``.

Modules: :mod:`.styles` (each domain's statistics), :mod:`.config` (sizes, seeds),
:mod:`.plan` (every random choice of a domain's images), :mod:`.people` and
:mod:`.render` (the vectorised renderer: numpy arrays in, images and part maps out),
:mod:`.generate` (generation and the atomic on-disk cache) and :mod:`.export` (a
domain written to a folder of your choice).
The package reads its folders back with :mod:`semparts_reid.data.market_layout`; it
never imports :mod:`semparts_reid.data.datasets` (which imports it for
``build_dataset("synthetic:...")``).

Example:
    >>> from semparts_reid.data import build_dataset
    >>> ds = build_dataset("synthetic:a?size=tiny")  # doctest: +SKIP
    >>> root = write_synthetic_market("c", "/tmp/synthetic-c", size="tiny")  # doctest: +SKIP
    >>> ds = build_dataset(f"market1501:{root}")  # no part maps  # doctest: +SKIP
"""

from __future__ import annotations

from .export import write_synthetic_market
from .generate import (
    GENERATOR_VERSION,
    MARKER,
    SIZE_PRESETS,
    SyntheticConfig,
    cache_dir,
    generate_synthetic,
    make_config,
    synthetic_dataset,
)
from .render import DOMAINS, DomainStyle

__all__ = [
    "DOMAINS",
    "GENERATOR_VERSION",
    "MARKER",
    "SIZE_PRESETS",
    "DomainStyle",
    "SyntheticConfig",
    "cache_dir",
    "generate_synthetic",
    "make_config",
    "synthetic_dataset",
    "write_synthetic_market",
]
