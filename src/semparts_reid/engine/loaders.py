"""Data loaders of the trainer: seeded per-epoch batch orders, sharded across ranks.

Each epoch of each stage draws its batches from one seed that the trainer derives from
``(config.seed, stage, epoch, source|target)``, so the order does not depend on how many
epochs ran before in this process: resuming from the checkpoint of epoch ``k`` replays
epoch ``k+1`` exactly. The samplers are the data package's
(:class:`~semparts_reid.data.samplers.PKSampler` for P×K source batches,
:class:`~semparts_reid.data.samplers.RandomIndexSampler` otherwise): under ``torchrun``
every rank draws the same *global* batches and takes its own contiguous slice of each,
so ``N`` processes see exactly the batches one process would.

Keeping a GPU fed:

* with ``num_workers > 0`` a loader keeps its worker processes between epochs
  (``persistent_workers``); :func:`reseed_loader` points its sampler at the next epoch's
  seed. The random augmentation of every item is then seeded from ``(epoch seed, rank,
  position in the epoch)`` (:class:`SeededItems`), so the augmented batches of an epoch
  do not depend on the worker count or on the epochs the workers served before, and a
  resumed run replays them exactly. With ``num_workers = 0`` items are augmented with
  the process's RNG, as they always were (restored on resume);
* ``pin_memory`` on CUDA, and :func:`move_batch` copies with ``non_blocking`` there;
* the images travel as uint8 after resize / crop / flip (the dataset's ``staged``
  items, collated by :class:`TrainCollate` into :class:`PendingImages`): a quarter of
  the bytes to collate, pass between processes, pin and copy to a GPU. :func:`move_batch`
  normalises and erases them on the device
  (:func:`~semparts_reid.data.transforms.finish_images`: exactly the transform's
  values), in the main process on a CPU (about 0.1 ms per image, far below a training
  step), in a few kernels on a GPU;
* :func:`collate_batch` summarises on the host which images carry part labels
  (``parts_known``), so the step never reads that back from the GPU.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from ..data.samplers import PKSampler, RandomIndexSampler, make_generator
from ..data.transforms import EraseBox, finish_images
from ..layers.parts import IGNORE_INDEX
from ..precision import PrecisionPolicy, to_memory_format

__all__ = [
    "PendingImages",
    "SeededItems",
    "TrainCollate",
    "build_train_dataset",
    "build_train_loader",
    "collate_batch",
    "move_batch",
    "reseed_loader",
    "train_sampler",
]

_SEED_MOD = 2**63  # item seeds: torch takes [0, 2**64), keep clear of the sign bit


def train_sampler(
    num_items: int,
    pids: Sequence[int],
    *,
    global_batch: int,
    steps: int,
    seed: int,
    num_instances: int = 0,
    rank: int = 0,
    world: int = 1,
) -> PKSampler | RandomIndexSampler:
    """The sampler of one training epoch: ``steps`` global batches of ``global_batch``.

    Args:
        num_items: dataset length.
        pids: identity of each item (used for P×K batches).
        global_batch: images per step over all ranks (a multiple of ``world``).
        steps: number of batches.
        seed: the epoch's seed (the trainer derives it from seed, stage, epoch, domain).
        num_instances: ``K`` of P×K batches (``global_batch // K`` identities each);
            0 for uniformly random batches.
        rank, world: this process's slice of each global batch.

    P×K batches come from ``make_generator(seed * 1_000_003)`` (the sampler's epoch 0)
    and random ones from ``make_generator(seed)`` (the sampler's epoch ``seed`` of seed
    0): the generators the trainer has always used, so a seed keeps its batches.
    """
    if num_items < 1:
        raise ValueError(f"num_items={num_items}: expected a non-empty dataset")
    if num_instances:
        if global_batch % num_instances:
            raise ValueError(
                f"global_batch={global_batch} is not a multiple of num_instances={num_instances}"
            )
        return PKSampler(pids, global_batch // num_instances, num_instances, num_batches=steps,
                         seed=seed, rank=rank, world_size=world)
    sampler = RandomIndexSampler(num_items, batch_size=global_batch, num_batches=steps,
                                 seed=0, rank=rank, world_size=world)
    sampler.set_epoch(seed)
    return sampler


def _reseed_sampler(sampler: PKSampler | RandomIndexSampler, seed: int) -> None:
    """Give ``sampler`` the batches :func:`train_sampler` draws for ``seed``."""
    if isinstance(sampler, PKSampler):
        sampler.load_state_dict({"seed": seed, "epoch": 0})
    else:
        sampler.load_state_dict({"seed": 0, "epoch": seed})


class _ItemSeedSampler(Sampler[tuple[int, int]]):
    """Yield ``(index, item_seed)``: the wrapped sampler's indices, each with a seed
    derived from the epoch seed, the rank and the item's position in the epoch."""

    def __init__(self, sampler: PKSampler | RandomIndexSampler, seed: int) -> None:
        self.sampler = sampler
        self.local_batch_size = sampler.local_batch_size
        self.seed = seed

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start = self.sampler.start  # a mid-epoch restart keeps the positions' seeds
        indices = list(iter(self.sampler))
        ss = np.random.SeedSequence([self.seed % 2**64, self.sampler.rank])
        base = int(ss.generate_state(2, np.uint64)[0])
        return iter([(i, (base + start + pos) % _SEED_MOD) for pos, i in enumerate(indices)])


class SeededItems(Dataset[Any]):
    """``dataset[(index, seed)]``: seed the process's RNGs (torch CPU, numpy, ``random``)
    with ``seed``, then return ``dataset[index]``.

    Used in DataLoader workers, where the RNG belongs to the worker: the augmentation
    of each item becomes a function of its seed alone.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        torch.default_generator.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        return self.dataset[index]


def build_train_dataset(
    records: Sequence[Any],
    cfg: Any,
    data_config: dict[str, Any],
    *,
    camstyle: bool = False,
    with_parts: bool = True,
    staged: bool = True,
    parser_maps: Any = None,
    parser_labels: bool = False,
    parser_pool: bool = False,
) -> Any:
    """Torch dataset with training augmentation (and camera-style images) over ``records``.

    Build it once per run: the camera-style augmenter fits per-camera colour statistics.
    Items carry ``parts`` as uint8 (H, W) maps at the input size (the part loss
    up-samples its logits to the label map, so smaller maps would change the loss),
    and only with ``with_parts`` (set it when a part loss will read them). ``staged``:
    uint8 images finished after collation (see the module docstring); the batches of
    :func:`build_train_loader` are the same either way. ``parser_maps`` (a
    :class:`~semparts_reid.parsers.ParsedPartMaps`), ``parser_labels``, ``parser_pool``:
    a human parser's maps as the ``parts`` labels and / or as ``pool_parts`` pooling
    masks (:class:`~semparts_reid.data.image_dataset.ReIDImageDataset`).
    """
    from ..data.camstyle import CameraStyleAugmenter
    from ..data.image_dataset import ReIDImageDataset
    from ..data.transforms import build_transforms

    h = int(data_config["input_size"][0])
    # 10 px of padding at 256 px height (the usual re-ID setting), scaled with height
    pad = max(1, round(10 * h / 256)) if cfg.augment.random_crop else 0
    aug = cfg.augment
    transform = build_transforms(data_config, train=True, label_dtype=torch.uint8, pad=pad,
                                 flip_p=aug.flip_prob, erasing_p=aug.random_erasing,
                                 color_jitter=aug.color_jitter)
    staged = staged and not aug.color_jitter  # jitter needs PIL images
    style = CameraStyleAugmenter(records) if camstyle else None
    return ReIDImageDataset(records, transform, camstyle=style,
                            part_table=cfg.parts.part_table,
                            with_parts=with_parts, staged=staged,
                            cache=bool(cfg.runtime.cache_images), parser_maps=parser_maps,
                            parser_labels=parser_labels, parser_pool=parser_pool)


@dataclass(frozen=True)
class PendingImages:
    """A collated batch of staged uint8 images, to be normalised and erased later.

    :meth:`finish` (called by :func:`move_batch` on the device) gives exactly the
    (B, 3, H, W) float32 images of the transform.

    Attributes:
        pixels: (B, 3, H, W) uint8.
        boxes: ``(item, top, left, eh, ew)`` of every erased box, on the host.
        noise: the boxes' noise, flattened and concatenated (float32).
        mean, std: the transform's normalisation.
    """

    pixels: torch.Tensor
    boxes: tuple[tuple[int, int, int, int, int], ...]
    noise: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def collate(cls, pixels: torch.Tensor, erase: Sequence[EraseBox | None],
                mean: Sequence[float], std: Sequence[float]) -> PendingImages:
        boxes = tuple((i, b[0], b[1], int(b[2].shape[1]), int(b[2].shape[2]))
                      for i, b in enumerate(erase) if b is not None)
        flat = [b[2].reshape(-1) for b in erase if b is not None]
        noise = torch.cat(flat) if flat else torch.zeros(0)
        return cls(pixels, boxes, noise, tuple(mean), tuple(std))

    def pin_memory(self) -> PendingImages:
        """Page-locked copies (the DataLoader calls this with ``pin_memory=True``)."""
        return replace(self, pixels=self.pixels.pin_memory(), noise=self.noise.pin_memory())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PendingImages:
        return replace(self, pixels=self.pixels.to(device, non_blocking=non_blocking),
                       noise=self.noise.to(device, non_blocking=non_blocking))

    def finish(self) -> torch.Tensor:
        """(B, 3, H, W) float32 normalised and erased images, on the pixels' device."""
        erase: list[EraseBox | None] = [None] * self.pixels.shape[0]
        pos = 0
        for i, top, left, eh, ew in self.boxes:
            n = 3 * eh * ew
            erase[i] = (top, left, self.noise[pos:pos + n].view(3, eh, ew))
            pos += n
        return finish_images(self.pixels, self.mean, self.std, erase)


def _float_buffer(shape: Sequence[int]) -> torch.Tensor:
    """An empty float32 tensor, in shared memory inside a DataLoader worker (as
    ``default_collate`` does: the batch then reaches the main process without a copy)."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(tuple(shape))
    numel = int(np.prod(shape))
    storage = torch.empty(0)._typed_storage()._new_shared(numel, device="cpu")
    return torch.empty(0).new(storage).view(tuple(shape))


class TrainCollate:
    """The trainer's collate: :func:`collate_batch`, then the staged images finished.

    Args:
        mean, std: the transform's normalisation.
        defer: leave the images as :class:`PendingImages` for :func:`move_batch` to
            finish on the device (for a GPU); otherwise finish them here (in the worker).
    """

    KEYS = (("image", "image_erase"), ("image_cam", "image_cam_erase"))

    def __init__(self, mean: Sequence[float], std: Sequence[float], defer: bool = False) -> None:
        self.mean, self.std, self.defer = tuple(mean), tuple(std), bool(defer)

    def __call__(self, items: list[Any]) -> Any:
        staged = bool(items) and isinstance(items[0], dict) and "image_erase" in items[0]
        keys = [(k, ek) for k, ek in self.KEYS if staged and ek in items[0]]
        pending = {k: ([it.pop(k) for it in items], [it.pop(ek) for it in items])
                   for k, ek in keys}
        batch = collate_batch(items)
        for key, (pixels, erase) in pending.items():
            if self.defer:
                batch[key] = PendingImages.collate(default_collate(pixels), erase, self.mean,
                                                   self.std)
            else:  # straight from the items into the batch: no uint8 stack
                shape = (len(pixels), *pixels[0].shape)
                batch[key] = finish_images(pixels, self.mean, self.std, erase,
                                           out=_float_buffer(shape))
        return batch


def collate_batch(items: list[Any]) -> Any:
    """``default_collate``, plus, for dict items with ``parts``, a host-side summary.

    Adds ``has_parts`` (B,) bool (the image has a labelled pixel) and ``parts_known``
    (``"all"``, ``"some"`` or ``"none"``), computed on the CPU in the loader (a worker,
    when there are workers), so the training step can choose between label maps and
    pseudo labels without a GPU synchronisation. Items with ``pool_parts`` (parser maps
    as pooling masks) give ``pool_known`` (B,) bool the same way: which images pool
    with their parser map (the others with their predicted maps).
    """
    batch = default_collate(items)
    if isinstance(batch, dict) and isinstance(batch.get("parts"), torch.Tensor):
        known = (batch["parts"] != IGNORE_INDEX).flatten(1).any(1)
        batch["has_parts"] = known
        n = int(known.sum())
        batch["parts_known"] = "all" if n == len(known) else ("none" if n == 0 else "some")
    if isinstance(batch, dict) and isinstance(batch.get("pool_parts"), torch.Tensor):
        batch["pool_known"] = (batch["pool_parts"] != IGNORE_INDEX).flatten(1).any(1)
    return batch


def build_train_loader(
    torch_dataset: Any,
    pids: Sequence[int],
    cfg: Any,
    *,
    global_batch: int,
    steps: int,
    seed: int,
    num_instances: int = 0,
    rank: int = 0,
    world: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """Loader over ``torch_dataset`` for ``steps`` batches per epoch (this rank's slices).

    The batches are :func:`train_sampler`'s for ``seed``; each step yields one collated
    batch (:func:`collate_batch`; for a dataset with ``staged`` items
    :class:`TrainCollate`, whose images :func:`move_batch` finishes on the device) of
    ``global_batch // world`` items. With
    ``cfg.runtime.num_workers > 0`` the workers persist: call :func:`reseed_loader` for the next
    epoch and iterate the same loader again (one live iterator per loader: a new
    ``iter()`` ends the previous one). ``pin_memory``: page-locked batches, for
    ``non_blocking`` copies to a GPU.
    """
    sampler = train_sampler(
        len(torch_dataset), pids, global_batch=global_batch, steps=steps, seed=seed,
        num_instances=num_instances, rank=rank, world=world,
    )
    workers = int(cfg.runtime.num_workers)
    transform = getattr(torch_dataset, "transform", None)
    collate: Any = collate_batch
    if getattr(torch_dataset, "staged", False) and transform is not None:
        mean, std = transform.mean_std
        collate = TrainCollate(mean, std, defer=True)
    if workers == 0:
        return DataLoader(
            torch_dataset, batch_size=sampler.local_batch_size, sampler=sampler,
            num_workers=0, collate_fn=collate, pin_memory=pin_memory,
        )
    return DataLoader(
        SeededItems(torch_dataset), batch_size=sampler.local_batch_size,
        sampler=_ItemSeedSampler(sampler, seed), num_workers=workers, collate_fn=collate,
        persistent_workers=True, pin_memory=pin_memory,
        # the workers' base seed from a private generator: the process RNG is not drawn
        # from when the workers start (which would make a resumed run's RNG differ)
        generator=make_generator(0),
    )


def reseed_loader(loader: DataLoader, seed: int) -> None:
    """Point a :func:`build_train_loader` loader at the batches of ``seed`` (next epoch)."""
    sampler: Any = loader.sampler
    if isinstance(sampler, _ItemSeedSampler):
        sampler.seed = seed
        sampler = sampler.sampler
    if not isinstance(sampler, (PKSampler, RandomIndexSampler)):
        raise TypeError(f"reseed_loader: {type(sampler).__name__} is not a training sampler")
    _reseed_sampler(sampler, seed)


def move_batch(batch: dict[str, Any], policy: PrecisionPolicy) -> dict[str, Any]:
    """Move a collated batch dict to the policy's device (images in its memory format).

    On CUDA the copies are ``non_blocking`` (asynchronous from the pinned batches of
    the loader); everything else (``path``, ``parts_known``) stays on the host.
    """
    nb = policy.device.type == "cuda"
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, PendingImages):  # normalise and erase on the device
            out[k] = to_memory_format(v.to(policy.device, non_blocking=nb).finish(),
                                      policy.channels_last)
        elif isinstance(v, torch.Tensor):
            if v.dim() == 4:
                out[k] = policy.prepare_input(v, non_blocking=nb)
            else:
                out[k] = v.to(policy.device, non_blocking=nb)
        else:
            out[k] = v
    return out
