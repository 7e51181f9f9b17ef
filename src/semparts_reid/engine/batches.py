"""The trainer's batches: one seeded iterator per domain, stage and epoch.

The torch datasets (transforms, camera-style augmentation) are built once per run; the
batch order of each epoch is drawn from ``(seed, stage, epoch, domain)``, so a resumed
run sees exactly the batches the uninterrupted run saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .config import TrainConfig
from .loaders import build_train_dataset, build_train_loader

__all__ = ["STAGES", "EpochBatches", "epoch_seed"]

STAGES = ("source", "adapt")


def epoch_seed(seed: int, stage: str, epoch: int, target: bool) -> int:
    """The sampler seed of one domain's epoch (distinct per stage, epoch and domain)."""
    return (seed * 1_000_003 + STAGES.index(stage) * 10_007 + epoch) * 2 + int(target)


class EpochBatches:
    """Build the source and target training iterators of each epoch.

    Args:
        source, target: datasets with a ``.train`` list of ``(path, pid, camid)``
            records (target may be None).
        config: the :class:`TrainConfig` (batch sizes, P×K, workers, augmentation).
        data_config: the model's preprocessing (``input_size``, ``mean``, ``std``).
        rank, world: this process and the number of processes.
    """

    def __init__(self, source: Any, target: Any | None, config: TrainConfig,
                 data_config: dict[str, Any], *, rank: int = 0, world: int = 1) -> None:
        self.source, self.target, self.config = source, target, config
        self.data_config = data_config
        self.rank, self.world = rank, world
        self._datasets: dict[str, Any] = {}

    def steps_per_epoch(self) -> int:
        """Source batches per epoch (capped by ``max_steps_per_epoch``)."""
        cfg = self.config
        steps = max(1, len(self.source.train) // cfg.batch_size)
        return min(steps, cfg.max_steps_per_epoch) if cfg.max_steps_per_epoch else steps

    def iterator(self, which: str, stage: str, epoch: int, steps: int) -> Iterator[dict[str, Any]]:
        """This rank's batches of ``which`` (``"source"`` / ``"target"``) for one epoch."""
        cfg = self.config
        ds = self.source if which == "source" else self.target
        if ds is None:
            raise ValueError(f"no {which} dataset")
        if which not in self._datasets:
            self._datasets[which] = build_train_dataset(
                ds.train, cfg, self.data_config, camstyle=which == "target" and cfg.camstyle
            )
        return iter(
            build_train_loader(
                self._datasets[which], [r[1] for r in ds.train], cfg,
                global_batch=cfg.batch_size if which == "source" else cfg.target_batch_size,
                steps=steps, seed=epoch_seed(cfg.seed, stage, epoch, which == "target"),
                rank=self.rank, world=self.world,
                num_instances=cfg.num_instances if which == "source" else 0,
            )
        )
