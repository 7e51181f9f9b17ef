"""The trainer's batches: one seeded iterator per domain, stage and epoch.

The torch datasets (transforms, camera-style augmentation) are built once per run; the
batch order of each epoch is drawn from ``(seed, stage, epoch, domain)``, so a resumed
run sees exactly the batches the uninterrupted run saw.

With ``num_workers > 0`` each domain keeps one loader whose worker processes persist
across epochs (and stages); every epoch re-seeds its sampler (and the per-item
augmentation seeds, see :mod:`~semparts_reid.engine.loaders`). With ``num_workers = 0``
a light loader is built per epoch, exactly as before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import DataLoader

from ..errors import InputError
from .config import TrainConfig
from .loaders import build_train_dataset, build_train_loader, reseed_loader

__all__ = ["STAGES", "EpochBatches", "check_pids", "epoch_seed"]

logger = logging.getLogger(__name__)

STAGES = ("source", "adapt")


def epoch_seed(seed: int, stage: str, epoch: int, target: bool) -> int:
    """The sampler seed of one domain's epoch (distinct per stage, epoch and domain)."""
    return (seed * 1_000_003 + STAGES.index(stage) * 10_007 + epoch) * 2 + int(target)


def check_pids(records: Sequence[Any], num_classes: int, name: str = "source") -> None:
    """Raise ``ValueError`` unless every record's pid lies in ``[0, num_classes)``.

    Checked once per run on the host, so the training step need not read the pids of
    every batch back from the GPU.
    """
    pids = [int(r[1]) for r in records]
    if pids and (min(pids) < 0 or max(pids) >= num_classes):
        raise ValueError(
            f"{name} pids in [{min(pids)}, {max(pids)}]: expected labels in "
            f"[0, {num_classes - 1}] (build the model with num_classes = the number of "
            "training identities)"
        )


class EpochBatches:
    """Build the source and target training iterators of each epoch.

    Args:
        source, target: datasets with a ``.train`` list of ``(path, pid, camid)``
            records (target may be None).
        config: the :class:`TrainConfig` (batch sizes, P×K, workers, augmentation).
        data_config: the model's preprocessing (``input_size``, ``mean``, ``std``).
        rank, world: this process and the number of processes.
        pin_memory: page-locked batches (set on CUDA, for ``non_blocking`` copies).
        part_model: the model has a part classifier. Items carry their part-label maps
            (uint8) only when a part loss reads maps from disk: ``part_model`` and
            ``config.parts.part_labels`` is ``"auto"`` or ``"gt"`` (for the target domain
            also ``config.parts.target_part_loss``); otherwise no map is read or shipped.
            With ``part_labels="parser"`` the domains of ``parser_domains`` ship the
            parser's maps instead (from ``parser_maps``, opened here: a bad folder raises
            :class:`~semparts_reid.errors.InputError` naming it), and with
            ``pool_with_parser_maps`` their items carry ``pool_parts`` too.

    Attributes:
        parser: the opened parser maps (None when the config uses none).
        parser_fallback: per domain reading them, its training crops without a parser
            map (logged once, when its dataset is built).
    """

    def __init__(self, source: Any, target: Any | None, config: TrainConfig,
                 data_config: dict[str, Any], *, rank: int = 0, world: int = 1,
                 pin_memory: bool = False, part_model: bool = True) -> None:
        self.source, self.target, self.config = source, target, config
        self.data_config = data_config
        self.rank, self.world = rank, world
        self.pin_memory, self.part_model = pin_memory, part_model
        self._datasets: dict[str, Any] = {}
        self._loaders: dict[str, tuple[int, DataLoader]] = {}  # which -> (steps, loader)
        self.parser: Any = None
        self.parser_fallback: dict[str, int] = {}
        parts = config.parts
        if parts.part_labels == "parser" or parts.pool_with_parser_maps:
            if parts.parser_maps is None or not parts.parser_maps.strip(" ,"):
                raise InputError(
                    f"parser_maps={parts.parser_maps!r}: part_labels='parser' and "
                    "pool_with_parser_maps need the folder of 'semparts-reid parse' output"
                )
            from ..parsers.maps import open_parsed_maps

            self.parser = open_parsed_maps(parts.parser_maps)

    def steps_per_epoch(self) -> int:
        """Source batches per epoch (capped by ``max_steps_per_epoch``)."""
        cfg = self.config
        steps = max(1, len(self.source.train) // cfg.optim.batch_size)
        return min(steps, cfg.optim.max_steps_per_epoch) if cfg.optim.max_steps_per_epoch else steps

    def ships_parts(self, which: str) -> bool:
        """Whether the items of ``which`` (``"source"`` / ``"target"``) carry part maps."""
        cfg = self.config
        if not self.part_model or cfg.parts.part_labels not in ("auto", "gt", "parser"):
            return False
        if cfg.parts.part_labels == "parser" and cfg.parts.uses_parser(which):
            return which == "source" or cfg.parts.target_part_loss
        # the target's maps are evidence real data lacks: read only when asked for
        return which == "source" or (cfg.parts.target_part_loss and cfg.parts.target_part_maps)

    def _parser_options(self, which: str) -> dict[str, Any]:
        """``build_train_dataset``'s parser arguments for ``which``; logs, once, how
        many of its crops have no parser map (they keep their fallback)."""
        parts = self.config.parts
        if self.parser is None or not parts.uses_parser(which) or not self.part_model:
            return {}
        labels = parts.part_labels == "parser" and self.ships_parts(which)
        pool = bool(parts.pool_with_parser_maps)
        if not (labels or pool):
            return {}
        ds = self.source if which == "source" else self.target
        assert ds is not None
        paths = {str(r[0]) for r in ds.train}
        missing = 0
        for path in paths:
            row = self.parser.row(path)
            missing += row is None or not row.found
        self.parser_fallback[which] = missing
        uses = " and ".join(w for w, on in (("part labels", labels), ("pooling masks", pool))
                            if on)
        fallback = " and ".join(w for w, on in (
            (f"the {parts.unlabeled_part_labels!r} labels", labels),
            ("their predicted part maps", pool)) if on)
        logger.info("parser maps (%s %s): %d of %d training crops have a parser map; %d "
                    "without one keep %s", which, uses, len(paths) - missing, len(paths),
                    missing, fallback)
        return {"parser_maps": self.parser, "parser_labels": labels, "parser_pool": pool}

    def dataset(self, which: str) -> Any:
        """The torch dataset of ``which`` (built on first use)."""
        ds = self.source if which == "source" else self.target
        if ds is None:
            raise ValueError(f"no {which} dataset")
        if which not in self._datasets:
            self._datasets[which] = build_train_dataset(
                ds.train, self.config, self.data_config,
                camstyle=which == "target" and self.config.augment.camstyle,
                with_parts=self.ships_parts(which), **self._parser_options(which),
            )
        return self._datasets[which]

    def iterator(self, which: str, stage: str, epoch: int, steps: int) -> Iterator[dict[str, Any]]:
        """This rank's batches of ``which`` (``"source"`` / ``"target"``) for one epoch.

        With workers, a new call for the same domain ends the previous iterator.
        """
        cfg = self.config
        data = self.dataset(which)
        ds = self.source if which == "source" else self.target
        assert ds is not None
        seed = epoch_seed(cfg.seed, stage, epoch, which == "target")
        cached = self._loaders.get(which)
        if cfg.runtime.num_workers and cached is not None and cached[0] == steps:
            reseed_loader(cached[1], seed)
            return iter(cached[1])
        loader = build_train_loader(
            data, [r[1] for r in ds.train], cfg,
            global_batch=cfg.optim.batch_size if which == "source" else cfg.optim.target_batch_size,
            steps=steps, seed=seed, rank=self.rank, world=self.world,
            num_instances=cfg.optim.num_instances if which == "source" else 0,
            pin_memory=self.pin_memory,
        )
        if cfg.runtime.num_workers:
            self._loaders[which] = (steps, loader)  # its workers persist
        return iter(loader)

    def close(self) -> None:
        """Stop the persistent worker processes (they also stop when this is collected)."""
        self._loaders.clear()
