"""The builders behind :class:`~semparts_reid.engine.trainer.DomainAdaptTrainer`'s
constructor: each checks or builds one thing from the arguments and the config.

* :func:`check_trainer_args`: the types and splits of the model, datasets, objective;
* :func:`config_for_target`: the config adjusted to what the target can do (camstyle);
* :func:`check_world_batches`: the global batches split evenly across processes;
* :func:`probe_num_parts`: K, the part features of the model;
* :func:`make_objective`: the target objective (given, from a memory, or built in);
* :func:`make_loggers`: the default per-epoch loggers;
* :func:`check_labels_once`: the source pids and the memory's slots, once on the host;
* :func:`model_data_config`: the model's preprocessing at the config's input size.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.camstyle import camera_style_possible
from ..memory import ExemplarMemory
from .batches import check_pids
from .config import TrainConfig
from .loggers import JsonLinesLogger, MetricsLogger, TensorBoardLogger
from .objective_base import TargetObjective
from .objectives import ExemplarObjective, build_objective
from .video_links import video_constraints_for

__all__ = [
    "check_labels_once",
    "check_trainer_args",
    "check_world_batches",
    "config_for_target",
    "make_loggers",
    "make_objective",
    "model_data_config",
    "probe_num_parts",
]

logger = logging.getLogger(__name__)


def check_trainer_args(
    model: nn.Module, source: Any, target: Any | None, config: TrainConfig | None,
    objective: Any | None, memory: ExemplarMemory | None,
) -> TrainConfig:
    """Refuse arguments the trainer cannot use; the config (default ``TrainConfig()``)."""
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    for name in ("forward_features", "forward_head", "feat_dim"):
        if not hasattr(model, name):
            raise TypeError(
                f"model: {type(model).__name__} has no '{name}'; expected a build_model model"
            )
    if source is None or not hasattr(source, "train") or len(source.train) == 0:
        raise ValueError("source: expected a dataset with a non-empty .train split")
    if target is not None and (not hasattr(target, "train") or len(target.train) == 0):
        raise ValueError("target: expected a dataset with a non-empty .train split")
    if objective is not None and memory is not None:
        raise ValueError("give objective= or memory=, not both")
    if objective is not None and not isinstance(objective, TargetObjective):
        raise TypeError(
            f"objective: {type(objective).__name__} lacks the objective interface "
            "(start_epoch, loss, update, state_dict, load_state_dict)"
        )
    return config


def config_for_target(config: TrainConfig, target: Any | None) -> TrainConfig:
    """``config`` without camera-style inputs when the target cannot give them (logged
    once by :func:`~semparts_reid.data.camstyle.camera_style_possible`)."""
    if (config.augment.camstyle and target is not None
            and not camera_style_possible(target.train)):
        return config.replace(camstyle=False)
    return config


def check_world_batches(config: TrainConfig, world: int) -> None:
    """Each global batch must split evenly across the ``world`` processes."""
    for name in ("batch_size", "target_batch_size"):
        value = getattr(config.optim, name)
        if value % world:
            raise ValueError(f"{name}={value} is not divisible by the {world} processes")


def probe_num_parts(model: nn.Module, input_size: tuple[int, int], device: torch.device) -> int:
    """K of the model (0 for a global-only model): its ``num_parts``, else from one tiny
    forward."""
    k = getattr(model, "num_parts", None)
    if isinstance(k, int):
        return k
    h, w = input_size
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, h, w, device=device))
    model.train(was)
    pf = out.part_feats
    return 0 if pf is None else int(pf.shape[1])


def make_objective(
    config: TrainConfig, objective: TargetObjective | None, memory: ExemplarMemory | None,
    target: Any | None, *, feat_dim: int, num_heads: int, device: torch.device,
) -> TargetObjective | None:
    """The trainer's target objective: ``objective`` as given, an
    :class:`ExemplarObjective` over a given ``memory``, or (with a target) the built-in
    one named by ``config.target_objective``; None without a target."""
    if memory is not None:
        return ExemplarObjective(
            memory=memory, neighbour_start_epoch=config.ecn.neighbour_start_epoch,
            head_reduction=config.parts.head_reduction,
            part_weight=config.parts.part_head_weight,
        )
    if objective is None and target is not None:
        return build_objective(config.target_objective, config, num_samples=len(target.train),
                               feat_dim=feat_dim, num_heads=num_heads, device=device,
                               constraints=video_constraints_for(target, config.video))
    return objective


def make_loggers(
    loggers: list[MetricsLogger] | None, output_dir: Path, config: TrainConfig
) -> list[MetricsLogger]:
    """``loggers`` as given, or the default: ``metrics.jsonl`` in ``output_dir`` (and
    TensorBoard with ``config.runtime.tensorboard``)."""
    if loggers is not None:
        return list(loggers)
    out: list[MetricsLogger] = [JsonLinesLogger(output_dir)]
    if config.runtime.tensorboard:
        out.append(TensorBoardLogger(output_dir / "tensorboard"))
    return out


def check_labels_once(
    model: nn.Module, source: Any, target: Any | None, objective: TargetObjective | None
) -> bool:
    """Check the source pids and the exemplar memory's slot count once, on the host, so
    the loop's steps need not read labels or indices back from the GPU. Returns whether
    the pids were checked (a model with ``num_classes``)."""
    nc = getattr(model, "num_classes", None)
    checked = isinstance(nc, int) and nc > 0
    if checked:
        check_pids(source.train, nc)  # type: ignore[arg-type]
    if target is not None and isinstance(objective, ExemplarObjective):
        mem = objective.memory
        if mem.num_samples < len(target.train):
            raise ValueError(f"the memory has {mem.num_samples} slots but the target has "
                             f"{len(target.train)} training images: expected one each")
        objective.check_indices = False  # the sampler's indices are < N
    return checked


def model_data_config(model: nn.Module, input_size: tuple[int, int]) -> dict[str, Any]:
    """The model's ``data_config`` (mean, std, ...) at ``input_size``."""
    dc = dict(getattr(model, "data_config", {}) or {})
    dc["input_size"] = tuple(input_size)
    return dc
