"""Layer 0 target-domain memories (pure tensor code, no I/O, no global state).

* :mod:`.exemplar`: :class:`ExemplarMemory` (ECN's exemplar / camera / neighbourhood
  invariance, one slot per target image and head) and its momentum schedules
  (:class:`LinearMomentum`, any ``MomentumSchedule`` callable ``epoch -> alpha``).
* :mod:`.cluster`: :class:`ClusterMemory` (one centroid per pseudo-identity and head,
  re-initialised from the clustered features each epoch; cluster-contrast's loss and
  momentum / hard updates).
* :mod:`.refine`: semantic-part refinement of cluster pseudo-labels
  (:func:`knn_agreement`, :func:`refined_global_targets`,
  :func:`agreement_smoothed_targets`), PPLR's idea with visibility-gated parts.
* :mod:`.gather`: :func:`all_gather_rows`, the all-gather the memories use so every rank
  applies the same update, and its :func:`world_size` probe.
"""

from __future__ import annotations

from .cluster import ClusterMemory
from .constraints import (
    NeighbourConstraint,
    VideoConstraints,
    constrain_cluster_labels,
    constrain_neighbours,
)
from .exemplar import ExemplarMemory, LinearMomentum, MomentumSchedule
from .gather import all_gather_rows, world_size
from .refine import agreement_smoothed_targets, knn_agreement, refined_global_targets

__all__ = [
    "ClusterMemory",
    "ExemplarMemory",
    "LinearMomentum",
    "MomentumSchedule",
    "NeighbourConstraint",
    "VideoConstraints",
    "agreement_smoothed_targets",
    "all_gather_rows",
    "constrain_cluster_labels",
    "constrain_neighbours",
    "knn_agreement",
    "refined_global_targets",
    "world_size",
]
