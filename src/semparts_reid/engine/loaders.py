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
* :func:`collate_batch` summarises on the host which images carry part labels
  (``parts_known``), so the step never reads that back from the GPU.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from ..data.samplers import PKSampler, RandomIndexSampler, make_generator
from ..layers.parts import IGNORE_INDEX
from ..precision import PrecisionPolicy

__all__ = [
    "SeededItems",
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


def _torch_dataset(
    records: Sequence[Any],
    data_config: dict[str, Any],
    train: bool,
    cfg: Any = None,
    camstyle: bool = False,
    with_parts: bool = True,
) -> Any:
    """The data package's torch dataset (dict items per docs/architecture.md)."""
    from ..data.camstyle import CameraStyleAugmenter
    from ..data.image_dataset import ReIDImageDataset
    from ..data.transforms import build_transforms

    aug: dict[str, Any] = {}
    if cfg is not None and train:
        h = int(data_config["input_size"][0])
        # 10 px of padding at 256 px height (the usual re-ID setting), scaled with height
        pad = max(1, round(10 * h / 256)) if cfg.random_crop else 0
        aug = dict(pad=pad, flip_p=cfg.flip_prob, erasing_p=cfg.random_erasing)
    transform = build_transforms(data_config, train=train, label_dtype=torch.uint8, **aug)
    style = CameraStyleAugmenter(records) if camstyle else None
    table = getattr(cfg, "part_table", "parts4") if cfg is not None else "parts4"
    return ReIDImageDataset(records, transform, camstyle=style, part_table=table,
                            with_parts=with_parts)


def build_train_dataset(
    records: Sequence[Any],
    cfg: Any,
    data_config: dict[str, Any],
    *,
    camstyle: bool = False,
    with_parts: bool = True,
) -> Any:
    """Torch dataset with training augmentation (and camera-style images) over ``records``.

    Build it once per run: the camera-style augmenter fits per-camera colour statistics.
    Items carry ``parts`` as uint8 (H, W) maps at the input size (the part loss
    up-samples its logits to the label map, so smaller maps would change the loss),
    and only with ``with_parts`` (set it when a part loss will read them).
    """
    return _torch_dataset(records, data_config, True, cfg, camstyle=camstyle,
                          with_parts=with_parts)


def collate_batch(items: list[Any]) -> Any:
    """``default_collate``, plus, for dict items with ``parts``, a host-side summary.

    Adds ``has_parts`` (B,) bool (the image has a labelled pixel) and ``parts_known``
    (``"all"``, ``"some"`` or ``"none"``), computed on the CPU in the loader (a worker,
    when there are workers), so the training step can choose between label maps and
    pseudo labels without a GPU synchronisation.
    """
    batch = default_collate(items)
    if isinstance(batch, dict) and isinstance(batch.get("parts"), torch.Tensor):
        known = (batch["parts"] != IGNORE_INDEX).flatten(1).any(1)
        batch["has_parts"] = known
        n = int(known.sum())
        batch["parts_known"] = "all" if n == len(known) else ("none" if n == 0 else "some")
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
    batch (:func:`collate_batch`) of ``global_batch // world`` items. With
    ``cfg.num_workers > 0`` the workers persist: call :func:`reseed_loader` for the next
    epoch and iterate the same loader again (one live iterator per loader: a new
    ``iter()`` ends the previous one). ``pin_memory``: page-locked batches, for
    ``non_blocking`` copies to a GPU.
    """
    sampler = train_sampler(
        len(torch_dataset), pids, global_batch=global_batch, steps=steps, seed=seed,
        num_instances=num_instances, rank=rank, world=world,
    )
    workers = int(cfg.num_workers)
    if workers == 0:
        return DataLoader(
            torch_dataset, batch_size=sampler.local_batch_size, sampler=sampler,
            num_workers=0, collate_fn=collate_batch, pin_memory=pin_memory,
        )
    return DataLoader(
        SeededItems(torch_dataset), batch_size=sampler.local_batch_size,
        sampler=_ItemSeedSampler(sampler, seed), num_workers=workers, collate_fn=collate_batch,
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
        if isinstance(v, torch.Tensor):
            if v.dim() == 4:
                out[k] = policy.prepare_input(v, non_blocking=nb)
            else:
                out[k] = v.to(policy.device, non_blocking=nb)
        else:
            out[k] = v
    return out
