"""Data loaders of the trainer: seeded per-epoch batch orders, sharded across ranks.

Each epoch of each stage draws its index order from a ``torch.Generator`` seeded with
``(config.seed, stage, epoch, source|target)``, so the order does not depend on how
many epochs ran before in this process: resuming from the checkpoint of epoch ``k``
replays epoch ``k+1`` exactly. Under ``torchrun`` every rank draws the same *global*
batches and takes its own contiguous slice of each, so ``N`` processes see exactly the
batches one process would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from ..precision import PrecisionPolicy

__all__ = [
    "GlobalBatchSampler",
    "build_eval_loader",
    "build_train_dataset",
    "build_train_loader",
    "move_batch",
]


def _random_order(n: int, total: int, g: torch.Generator) -> torch.Tensor:
    """``total`` indices from concatenated random permutations of ``range(n)``."""
    reps = -(-total // n)
    return torch.cat([torch.randperm(n, generator=g) for _ in range(reps)])[:total]


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this rank's slice of ``steps`` global batches drawn with a fixed seed.

    Args:
        num_items: dataset length.
        global_batch: images per step over all ranks.
        steps: number of batches.
        seed: generator seed (the trainer derives it from seed, stage and epoch).
        rank, world: this process's slice of each global batch.
        pids: identity of each item for P×K batches (with ``num_instances``).
        num_instances: ``K`` of P×K sampling (the data package's ``PKSampler`` draws the
            global batches); 0 for uniform random batches.
    """

    def __init__(
        self,
        num_items: int,
        global_batch: int,
        steps: int,
        seed: int,
        *,
        rank: int = 0,
        world: int = 1,
        pids: Sequence[int] | None = None,
        num_instances: int = 0,
    ) -> None:
        if num_items < 1:
            raise ValueError(f"num_items={num_items}: expected a non-empty dataset")
        if global_batch % world:
            raise ValueError(f"global_batch={global_batch} not divisible by world={world}")
        if num_instances and pids is None:
            raise ValueError("num_instances > 0 needs the pids of the items")
        self.num_items, self.global_batch, self.steps = num_items, global_batch, steps
        self.seed, self.rank, self.world = seed, rank, world
        self.pids, self.num_instances = pids, num_instances

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(int(self.seed) % (2**63))
        total = self.steps * self.global_batch
        if self.num_instances:
            from ..data.samplers import PKSampler

            assert self.pids is not None
            k = self.num_instances
            pk = PKSampler(self.pids, self.global_batch // k, k, num_batches=self.steps,
                           seed=self.seed, rank=0, world_size=1)
            order = torch.from_numpy(pk.global_batches()).reshape(-1)
        else:
            order = _random_order(self.num_items, total, g)
        local = self.global_batch // self.world
        batches = order.view(self.steps, self.global_batch)
        mine = batches[:, self.rank * local : (self.rank + 1) * local]
        yield from mine.tolist()


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
    """Loader over ``torch_dataset`` for one epoch of ``steps`` (this rank's slices)."""
    sampler = GlobalBatchSampler(
        len(torch_dataset), global_batch, steps, seed, rank=rank, world=world,
        pids=pids, num_instances=num_instances,
    )
    return DataLoader(
        torch_dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
        persistent_workers=False, pin_memory=False,
    )


def build_eval_loader(
    records: Sequence[Any], data_config: dict[str, Any], batch_size: int, num_workers: int
) -> DataLoader:
    """Sequential loader with test transforms over ``records``."""
    ds = _torch_dataset(records, data_config, False)
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)


def move_batch(batch: dict[str, Any], policy: PrecisionPolicy) -> dict[str, Any]:
    """Move a collated batch dict to the policy's device (images in its memory format)."""
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = policy.prepare_input(v) if v.dim() == 4 else v.to(policy.device)
        else:
            out[k] = v
    return out
