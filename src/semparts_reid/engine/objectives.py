"""Target objectives: how the unlabeled target domain is learned.

The trainer does not know ECN or clustering. It holds one object with this interface
(:class:`TargetObjective`) and calls, per adaptation epoch and step:

* ``start_epoch(state, features)`` once before the epoch's first step. ``state`` is an
  :class:`EpochState`; ``features()`` extracts the current target training features
  (a :class:`~semparts_reid.inference.PartFeatures`) and is only paid for when called,
  so an objective that re-clusters calls it and the exemplar memory does not;
* ``loss(outputs, batch)`` the target loss of a step, from the target outputs (the
  dict of ``ReIDOutput`` fields the step's forward returns) and the target batch dict
  (``image``, ``index``, ...);
* ``update(outputs, batch)`` after the optimiser step (memory updates; no gradient);
* ``state_dict()`` / ``load_state_dict(state)`` for exact resume.

:class:`ExemplarObjective` (ECN's exemplar memory: exemplar, camera and neighbourhood
invariance, per head) and :class:`~semparts_reid.engine.cluster_objective.ClusterObjective`
(DBSCAN pseudo-identities, a cluster memory and semantic-part label refinement) are the
built-in ones; :func:`build_objective` builds one by the name in
``TrainConfig.target_objective`` (``"ecn"`` or ``"cluster"``). An objective may also
have ``epoch_metrics() -> dict``: the trainer adds it to each adaptation epoch's record.
A user can pass any object with the interface to ``DomainAdaptTrainer(...,
objective=...)``.

Example:
    >>> import torch
    >>> obj = ExemplarObjective(num_samples=10, feat_dim=4, num_heads=1)
    >>> obj.start_epoch(EpochState(stage="adapt", epoch=0), lambda: None)
    >>> out = {"global_feat": torch.randn(2, 4, requires_grad=True),
    ...        "part_feats": torch.zeros(2, 0, 4), "visibility": torch.zeros(2, 0)}
    >>> batch = {"index": torch.tensor([3, 7])}
    >>> loss = obj.loss(out, batch); loss.backward(); obj.update(out, batch)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..memory import ExemplarMemory, LinearMomentum, NeighbourConstraint, VideoConstraints
from .config import OBJECTIVES, EcnConfig, PartsConfig, TrainConfig
from .losses import memory_heads, reduce_heads
from .objective_base import EpochState, FeatureProvider, TargetObjective

__all__ = [
    "OBJECTIVES",
    "EpochState",
    "ExemplarObjective",
    "TargetObjective",
    "build_objective",
]



class ExemplarObjective:
    """ECN's exemplar memory as a target objective.

    Every target training image is its own class; the loss is the exemplar-memory
    cross-entropy with camera-style inputs and, from ``neighbour_start_epoch`` on,
    neighbourhood invariance (:class:`~semparts_reid.memory.ExemplarMemory`). With
    ``num_heads = 1 + K`` the global and the K part features each have a memory;
    invisible parts give no loss and no update. The memory is emptied at the start of
    adaptation (epoch 0), as in ECN.

    Args:
        num_samples: target training images.
        feat_dim: feature dimension ``D``.
        num_heads: ``1`` (global only) or ``1 + K`` (global + parts).
        temperature, knn: ``beta`` and ``k`` of ECN.
        momentum: ``alpha = momentum x epoch``.
        neighbour_start_epoch: first (0-based) epoch with neighbourhood invariance.
        head_reduction: ``"sum"`` or ``"mean"`` over the heads.
        part_weight: weight of each part head's loss next to the global head's 1
            (:func:`~.losses.reduce_heads`).
        dtype: storage dtype of the memory slots.
        device: where the memory lives.
        memory: use this :class:`ExemplarMemory` instead of building one (its shape
            gives ``num_samples``, ``feat_dim`` and ``num_heads``).

    Attributes:
        check_indices: check every batch's ``index`` range in :meth:`loss` and
            :meth:`update` (default True). The trainer turns it off for the objective it
            builds: its indices come from a sampler over the target images, and the
            check would cost a GPU synchronisation per step.
    """

    name = "ecn"

    def __init__(
        self,
        num_samples: int = 0,
        feat_dim: int = 0,
        num_heads: int = 1,
        *,
        temperature: float = 0.05,
        knn: int = 6,
        momentum: float = 0.01,
        neighbour_start_epoch: int = 5,
        head_reduction: str = "sum",
        part_weight: float = 1.0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        memory: ExemplarMemory | None = None,
        constraints: VideoConstraints | None = None,
        tracklet_weight: float | None = None,
    ) -> None:
        if head_reduction not in ("sum", "mean"):
            raise ValueError(f"head_reduction must be 'sum' or 'mean', got {head_reduction!r}")
        if not (math.isfinite(part_weight) and part_weight >= 0):
            raise ValueError(f"part_weight={part_weight!r}: expected a finite value >= 0")
        if neighbour_start_epoch < 0:
            raise ValueError(f"neighbour_start_epoch must be >= 0, got {neighbour_start_epoch}")
        self.memory = memory if memory is not None else ExemplarMemory(
            num_samples, feat_dim, num_heads=num_heads, temperature=temperature, knn=knn,
            momentum_schedule=LinearMomentum(step=momentum), dtype=dtype, device=device,
        )
        self.neighbour_start_epoch = int(neighbour_start_epoch)
        self.head_reduction = head_reduction
        self.part_weight = float(part_weight)
        self.epoch = 0
        self.check_indices = True
        self.constraints = constraints
        # video links: tracklet mates from the first epoch (k = 0), the k nearest allowed
        # slots added from neighbour_start_epoch, as ECN's neighbourhood
        self._links = None if constraints is None else (
            NeighbourConstraint(constraints, 0, tracklet_weight=tracklet_weight),
            NeighbourConstraint(constraints, self.memory.knn, tracklet_weight=tracklet_weight),
        )

    @classmethod
    def from_config(
        cls, ecn: EcnConfig, parts: PartsConfig, *, num_samples: int, feat_dim: int,
        num_heads: int, device: torch.device | str | None = None,
        constraints: VideoConstraints | None = None, tracklet_weight: float | None = None,
    ) -> ExemplarObjective:
        """The objective of a config's ``ecn`` and ``parts`` groups (and a video
        target's ``constraints``, see :class:`~semparts_reid.memory.VideoConstraints`)."""
        return cls(
            num_samples, feat_dim, num_heads, temperature=ecn.memory_temperature,
            knn=ecn.memory_knn, momentum=ecn.memory_momentum,
            neighbour_start_epoch=ecn.neighbour_start_epoch,
            head_reduction=parts.head_reduction, part_weight=parts.part_head_weight,
            dtype=torch.bfloat16 if ecn.memory_dtype == "bfloat16" else torch.float32,
            device=device, constraints=constraints, tracklet_weight=tracklet_weight,
        )

    @property
    def uses_parts(self) -> bool:
        """Whether the memory has part heads (``num_heads > 1``)."""
        return self.memory.num_heads > 1

    def __repr__(self) -> str:
        return (f"ExemplarObjective({self.memory!r}, neighbour_start_epoch="
                f"{self.neighbour_start_epoch}, head_reduction={self.head_reduction!r}, "
                f"part_weight={self.part_weight!r})")

    def start_epoch(self, state: EpochState, features: FeatureProvider) -> None:
        """Remember the epoch (momentum, neighbours); empty the memory at epoch 0."""
        self.epoch = int(state.epoch)
        if state.epoch == 0:
            self.memory.slots.zero_()

    def _heads(self, outputs: Mapping[str, Any]) -> tuple[Tensor, Tensor | None]:
        return memory_heads(outputs, self.memory.num_heads, self.uses_parts)

    def loss(self, outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        """Exemplar-memory loss of the target batch (before the memory update)."""
        feats, vis = self._heads(outputs)
        neighbours = self.epoch >= self.neighbour_start_epoch
        weights = None
        if self._links is not None:  # tracklet mates always, nearest slots from the start
            weights, neighbours = self._links[int(neighbours)], True
        per_head = self.memory.loss(
            feats, batch["index"], neighbours=neighbours, visibility=vis, reduction="none",
            check_indices=self.check_indices, neighbour_weights=weights,
        )
        return reduce_heads(per_head, part_weight=self.part_weight,
                            reduction=self.head_reduction)

    def epoch_metrics(self) -> dict[str, Any]:
        """The epoch's video links (with constraints): neighbour links the tracklets
        added and the same-frame ones removed, summed over the epoch's steps."""
        if self._links is None:
            return {}
        totals: dict[str, int] = {}
        for fn in self._links:
            for key, value in fn.pop_stats().items():
                totals[key] = totals.get(key, 0) + value
        return {f"video_{key}": value for key, value in totals.items()}

    def update(self, outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> None:
        """Momentum update of the batch's slots (all-gathered under torch.distributed)."""
        feats, vis = self._heads(outputs)
        self.memory.update(feats.detach(), batch["index"], epoch=self.epoch, visibility=vis,
                           check_indices=self.check_indices)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "epoch": self.epoch, "memory": self.memory.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "memory" not in state:  # a bare ExemplarMemory state (older checkpoints)
            self.memory.load_state_dict(dict(state))
            return
        if state.get("name", self.name) != self.name:
            raise ValueError(f"objective state is for {state.get('name')!r}, not {self.name!r}")
        self.epoch = int(state.get("epoch", 0))
        self.memory.load_state_dict(dict(state["memory"]))


def build_objective(
    name: str, config: TrainConfig, *, num_samples: int, feat_dim: int, num_heads: int,
    device: torch.device | str | None = None, constraints: VideoConstraints | None = None,
) -> TargetObjective:
    """The built-in objective ``name`` (one of :data:`OBJECTIVES`) set up from the groups
    of a :class:`~semparts_reid.engine.config.TrainConfig` that it reads: ``ecn`` or
    ``cluster``, ``parts`` (how the heads' losses combine) and ``video``; ``constraints``:
    a video target's must-links and cannot-links (see :mod:`.video_links`)."""
    if name == "ecn":
        return ExemplarObjective.from_config(
            config.ecn, config.parts, num_samples=num_samples, feat_dim=feat_dim,
            num_heads=num_heads, device=device, constraints=constraints,
            tracklet_weight=config.video.tracklet_weight,
        )
    if name == "cluster":
        from .cluster_objective import ClusterObjective

        return ClusterObjective.from_config(
            config.cluster, config.parts, feat_dim=feat_dim, num_heads=num_heads,
            device=device, progress=config.runtime.progress, constraints=constraints,
        )
    raise ValueError(f"unknown target objective {name!r}; built in: {', '.join(OBJECTIVES)}")
