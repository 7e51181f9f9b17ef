"""What a training checkpoint holds, and putting it back (see ``docs/architecture.md``).

:func:`training_state` collects the model payload (``arch``, ``model_kwargs``,
``data_config``, weights), the optimiser, scheduler and gradient-scaler states, the
target objective's state, the RNG states and the progress counters;
:func:`restore_objective` puts an objective's state back with an error that names the
file when it does not fit.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from .checkpoint import capture_rng_state, model_payload
from .config import TrainConfig
from .objectives import TargetObjective

__all__ = ["final_state", "restore_objective", "training_state"]


def training_state(
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    objective: TargetObjective | None,
    config: TrainConfig,
    world: int,
    stage: str,
    epoch: int,
    global_step: int,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """The full training state as one checkpoint dict (RNG states captured now)."""
    payload = model_payload(model)
    payload.update(
        {
            "optimizer": optimizer.state_dict() if optimizer else None,
            "scheduler": scheduler.state_dict() if scheduler else None,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "objective": objective.state_dict() if objective is not None else None,
            "sampler": {"seed": config.seed, "world": world},
            "rng": capture_rng_state(),
            "stage": stage,
            "epoch": epoch,
            "global_step": global_step,
            "config": config.to_dict(),
            "history": json.loads(json.dumps(history, default=float)),
        }
    )
    return payload


def final_state(
    model: nn.Module,
    *,
    config: TrainConfig,
    stage: str,
    epoch: int,
    global_step: int,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """A *final* checkpoint: what a user ships, not what a run resumes from.

    The model payload (format, ``arch``, ``model_kwargs``, ``data_config``, weights) plus
    the config and the progress counters, and ``"final": True``; no optimiser, scheduler,
    scaler, objective (memory) or RNG state, which are what make ``last.pt`` three times
    larger. Everything that reads a checkpoint's model (``load_model_from_checkpoint``,
    ``TrackerEmbedder``, ``export``, ``evaluate``, ``--init``) reads both kinds.
    """
    payload = model_payload(model)
    payload.update(
        {
            "final": True,
            "stage": stage,
            "epoch": epoch,
            "global_step": global_step,
            "config": config.to_dict(),
            "history": json.loads(json.dumps(history, default=float)),
        }
    )
    return payload


def restore_objective(
    objective: TargetObjective | None, ckpt: dict[str, Any], path: str | os.PathLike[str]
) -> None:
    """Load the checkpoint's objective state (``"objective"``, or ``"memory"`` as
    written before the objective interface) into ``objective``.

    Raises:
        InputError: the checkpoint holds a state but there is no objective, or the state
            does not fit it (the message names ``path``).
    """
    state = ckpt.get("objective", ckpt.get("memory"))
    if state is None:
        return
    if objective is None:
        raise InputError(f"{path} holds a target objective but the trainer has no target")
    try:
        objective.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise InputError(
            f"{path}: its target objective state does not fit {type(objective).__name__} ({exc})"
        ) from exc
