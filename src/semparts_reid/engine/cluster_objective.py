"""``ClusterObjective``: clustering-based target learning with semantic-part refinement.

Each adaptation epoch starts by re-clustering the target (cluster-contrast):

1. ``features()`` gives the current model's features of every target training image
   (global, head / upper / lower, visibility; gathered from all ranks under torchrun);
2. rank 0 computes the sparse k-reciprocal Jaccard distance of the global features and
   runs DBSCAN on it (:func:`~semparts_reid.engine.clustering.cluster_features`); the
   pseudo-labels (``-1``: outlier) are broadcast to every rank;
3. with part heads, rank 0 also scores how well each part's k-nearest-neighbour list
   agrees with the global one (:func:`~semparts_reid.memory.knn_agreement`, gated by
   visibility) and broadcasts the scores;
4. the :class:`~semparts_reid.memory.ClusterMemory` is re-initialised from the clustered
   features (one centroid bank per head; rank 0's bank is broadcast).

A step's loss is the cluster memory's ``-log softmax(f · Cᵀ / τ)`` per head; images
DBSCAN left as outliers give no loss (a batch of outliers gives an exact 0 with a graph)
and are not removed from the target sampler: the existing sampler draws every target
image, so a batch holds outliers in the proportion DBSCAN left. A P x K sampler over
pseudo-identities would use every image of a batch; it is not needed for correctness
and is left for later. With part heads, two switchable refinements (our semantic-part
version of PPLR, see :mod:`semparts_reid.memory.refine`):

* ``refine_global``: the global head's target is ``β onehot + (1-β) Σ_k w_k p_k``,
  ``p_k`` the part's prediction against its bank, ``w_k ∝ agreement_k x visibility_k``;
* ``part_smoothing``: part ``k``'s target is smoothed by ``1 - agreement_k`` (off by
  default: measured to cost accuracy on the synthetic domains, see
  ``docs/semantic_parts.md``).

Invisible parts neither vote nor get a loss. The state (labels, agreement, centroids)
is saved for exact resume; the trainer logs :meth:`ClusterObjective.epoch_metrics`
(clusters and outliers) with each epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from ..memory import (
    ClusterMemory,
    VideoConstraints,
    agreement_smoothed_targets,
    constrain_cluster_labels,
    knn_agreement,
    refined_global_targets,
)
from .clustering import ClusterSettings, cluster_counts, dbscan_labels
from .config import ClusterConfig, PartsConfig
from .distributed import broadcast_object, get_rank, is_distributed
from .losses import memory_heads, reduce_heads, stack_heads
from .objective_base import EpochState, FeatureProvider

__all__ = ["ClusterObjective"]

logger = logging.getLogger(__name__)

#: ``features (N, D) -> scipy sparse (N, N) distance`` (unstored pairs: distance 1)
DistanceFn = Callable[[Tensor], Any]


class ClusterObjective:
    """Cluster pseudo-labels + cluster memory as a target objective.

    Args:
        feat_dim: feature dimension ``D``.
        num_heads: ``1`` (global only) or ``1 + K`` (global + semantic parts).
        settings: DBSCAN / Jaccard settings (default: cluster-contrast's).
        temperature, momentum, hard: of the :class:`ClusterMemory`.
        refine_global: part-guided refinement of the global target (needs parts).
        part_smoothing: agreement-aware label smoothing of the part targets (PPLR's;
            default off, see the module docstring).
        beta: weight of the one-hot label in the refined global target (PPLR: 0.5).
        agreement_k: neighbours of the agreement score (PPLR: 20).
        head_reduction: ``"sum"`` or ``"mean"`` over the heads.
        part_weight: weight of each part head's loss next to the global head's 1
            (:func:`~.losses.reduce_heads`).
        dtype, device: of the centroid bank (and of the label look-up).
        progress: show a tqdm bar for the clustering (on rank 0).
        distance_fn: the sparse distance to cluster (default: the k-reciprocal Jaccard
            distance with ``settings.k1`` / ``k2``).
        memory: use this :class:`ClusterMemory` (gives ``feat_dim`` and ``num_heads``).
        constraints: a video target's must-links (tracklets) and cannot-links (crops of
            one frame): DBSCAN's labels are made to obey them each epoch
            (:func:`~semparts_reid.memory.constrain_cluster_labels`), and
            :meth:`epoch_metrics` reports how many links that added and removed.
    """

    name = "cluster"

    def __init__(
        self,
        feat_dim: int = 0,
        num_heads: int = 1,
        *,
        settings: ClusterSettings | None = None,
        temperature: float = 0.05,
        momentum: float = 0.1,
        hard: bool = False,
        refine_global: bool = True,
        part_smoothing: bool = False,
        beta: float = 0.5,
        agreement_k: int = 20,
        head_reduction: str = "sum",
        part_weight: float = 1.0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        progress: bool = False,
        distance_fn: DistanceFn | None = None,
        memory: ClusterMemory | None = None,
        constraints: VideoConstraints | None = None,
    ) -> None:
        if head_reduction not in ("sum", "mean"):
            raise ValueError(f"head_reduction must be 'sum' or 'mean', got {head_reduction!r}")
        if not (math.isfinite(part_weight) and part_weight >= 0):
            raise ValueError(f"part_weight={part_weight!r}: expected a finite value >= 0")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta={beta!r}: expected a value in [0, 1]")
        if agreement_k < 1:
            raise ValueError(f"agreement_k={agreement_k!r}: expected >= 1")
        self.memory = memory if memory is not None else ClusterMemory(
            feat_dim, num_heads=num_heads, temperature=temperature, momentum=momentum,
            hard=hard, dtype=dtype, device=device,
        )
        self.settings = settings if settings is not None else ClusterSettings()
        self.refine_global, self.part_smoothing = bool(refine_global), bool(part_smoothing)
        self.beta, self.agreement_k = float(beta), int(agreement_k)
        self.head_reduction = head_reduction
        self.part_weight = float(part_weight)
        self.progress = progress
        self.distance_fn = distance_fn
        self.constraints = constraints
        self.video_stats: dict[str, int] = {}
        dev = self.memory.device
        self.labels = torch.zeros(0, dtype=torch.long, device=dev)  # (N,), -1: outlier
        self.agreement = torch.zeros(0, self.num_parts, device=dev)  # (N, K)
        self.epoch = 0

    @classmethod
    def from_config(
        cls, cluster: ClusterConfig, parts: PartsConfig, *, feat_dim: int, num_heads: int,
        device: torch.device | str | None = None, progress: bool = False,
        constraints: VideoConstraints | None = None,
    ) -> ClusterObjective:
        """The objective of a config's ``cluster`` and ``parts`` groups
        (``cluster_images_per_identity`` given: the settings derived from it)."""
        ipi = cluster.cluster_images_per_identity
        settings = (
            ClusterSettings.for_identity_size(ipi) if ipi is not None else ClusterSettings(
                eps=cluster.cluster_eps, min_samples=cluster.cluster_min_samples,
                k1=cluster.cluster_k1, k2=cluster.cluster_k2,
            )
        )
        return cls(
            feat_dim, num_heads, settings=settings, temperature=cluster.cluster_temperature,
            momentum=cluster.cluster_momentum, hard=cluster.cluster_hard_update,
            refine_global=cluster.cluster_refine_global,
            part_smoothing=cluster.cluster_part_smoothing, beta=cluster.cluster_beta,
            agreement_k=cluster.cluster_agreement_k, head_reduction=parts.head_reduction,
            part_weight=parts.part_head_weight, device=device, progress=progress,
            constraints=constraints,
        )

    @property
    def num_parts(self) -> int:
        """K, the part heads of the memory (0: global only)."""
        return self.memory.num_heads - 1

    def __repr__(self) -> str:
        return (f"ClusterObjective({self.memory!r}, {self.settings!r}, refine_global="
                f"{self.refine_global}, part_smoothing={self.part_smoothing}, beta={self.beta})")

    # ------------------------------------------------------------------ epoch start
    def start_epoch(self, state: EpochState, features: FeatureProvider) -> None:
        """Extract, cluster (rank 0), broadcast labels and agreement, reset the bank."""
        self.epoch = int(state.epoch)
        split = features()  # every rank calls it: the extraction may be collective
        g, parts, vis = self._split_tensors(split)
        main = get_rank() == 0
        payload = self._cluster(g, parts, vis, state) if main else None
        labels_np, agree, self.video_stats = broadcast_object(payload)
        dev = self.memory.device
        self.labels = torch.as_tensor(labels_np, dtype=torch.long).to(dev)
        self.agreement = torch.as_tensor(agree, dtype=torch.float32).to(dev)
        heads = stack_heads(g, parts, self.num_parts > 0).to(dev)
        self.memory.reset(heads, self.labels, visibility=vis.to(dev) if self.num_parts else None)
        if is_distributed():  # index_add_ on a GPU is not bit-reproducible: take rank 0's
            dist.broadcast(self.memory.centroids, src=0)
        clusters, outliers = self.epoch_counts()
        logger.info("adapt epoch %d: %d clusters, %d outliers of %d target images",
                    self.epoch + 1, clusters, outliers, len(self.labels))

    def _split_tensors(self, split: Any) -> tuple[Tensor, Tensor, Tensor]:
        for name in ("global_feat", "part_feats", "visibility"):
            if not hasattr(split, name):
                raise TypeError(f"features() returned {type(split).__name__} without "
                                f"'{name}': expected a PartFeatures")
        g = torch.as_tensor(split.global_feat).float()
        parts = torch.as_tensor(split.part_feats).float()
        vis = torch.as_tensor(split.visibility).float()
        if g.dim() != 2 or g.shape[1] != self.memory.feat_dim:
            raise ValueError(f"target features of shape {tuple(g.shape)}: expected "
                             f"(N, {self.memory.feat_dim})")
        if self.num_parts and tuple(parts.shape[1:]) != (self.num_parts, self.memory.feat_dim):
            raise ValueError(
                f"target part features of shape {tuple(parts.shape)}: expected (N, "
                f"{self.num_parts}, {self.memory.feat_dim}); extract them with parts"
            )
        return g, parts, vis

    def _cluster(
        self, g: Tensor, parts: Tensor, vis: Tensor, state: EpochState
    ) -> tuple[np.ndarray, Tensor, dict[str, int]]:
        """Rank 0's work: pseudo-labels (made to obey the video constraints, if any),
        agreement scores and the constraints' counts."""
        labels, agree = self._dbscan_and_agreement(g, parts, vis, state)
        if self.constraints is None:
            return labels, agree, {}
        labels, stats = constrain_cluster_labels(labels, self.constraints)
        return labels, agree, {f"video_{k}": v for k, v in stats.as_dict().items()}

    def _dbscan_and_agreement(
        self, g: Tensor, parts: Tensor, vis: Tensor, state: EpochState
    ) -> tuple[np.ndarray, Tensor]:
        """DBSCAN's pseudo-labels and the parts' agreement scores (with a progress bar)."""
        from tqdm.auto import tqdm

        steps = ["jaccard distance", "dbscan"]
        agree_needed = self.num_parts > 0 and (self.refine_global or self.part_smoothing)
        steps += ["part agreement"] if agree_needed else []
        with tqdm(total=len(steps), desc=f"cluster {state.epoch + 1}", leave=False,
                  disable=not self.progress, dynamic_ncols=True) as bar:
            bar.set_postfix_str(steps[0])
            if self.distance_fn is not None:
                distance = self.distance_fn(g)
            else:
                from ..metrics.kreciprocal import jaccard_distance

                s = self.settings
                distance = jaccard_distance(g.to(self.memory.device), k1=s.k1, k2=s.k2,
                                            max_distance=s.eps)  # farther: not neighbours
            bar.update(1)
            bar.set_postfix_str(steps[1])
            labels = dbscan_labels(distance, eps=self.settings.eps,
                                   min_samples=self.settings.min_samples)
            bar.update(1)
            agree = torch.zeros(len(labels), self.num_parts)
            if agree_needed:
                bar.set_postfix_str(steps[2])
                dev = self.memory.device
                agree = knn_agreement(g.to(dev), parts.to(dev), vis.to(dev),
                                      k=self.agreement_k).cpu()
                bar.update(1)
        return labels, agree

    def epoch_counts(self) -> tuple[int, int]:
        """``(clusters, outliers)`` of the current pseudo-labels."""
        return cluster_counts(self.labels)

    def epoch_metrics(self) -> dict[str, Any]:
        """What the trainer adds to the epoch's record (``metrics.jsonl``)."""
        clusters, outliers = self.epoch_counts()
        return {"clusters": clusters, "outliers": outliers, **self.video_stats}

    # ------------------------------------------------------------------ steps
    def _heads(self, outputs: Mapping[str, Any]) -> tuple[Tensor, Tensor | None]:
        return memory_heads(outputs, self.memory.num_heads, self.num_parts > 0)

    def _labels(self, batch: Mapping[str, Any]) -> Tensor:
        if self.labels.numel() == 0:
            raise RuntimeError("ClusterObjective: no pseudo-labels yet; call start_epoch first")
        return self.labels[batch["index"].to(self.labels.device)]

    def targets(self, feats: Tensor, labels: Tensor, vis: Tensor | None,
                index: Tensor) -> Tensor | None:
        """``(H, B, C)`` soft targets of the batch (None: plain one-hot labels)."""
        c = self.memory.num_clusters
        if self.num_parts == 0 or c == 0 or not (self.refine_global or self.part_smoothing):
            return None
        with torch.no_grad():
            agree = self.agreement[index.to(self.agreement.device)].to(feats.device)
            y = labels.to(feats.device)
            t = torch.nn.functional.one_hot(y.clamp_min(0), c).float()
            t = t[None].repeat(self.memory.num_heads, 1, 1)  # (H, B, C)
            if self.refine_global:
                probs = torch.softmax(self.memory.logits(feats)[1:], dim=-1)  # (K, B, C)
                t[0] = refined_global_targets(y, probs.transpose(0, 1).to(feats.device), agree,
                                              vis, beta=self.beta)
            if self.part_smoothing:
                t[1:] = agreement_smoothed_targets(y, agree, c)
        return t

    def loss(self, outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> Tensor:
        """Cluster-memory loss of the target batch (outliers give none)."""
        feats, vis = self._heads(outputs)
        labels = self._labels(batch)
        t = self.targets(feats.detach(), labels, vis, batch["index"])
        per_head = self.memory.loss(feats, labels, visibility=vis, targets=t, reduction="none")
        return reduce_heads(per_head, part_weight=self.part_weight,
                            reduction=self.head_reduction)

    def update(self, outputs: Mapping[str, Any], batch: Mapping[str, Any]) -> None:
        """Momentum update of the batch's clusters (all-gathered under torch.distributed)."""
        feats, vis = self._heads(outputs)
        self.memory.update(feats.detach(), self._labels(batch), visibility=vis)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "epoch": self.epoch, "labels": self.labels.cpu().clone(),
            "agreement": self.agreement.cpu().clone(), "memory": self.memory.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"objective state is for {state.get('name')!r}, not {self.name!r}")
        for key in ("labels", "agreement", "memory"):
            if key not in state:
                raise KeyError(f"cluster objective state has no {key!r} entry")
        labels, agree = torch.as_tensor(state["labels"]), torch.as_tensor(state["agreement"])
        if agree.dim() != 2 or agree.shape != (labels.shape[0], self.num_parts):
            raise ValueError(f"agreement of shape {tuple(agree.shape)}: expected "
                             f"({labels.shape[0]}, {self.num_parts})")
        self.memory.load_state_dict(dict(state["memory"]))
        self.epoch = int(state.get("epoch", 0))
        self.labels = labels.to(device=self.memory.device, dtype=torch.long)
        self.agreement = agree.to(device=self.memory.device, dtype=torch.float32)
