"""``ReIDImageDataset``: a torch Dataset over a split of :class:`ImageRecord`.

Each item is a dict (the batch contract of ``docs/architecture.md``)::

    image      float32 (3, H, W)   normalised by the transform's mean/std
    parts      int64   (H, W)      0 bg / 1 head / 2 upper / 3 lower, 255 where unknown
                                   (the transform's ``label_dtype``: the trainer ships
                                   uint8; absent with ``with_parts=False``)
    pid        int                 identity (relabelled 0..N-1 in training splits)
    camid      int                 0-based camera
    index      int                 position in the split list = exemplar-memory slot
    path       str
    image_cam  float32 (3, H, W)   only with ``camstyle``: the same image in another
                                   camera's style, same crop/flip, same ``index``
    pool_parts uint8 / int64 (H, W) only with ``parser_pool``: the parser's map through
                                   the image's resize / crop / flip (not erased), 255
                                   everywhere for a crop without one

Example:
    >>> ds = build_dataset("synthetic:a?size=tiny")                      # doctest: +SKIP
    >>> data = ReIDImageDataset(ds.train, build_transforms(cfg, train=True))  # doctest: +SKIP
    >>> item = data[0]; item["image"].shape                              # doctest: +SKIP
    torch.Size([3, 64, 32])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import InputNotFoundError
from .image_io import load_rgb_array
from .part_labels import make_lut, part_map_path, read_part_map
from .records import ImageRecord
from .transforms import EraseBox, JointTransform

__all__ = ["ReIDImageDataset"]

CamStyleFn = Callable[[int, np.ndarray, "torch.Generator | None"], np.ndarray]


class ReIDImageDataset(Dataset[dict[str, Any]]):
    """Load images (and part maps) of one split and apply a joint transform.

    Args:
        records: the split, a sequence of :class:`ImageRecord` (or ``(path, pid, camid)``).
        transform: a :class:`JointTransform` (see :func:`build_transforms`).
        part_maps: ``"auto"`` reads ``<stem>.parts.png`` where it exists (255 elsewhere),
            ``True`` requires it for every image, ``False`` never reads it.
        part_table: grouping table for the part maps (name, ``{class: part}`` dict or
            lookup table); ``"parts4"`` for maps already in 0..3.
        camstyle: optional callable ``(index, image uint8 (H, W, 3), generator) -> image``
            giving the image in another camera's style (a
            :class:`~semparts_reid.data.camstyle.CameraStyleAugmenter`); adds ``image_cam``.
        with_parts: ``False`` leaves ``parts`` out of the items and reads no part map
            (for training without a part loss: nothing to decode, move or collate).
        staged: items hold ``image`` (and ``image_cam``) as (3, H, W) **uint8** after
            resize / crop / flip, with ``image_erase`` (``image_cam_erase``): the
            random-erasing box and noise or None (:meth:`JointTransform.staged`).
            :func:`~semparts_reid.data.transforms.finish_images` makes the normalised
            images of a collated batch from them, exactly those of the unstaged items
            (the trainer's loader does, in a worker or on the GPU; collate such items
            with :func:`semparts_reid.engine.loaders.collate_batch`). Needs a
            :class:`JointTransform` without ``color_jitter``.
        cache: keep each decoded image (and part map) in memory after its first read,
            so later epochs skip the file read and decode. For datasets that fit in
            memory (``H * W * 3`` bytes per image, plus ``H * W`` for a part map); each
            loader worker process holds its own copy, so it pays off most with
            ``num_workers=0`` or persistent workers.
        parser_maps: a human parser's maps: an object with ``read(path, size=(w, h))``
            giving a crop's (H, W) uint8 map in 0..3 or None (a
            :class:`~semparts_reid.parsers.ParsedPartMaps`), or such a callable
            ``(path) -> map | None``. Read by the two options below.
        parser_labels: ``parts`` holds the parser's map instead of the map beside the
            image (255 everywhere for a crop the parser has no map for: the part-map
            loss gives it its fallback labels).
        parser_pool: items carry ``pool_parts``, the parser's map as pooling masks
            (:meth:`JointTransform.labels_only`: the image's geometry, no erasing).
    """

    def __init__(
        self,
        records: Sequence[ImageRecord | tuple[str, int, int]],
        transform: JointTransform,
        *,
        part_maps: bool | str = "auto",
        part_table: str | Mapping[int, int] | np.ndarray | None = "parts4",
        camstyle: CamStyleFn | None = None,
        with_parts: bool = True,
        staged: bool = False,
        cache: bool = False,
        parser_maps: Any = None,
        parser_labels: bool = False,
        parser_pool: bool = False,
    ) -> None:
        if staged and not (isinstance(transform, JointTransform)
                           and not (transform.train and transform.color_jitter > 0)):
            raise ValueError("staged=True needs a JointTransform without color_jitter")
        if part_maps not in (True, False, "auto"):
            raise ValueError(f"part_maps={part_maps!r}: expected True, False or 'auto'")
        if not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        if (parser_labels or parser_pool) and parser_maps is None:
            raise ValueError("parser_labels / parser_pool need parser_maps")
        if parser_pool and not isinstance(transform, JointTransform):
            raise ValueError("parser_pool=True needs a JointTransform (its labels_only)")
        self.records = [ImageRecord(str(p), int(pid), int(c)) for p, pid, c in records]
        self.transform = transform
        self.part_maps = part_maps
        self.lut = part_table if isinstance(part_table, np.ndarray) else make_lut(part_table)
        self.camstyle = camstyle
        self.with_parts = bool(with_parts)
        self.staged = bool(staged)
        self.cache = bool(cache)
        self.parser_maps = parser_maps
        self.parser_labels, self.parser_pool = bool(parser_labels), bool(parser_pool)
        self._decoded: dict[int, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def pids(self) -> list[int]:
        """Identity of every item (for identity samplers)."""
        return [r.pid for r in self.records]

    @property
    def camids(self) -> list[int]:
        """Camera of every item."""
        return [r.camid for r in self.records]

    def parser_map(self, path: str, size: tuple[int, int]) -> np.ndarray | None:
        """The parser's (H, W) uint8 map of the crop at ``path`` (``size`` = (w, h)),
        or None: no ``parser_maps``, or no map for this crop."""
        if self.parser_maps is None:
            return None
        read = getattr(self.parser_maps, "read", None)
        arr = read(path, size=size) if read is not None else self.parser_maps(path)
        if arr is not None and np.asarray(arr).shape != (size[1], size[0]):
            raise ValueError(f"parser map of {path}: shape {np.asarray(arr).shape}, expected "
                             f"{(size[1], size[0])} (the image's)")
        return arr

    def _parts(self, path: str, size: tuple[int, int]) -> np.ndarray | None:
        if self.part_maps is False or not self.with_parts:
            return None
        if self.parser_labels:
            return self.parser_map(path, size)
        pm = part_map_path(path)
        if not os.path.isfile(pm):
            if self.part_maps is True:
                raise InputNotFoundError(f"missing part map {pm} for image {path}")
            return None
        return read_part_map(pm, table=self.lut, size=size)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} records")
        index = index % len(self)
        rec = self.records[index]
        rgb, parts, pool = self._decode(index, rec.path)
        geometry = None
        if (self.camstyle is not None or self.parser_pool) and hasattr(
                self.transform, "sample_geometry"):
            geometry = self.transform.sample_geometry()
        item: dict[str, Any] = {}
        item["image"], labels, erase = self._transform(rgb, parts, geometry, self.with_parts)
        if self.staged:
            item["image_erase"] = erase
        if self.with_parts:
            item["parts"] = labels
        if self.parser_pool:
            assert isinstance(self.transform, JointTransform)
            item["pool_parts"] = self.transform.labels_only(pool, geometry)
        item.update(pid=rec.pid, camid=rec.camid, index=index, path=rec.path)
        if self.camstyle is not None:
            styled = self.camstyle(index, rgb, None)
            item["image_cam"], _, erase = self._transform(styled, None, geometry, False)
            if self.staged:
                item["image_cam_erase"] = erase
        return item

    def _decode(
        self, index: int, path: str
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The ``(H, W, 3)`` uint8 image, its part map and its parser map for pooling
        (or None), from the cache when ``cache`` is on; the arrays are read-only so no
        transform can alter the cache."""
        hit = self._decoded.get(index)
        if hit is not None:
            return hit
        rgb = load_rgb_array(path)
        size = (rgb.shape[1], rgb.shape[0])
        parts = self._parts(path, size)
        pool = None
        if self.parser_pool:
            pool = parts if self.parser_labels and self.with_parts else self.parser_map(path, size)
        if self.cache:
            for arr in (rgb, parts, pool):
                if arr is not None:
                    arr.flags.writeable = False
            self._decoded[index] = (rgb, parts, pool)
        return rgb, parts, pool

    def _transform(
        self, image: Any, parts: np.ndarray | None, geometry: Any, labels: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, EraseBox | None]:
        """Apply the transform (staged or whole); a :class:`JointTransform` skips a label
        map nobody reads (the same image and the same random draws, without its work)."""
        if isinstance(self.transform, JointTransform):
            if self.staged:
                return self.transform.staged(image, parts, geometry=geometry, labels=labels)
            return (*self.transform(image, parts, geometry=geometry, labels=labels), None)
        if isinstance(image, np.ndarray):  # other transforms get the PIL image, as always
            image = Image.fromarray(np.ascontiguousarray(image))
        return (*self.transform(image, parts, geometry=geometry), None)
