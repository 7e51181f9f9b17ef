"""Two procedurally generated pedestrian domains, ``synthetic:a`` and ``synthetic:b``.

The embedded default dataset pair: no download, generated in seconds, written to disk in
the Market-1501 layout (``bounding_box_train/``, ``query/``, ``bounding_box_test/``) with a
ground-truth part map ``<stem>.parts.png`` (0 background, 1 head, 2 upper, 3 lower) beside
every image, so the demo runs through the same loaders as real data.

Identity is the appearance of head, upper and lower body (skin, hair, hat, garment colours
and patterns, sleeves, shorts/trousers/skirt, bag, body shape). The two domains differ like
Market-1501 and DukeMTMC-reID: background kinds and palettes, clutter, per-camera colour
casts and brightness, clothing statistics (shorts in ``a``, trousers in ``b``), 6 vs 8
cameras, detection misalignment, occlusion, blur and noise. Within a domain an identity
tends to reappear in front of the same scene and clutter at a given camera (probability
``DomainStyle.scene_reuse``), so a source model can shortcut identity through the
background; that shortcut does not carry over to the other domain, while aligned body
parts do.

Modules: :mod:`.generate` (configuration, generation, the atomic on-disk cache) and
:mod:`.render` (the vectorised renderer: numpy arrays in, images and part maps out).
The package reads its folders back with :mod:`semparts_reid.data.market_layout`; it
never imports :mod:`semparts_reid.data.datasets` (which imports it for
``build_dataset("synthetic:...")``).

Example:
    >>> from semparts_reid.data import build_dataset
    >>> ds = build_dataset("synthetic:a?size=tiny")  # doctest: +SKIP
"""

from __future__ import annotations

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
]
