"""Multi-process helpers: ``torchrun`` start-up, rank queries, gathers, seeding.

:func:`all_gather_rows` is :func:`semparts_reid.memory.gather.all_gather_rows` (one
implementation, re-exported here for the engine's callers).

``torchrun --nproc_per_node=N -m semparts_reid adapt …`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT``; :func:`init_distributed` reads them
and starts the process group (``nccl`` on CUDA, ``gloo`` on CPU). Without those
variables everything here degrades to single-process no-ops, so the trainer code is
the same in both cases.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..memory.gather import all_gather_rows

__all__ = [
    "all_gather_rows",
    "barrier",
    "broadcast_object",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "seed_everything",
]

logger = logging.getLogger(__name__)


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0: the only rank that writes checkpoints, logs and evaluates."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def init_distributed(device: str | torch.device = "auto") -> torch.device:
    """Start the process group from ``torchrun``'s environment, if present.

    Args:
        device: ``"auto"`` / ``"cpu"`` / ``"cuda"``: the device type to train on. On
            CUDA each process takes ``cuda:LOCAL_RANK``.

    Returns:
        The device this process should use.
    """
    want_cuda = (str(device) == "auto" and torch.cuda.is_available()) or str(device).startswith(
        "cuda"
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or is_distributed():
        if want_cuda and is_distributed():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if str(device) == "auto":
            return torch.device("cuda" if want_cuda else "cpu")
        return torch.device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if want_cuda else "gloo"
    if want_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    logger.info("process group: backend=%s rank=%d world=%d", backend, get_rank(), world)
    return torch.device("cuda", local_rank) if want_cuda else torch.device("cpu")


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Send a picklable object from rank ``src`` to every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy and torch (CPU and CUDA) with ``seed``.

    Any int works: numpy gets ``seed mod 2**32``, torch ``seed mod 2**64`` (so
    ``config.seed + rank`` near ``2**64`` does not overflow).
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed % 2**64)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed % 2**64)
