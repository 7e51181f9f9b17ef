"""The target-objective interface: what the trainer drives, and what it hands over.

Its own module so that :mod:`.objectives` (the exemplar objective and
:func:`~.objectives.build_objective`) and :mod:`.cluster_objective` both import it
without importing each other.

Example:
    >>> EpochState(stage="adapt", epoch=2).world_size
    1
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

__all__ = ["EpochState", "FeatureProvider", "TargetObjective"]


@dataclass(frozen=True)
class EpochState:
    """What an objective may need to know at the start of an epoch.

    Attributes:
        stage: ``"adapt"`` (objectives only run in the adaptation stage).
        epoch: 0-based epoch of the stage about to run.
        global_step: optimiser steps taken so far.
        rank, world_size: this process and the number of processes.
    """

    stage: str
    epoch: int
    global_step: int = 0
    rank: int = 0
    world_size: int = 1


#: ``features()`` extracts the current target training features when called
FeatureProvider = Callable[[], Any]


@runtime_checkable
class TargetObjective(Protocol):
    """The interface the trainer drives (see :mod:`semparts_reid.engine.objectives`)."""

    def start_epoch(self, state: EpochState, features: FeatureProvider) -> None: ...

    def loss(self, outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor: ...

    def update(self, outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...
