"""Data loaders of the trainer: seeded per-epoch batch orders, sharded across ranks.

Each epoch of each stage draws its batches from one seed that the trainer derives from
``(config.seed, stage, epoch, source|target)``, so the order does not depend on how many
epochs ran before in this process: resuming from the checkpoint of epoch ``k`` replays
epoch ``k+1`` exactly. The samplers are the data package's
(:class:`~semparts_reid.data.samplers.PKSampler` for P×K source batches,
:class:`~semparts_reid.data.samplers.RandomIndexSampler` otherwise): under ``torchrun``
every rank draws the same *global* batches and takes its own contiguous slice of each,
so ``N`` processes see exactly the batches one process would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..data.samplers import PKSampler, RandomIndexSampler
from ..precision import PrecisionPolicy

__all__ = [
    "build_train_dataset",
    "build_train_loader",
    "move_batch",
    "train_sampler",
]


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


def _torch_dataset(
    records: Sequence[Any],
    data_config: dict[str, Any],
    train: bool,
    cfg: Any = None,
    camstyle: bool = False,
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
    transform = build_transforms(data_config, train=train, **aug)
    style = CameraStyleAugmenter(records) if camstyle else None
    table = getattr(cfg, "part_table", "parts4") if cfg is not None else "parts4"
    return ReIDImageDataset(records, transform, camstyle=style, part_table=table)


def build_train_dataset(
    records: Sequence[Any], cfg: Any, data_config: dict[str, Any], *, camstyle: bool = False
) -> Any:
    """Torch dataset with training augmentation (and camera-style images) over ``records``.

    Build it once per run: the camera-style augmenter fits per-camera colour statistics.
    """
    return _torch_dataset(records, data_config, True, cfg, camstyle=camstyle)


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
) -> DataLoader:
    """Loader over ``torch_dataset`` for one epoch of ``steps`` (this rank's slices).

    The batches are :func:`train_sampler`'s; each step yields one collated batch of
    ``global_batch // world`` items.
    """
    sampler = train_sampler(
        len(torch_dataset), pids, global_batch=global_batch, steps=steps, seed=seed,
        num_instances=num_instances, rank=rank, world=world,
    )
    return DataLoader(
        torch_dataset, batch_size=sampler.local_batch_size, sampler=sampler,
        num_workers=cfg.num_workers, persistent_workers=False, pin_memory=False,
    )


def move_batch(batch: dict[str, Any], policy: PrecisionPolicy) -> dict[str, Any]:
    """Move a collated batch dict to the policy's device (images in its memory format)."""
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = policy.prepare_input(v) if v.dim() == 4 else v.to(policy.device)
        else:
            out[k] = v
    return out
