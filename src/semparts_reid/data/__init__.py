"""Layer 1 data: dataset layouts, synthetic domains, part labels, transforms, samplers.

The dataset readers and the synthetic domains (numpy/PIL only) import eagerly; the
torch-facing pieces (transforms, the image dataset, samplers, camera-style augmentation,
part labels) are resolved lazily on first access so ``from semparts_reid.data import
build_dataset`` stays cheap and needs no torch.

Modules: ``records`` (records, the dataset container), ``market_layout`` (the
Market-1501 folder reader), ``folder_layout`` (plain ``<split>/<identity>/<image>``
trees), ``list_files`` (MSMT17, image lists), ``datasets`` (spec
strings, ``build_dataset``), ``mot`` / ``mot_format`` / ``mot_frames`` (MOTChallenge
sequences, ``mot:``), ``synthetic/`` (the generated domains; ``synthetic/walkers``: a
generated MOT sequence), ``image_io``,
``part_tables`` (grouping tables, torch-free) and ``part_labels`` (part maps),
``transforms``, ``image_dataset``, ``camstyle``, ``samplers``.

Example:
    >>> from semparts_reid.data import build_dataset, build_transforms, ReIDImageDataset
    >>> ds = build_dataset("synthetic:a?size=tiny")  # doctest: +SKIP
    >>> cfg = {"input_size": (64, 32), "mean": (0.485, 0.456, 0.406),
    ...        "std": (0.229, 0.224, 0.225), "interpolation": "bilinear"}
    >>> train = ReIDImageDataset(ds.train, build_transforms(cfg, train=True))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .datasets import (
    MSMT17,
    UNKNOWN_CAMERA,
    DatasetLayoutError,
    DukeMTMCreID,
    FolderDataset,
    ImageListDataset,
    ImageRecord,
    Market1501,
    ReIDDataset,
    build_dataset,
    list_datasets,
    parse_spec,
    read_image_list,
    read_split_list,
    relabel,
)
from .image_io import CorruptImageError, load_rgb
from .mot import CropTable, MOTDataset, mot_dataset
from .mot_format import MOTBoxes, SequenceInfo, read_mot_boxes, read_seqinfo
from .mot_frames import read_crops
from .synthetic import (
    SIZE_PRESETS,
    SyntheticConfig,
    cache_dir,
    generate_synthetic,
    synthetic_dataset,
)
from .tracklets import assign_tracklets, iou_tracker, tracklet_quality

_LAZY: dict[str, str] = {
    "JointTransform": ".transforms",
    "build_transforms": ".transforms",
    "ReIDImageDataset": ".image_dataset",
    "PKSampler": ".samplers",
    "RandomIndexSampler": ".samplers",
    "seed_worker": ".samplers",
    "make_generator": ".samplers",
    "CameraStyleAugmenter": ".camstyle",
    "ColorStatsTransfer": ".camstyle",
    "find_camstyle_images": ".camstyle",
    "GROUPING_TABLES": ".part_tables",
    "read_part_map": ".part_labels",
    "part_map_path": ".part_labels",
    "make_lut": ".part_labels",
    "band_prior": ".part_labels",
    "pseudo_part_labels": ".part_labels",
    "write_walkers_sequence": ".synthetic.walkers",
}

__all__ = [
    "write_walkers_sequence",
    "assign_tracklets",
    "iou_tracker",
    "tracklet_quality",
    "read_seqinfo",
    "read_mot_boxes",
    "read_crops",
    "mot_dataset",
    "SequenceInfo",
    "MOTDataset",
    "MOTBoxes",
    "CropTable",
    "CameraStyleAugmenter",
    "ColorStatsTransfer",
    "CorruptImageError",
    "DatasetLayoutError",
    "DukeMTMCreID",
    "FolderDataset",
    "GROUPING_TABLES",
    "ImageListDataset",
    "ImageRecord",
    "JointTransform",
    "MSMT17",
    "Market1501",
    "PKSampler",
    "RandomIndexSampler",
    "ReIDDataset",
    "ReIDImageDataset",
    "SIZE_PRESETS",
    "SyntheticConfig",
    "UNKNOWN_CAMERA",
    "band_prior",
    "build_dataset",
    "build_transforms",
    "cache_dir",
    "find_camstyle_images",
    "generate_synthetic",
    "list_datasets",
    "load_rgb",
    "make_generator",
    "make_lut",
    "parse_spec",
    "pseudo_part_labels",
    "part_map_path",
    "read_image_list",
    "read_split_list",
    "read_part_map",
    "relabel",
    "seed_worker",
    "synthetic_dataset",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'semparts_reid.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .camstyle import CameraStyleAugmenter, ColorStatsTransfer, find_camstyle_images
    from .image_dataset import ReIDImageDataset
    from .part_labels import (
        band_prior,
        make_lut,
        part_map_path,
        pseudo_part_labels,
        read_part_map,
    )
    from .part_tables import GROUPING_TABLES
    from .samplers import PKSampler, RandomIndexSampler, make_generator, seed_worker
    from .synthetic.walkers import write_walkers_sequence
    from .transforms import JointTransform, build_transforms
