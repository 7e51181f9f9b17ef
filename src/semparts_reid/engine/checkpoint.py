"""Checkpoint files: atomic writes, RNG capture/restore, ``weights_only``-safe contents.

A checkpoint is a ``torch.save``-d dict in the format of ``docs/architecture.md``::

    {"format": "semparts-reid/1", "arch": str, "model_kwargs": dict, "data_config": dict,
     "model": state_dict,
     # added by the trainer:
     "optimizer": ..., "scheduler": ..., "memory": ..., "rng": ..., "epoch": int,
     "stage": "source" | "adapt", "config": dict, ...}

Everything in it is a tensor or a plain Python container / scalar, so it loads with
``torch.load(..., weights_only=True)`` (the numpy RNG state is stored as a tensor, not
as an ``ndarray``).
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._io import atomic_open
from ..errors import InputError, InputNotFoundError

__all__ = [
    "CHECKPOINT_FORMAT",
    "capture_rng_state",
    "load_training_checkpoint",
    "model_payload",
    "restore_rng_state",
    "save_checkpoint",
    "unwrap_model",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "semparts-reid/1"


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside DDP / DataParallel / ``torch.compile`` wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def model_payload(model: nn.Module) -> dict[str, Any]:
    """The model part of a checkpoint: format, arch, model_kwargs, data_config, model.

    ``arch`` / ``build_kwargs`` / ``data_config`` are read from the model when it has
    them (every :func:`~semparts_reid.models.factory.build_model` model does).
    """
    net = unwrap_model(model)
    data_config = dict(getattr(net, "data_config", {}) or {})
    for key, value in list(data_config.items()):
        if isinstance(value, tuple):
            data_config[key] = list(value)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return {
        "format": CHECKPOINT_FORMAT,
        "arch": str(getattr(net, "arch", type(net).__name__)),
        "model_kwargs": dict(getattr(net, "build_kwargs", {}) or {}),
        "data_config": data_config,
        "model": state,
    }


def capture_rng_state() -> dict[str, Any]:
    """RNG states of python ``random``, numpy's global generator, torch CPU and CUDA."""
    np_state = np.random.get_state(legacy=False)
    assert isinstance(np_state, dict)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": str(np_state["bit_generator"]),
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`capture_rng_state` output (missing entries are left alone)."""
    if "python" in state:
        py = state["python"]
        # weights_only loading turns the inner tuple into a list
        random.setstate((py[0], tuple(py[1]), py[2]))
    if "numpy" in state:
        ns = state["numpy"]
        np.random.set_state(
            {
                "bit_generator": ns["bit_generator"],
                "state": {"key": ns["key"].numpy().astype(np.uint32), "pos": int(ns["pos"])},
                "has_gauss": int(ns["has_gauss"]),
                "gauss": float(ns["gauss"]),
            }
        )
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        states = state["cuda"]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
        else:
            logger.warning(
                "checkpoint has %d CUDA RNG states, this machine %d devices: not restored",
                len(states), torch.cuda.device_count(),
            )


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``payload`` to ``path`` atomically (temp file + ``os.replace``)."""
    if not isinstance(payload, dict) or "model" not in payload:
        raise ValueError("payload: expected a dict with at least a 'model' entry")
    target = Path(path)
    with atomic_open(target, "wb") as handle:
        torch.save(payload, handle)
    return target


def load_training_checkpoint(
    path: str | os.PathLike[str],
    *,
    map_location: str | torch.device = "cpu",
    weights_only: bool = True,
) -> dict[str, Any]:
    """Load a training checkpoint dict written by :func:`save_checkpoint`.

    The file must hold a dict with a ``"model"`` entry and, if it names one, this
    checkpoint format. To read any weights file (a plain state dict, a registry name, a
    URL), use :func:`semparts_reid.hub.load_weights_file`.

    Raises:
        InputNotFoundError: ``path`` does not exist (a ``FileNotFoundError``).
        InputError: the file is not a semparts-reid checkpoint dict (a ``ValueError``).
    """
    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"checkpoint not found: {p}")
    try:
        data = torch.load(p, map_location=map_location, weights_only=weights_only)
    except Exception as exc:  # pickle / zip errors come in many types
        raise InputError(f"{p} is not a readable checkpoint ({exc})") from exc
    if not isinstance(data, dict) or "model" not in data:
        raise InputError(f"{p} is not a semparts-reid checkpoint: expected a dict with 'model'")
    fmt = data.get("format")
    if fmt is not None and fmt != CHECKPOINT_FORMAT:
        raise InputError(f"{p}: checkpoint format {fmt!r}, expected {CHECKPOINT_FORMAT!r}")
    return data
