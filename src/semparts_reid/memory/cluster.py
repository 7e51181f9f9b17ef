"""Cluster memory for clustering-based target-domain learning (cluster-contrast, per head).

:class:`ClusterMemory` holds one L2-normalised centroid per pseudo-identity (cluster)
and **per head** (the global feature, optionally plus the head / upper / lower part
features, each its own centroid bank over the same clusters):

* ``reset(features, labels)`` re-initialises the bank at the start of an epoch from
  the clustered features: ``C[h, c] = normalize(mean_{i: y_i = c} normalize(f_i^h))``
  over the members visible in head ``h``; outliers (``y_i = -1``) take no part;
* logits ``z = normalize(f) · Cᵀ / τ`` with ``τ = 0.05`` (``temperature``); the loss
  is ``-log softmax(z)_y`` (or ``-Σ_c t_c log softmax(z)_c`` for given soft targets
  ``t``), averaged per head over the samples that have a cluster and are visible in
  that head;
* update after the loss, per cluster ``c`` present in the (global) batch:
  ``C[h, c] <- m C[h, c] + (1-m) x``, then ``C[h, c] /= ||C[h, c]||``, with
  ``m = 0.1`` (``momentum``: the weight of the old centroid, cluster-contrast's
  convention) and ``x`` the mean of the batch's normalised members of ``c``
  (default) or, with ``hard=True``, the member **least** similar to ``C[h, c]``
  (cluster-contrast's hard update). Cluster-contrast applies the default update one
  sample at a time; here a cluster's batch members are averaged first, so the update
  is vectorised and independent of the order of the batch (and of the ranks).

Part heads: a sample whose part is invisible (``visibility == 0``) gives no loss, no
update and no contribution to the centroid of that head.

Distributed: under an initialised :mod:`torch.distributed` process group,
:meth:`ClusterMemory.update` all-gathers features, labels and visibility of every rank
first (:func:`~semparts_reid.memory.gather.all_gather_rows`), so all replicas apply the
same update; the loss uses the local features only. The bank is a plain tensor, neither
an ``nn.Parameter`` nor a module buffer.

Example:
    >>> import torch
    >>> mem = ClusterMemory(16, num_heads=4)
    >>> feats = torch.randn(10, 4, 16)
    >>> labels = torch.tensor([0, 0, 1, 1, 2, 2, -1, 0, 1, 2])
    >>> mem.reset(feats, labels)
    >>> mem.centroids.shape
    torch.Size([4, 3, 16])
    >>> batch = torch.randn(4, 4, 16, requires_grad=True)
    >>> y, vis = torch.tensor([0, 2, -1, 1]), torch.ones(4, 3)
    >>> loss = mem.loss(batch, y, visibility=vis)
    >>> loss.backward()
    >>> mem.update(batch.detach(), y, visibility=vis)
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ._bank import EPS, HeadBank
from ._unique import unique_padded
from .gather import all_gather_rows

__all__ = ["ClusterMemory"]

_RESET_CHUNK = 8192  # rows normalised at a time in reset()


class ClusterMemory(HeadBank):
    """Per-head cluster centroids with a temperature-scaled softmax loss.

    Args:
        feat_dim: ``D``, the feature dimension.
        num_heads: ``H``: 1 for the global feature only; ``1 + K`` for global + parts.
        temperature: ``τ`` in ``z = f·Cᵀ / τ`` (cluster-contrast: 0.05).
        momentum: ``m``, the weight of the old centroid in an update (0.1).
        hard: update each cluster with its least similar batch member instead of the
            mean of its batch members.
        dtype: storage dtype of the centroids (float32, bfloat16 or float16).
        device: device of the centroids.

    Attributes:
        centroids: ``(H, C, D)`` tensor; rows are unit vectors (zero for a cluster with
            no visible member in that head). ``C = 0`` until :meth:`reset`.
    """

    _bank_attr = "centroids"

    def __init__(
        self,
        feat_dim: int,
        *,
        num_heads: int = 1,
        temperature: float = 0.05,
        momentum: float = 0.1,
        hard: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(feat_dim, bool) or not isinstance(feat_dim, int) or feat_dim < 1:
            raise ValueError(f"feat_dim={feat_dim!r}: expected an int >= 1")
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"num_heads={num_heads!r}: expected an int >= 1")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature={temperature!r}: expected a finite value > 0")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum={momentum!r}: expected a value in [0, 1]")
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"dtype={dtype}: expected torch.float32, bfloat16 or float16")
        self.feat_dim = feat_dim
        self.num_heads = num_heads
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.hard = bool(hard)
        self.centroids = torch.zeros(num_heads, 0, feat_dim, dtype=dtype, device=device)

    # ------------------------------------------------------------------ helpers
    @property
    def num_clusters(self) -> int:
        """``C``, the number of clusters of the current bank."""
        return int(self.centroids.shape[1])

    def __repr__(self) -> str:
        return (
            f"ClusterMemory(feat_dim={self.feat_dim}, num_heads={self.num_heads}, "
            f"num_clusters={self.num_clusters}, temperature={self.temperature}, "
            f"momentum={self.momentum}, hard={self.hard}, dtype={self.dtype})"
        )

    def _check(
        self, features: torch.Tensor, labels: torch.Tensor, visibility: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validate; return features (B, H, D), labels (B,) long, weights (B, H) float
        (1 where the sample has a cluster and is visible in the head, else 0)."""
        features = self._heads(features)
        b = features.shape[0]
        labels = self._long_rows(labels, "labels", b, features.device, " (-1 for an outlier)")
        w = (labels >= 0).to(torch.float32)[:, None].expand(b, self.num_heads)
        if visibility is not None:
            w = w * self._visible(visibility, b, features.device, "(parts only)")
        return features, labels, w

    # ------------------------------------------------------------------ reset
    @torch.no_grad()
    def reset(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        *,
        visibility: torch.Tensor | None = None,
        num_clusters: int | None = None,
    ) -> None:
        """Rebuild the bank from clustered features (at the start of an epoch).

        Args:
            features: ``(N, H, D)`` (or ``(N, D)`` with one head) features of the
                clustered images; normalised here.
            labels: ``(N,)`` cluster of each image in ``[0, C)``, ``-1`` for an outlier.
            visibility: optional ``(N, H)`` or ``(N, H-1)`` (parts only); images
                invisible in a head do not contribute to its centroids.
            num_clusters: ``C`` (default ``labels.max() + 1``).

        Raises:
            ValueError: labels below -1 or not below ``num_clusters``.
        """
        feats, lab, w = self._check(features, labels, visibility)
        top = int(lab.max()) + 1 if lab.numel() else 0
        c = top if num_clusters is None else int(num_clusters)
        if lab.numel() and (int(lab.min()) < -1 or top > c):
            raise ValueError(
                f"labels in [{int(lab.min())}, {top - 1}]: expected values in [-1, {c - 1}]"
            )
        sums = torch.zeros(c, self.num_heads, self.feat_dim, device=feats.device)
        for start in range(0, lab.numel(), _RESET_CHUNK):  # bounded copies of (N, H, D)
            sl = slice(start, start + _RESET_CHUNK)
            f = F.normalize(feats[sl].float(), dim=-1) * w[sl, :, None]  # 0 where unused
            sums.index_add_(0, lab[sl].clamp_min(0), f)
        bank = F.normalize(sums, dim=-1, eps=EPS).transpose(0, 1)  # (H, C, D); 0 if empty
        self.centroids = bank.to(device=self.device, dtype=self.dtype).contiguous()

    # ------------------------------------------------------------------ loss
    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """``z = normalize(f) · Cᵀ / τ``: ``(B, H, D)`` (or ``(B, D)``) -> ``(H, B, C)``
        float32, differentiable w.r.t. ``features``."""
        return self._logits(features)

    def loss(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        *,
        visibility: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        reduction: Literal["sum", "mean", "none"] = "sum",
    ) -> torch.Tensor:
        """Cross-entropy of the batch against the centroids (before the update).

        Args:
            features: ``(B, H, D)`` (or ``(B, D)`` with one head); normalised here.
            labels: ``(B,)`` cluster of each image, ``-1`` for an outlier (no loss).
            visibility: optional ``(B, H)`` or ``(B, H-1)`` (parts only; the global
                head is then always visible); invisible entries give no loss.
            targets: optional ``(H, B, C)`` soft targets (rows summing to 1) used instead
                of the one-hot ``labels`` (which still decide who has a loss).
            reduction: ``"sum"`` over heads, ``"mean"`` over heads, or ``"none"`` for the
                ``(H,)`` per-head losses. Each per-head loss is the mean over the samples
                with a cluster visible in that head (an exact 0, with a graph, if none).

        Returns:
            A scalar (or ``(H,)``) float32 loss.
        """
        self._check_reduction(reduction)
        feats, lab, w = self._check(features, labels, visibility)
        b, h, c = feats.shape[0], self.num_heads, self.num_clusters
        if c == 0:  # no cluster this epoch: nothing to learn, but keep the graph
            per_head = feats.float().sum(dim=(0, 2)) * 0.0
        else:
            logp = torch.log_softmax(self.logits(feats), dim=-1)  # (H, B, C)
            if targets is None:
                own = lab.clamp_min(0).to(logp.device).view(1, b, 1).expand(h, b, 1)
                per = -logp.gather(2, own).squeeze(2)  # (H, B)
            else:
                if targets.shape != (h, b, c):
                    raise ValueError(
                        f"targets of shape {tuple(targets.shape)}: expected ({h}, {b}, {c})"
                    )
                per = -(targets.to(logp) * logp).sum(-1)
            per_head = self._head_means(per, w)
        return self._reduce_heads(per_head, reduction)

    # ------------------------------------------------------------------ update
    @torch.no_grad()
    def update(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        *,
        visibility: torch.Tensor | None = None,
    ) -> None:
        """Move the centroids of the batch's clusters toward their members, re-normalise.

        Outliers and invisible entries are skipped. Without a process group the update
        reads nothing back to the host (no GPU synchronisation); under
        :mod:`torch.distributed` the batches of all ranks are gathered first.

        Args:
            features: ``(B, H, D)`` (or ``(B, D)``); detached and normalised here.
            labels: ``(B,)`` clusters, ``-1`` for an outlier.
            visibility: optional ``(B, H)`` or ``(B, H-1)``, as in :meth:`loss`.
        """
        feats, lab, w = self._check(features.detach(), labels, visibility)
        f = F.normalize(feats.float(), dim=-1).to(self.device)  # (B, H, D)
        lab, w = lab.to(self.device), w.to(self.device)
        f, lab, w = all_gather_rows(f), all_gather_rows(lab), all_gather_rows(w)
        b = lab.numel()
        if b == 0 or self.num_clusters == 0:
            return
        uniq, inv, count = unique_padded(lab.clamp_min(0))  # (B,), (B,), ()
        old = self.centroids[:, uniq].float()  # (H, B, D): group g's current centroid
        if self.hard:
            x, cnt = self._hardest(f, w, inv, old)
        else:
            x, cnt = self._group_means(f, w, inv)  # (H, B, D), (B, H)
        self._momentum_write(uniq, count, old, x, cnt, self.momentum)

    def _hardest(
        self, f: torch.Tensor, w: torch.Tensor, inv: torch.Tensor, old: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per group and head, the used member least similar to the group's centroid
        (the first in batch order on ties). Returns ``x (H, B, D)`` and counts ``(B, H)``."""
        b, h = f.shape[0], self.num_heads
        ft = f.transpose(0, 1)  # (H, B, D)
        sim = (ft * old[:, inv]).sum(-1)  # (H, B): each sample vs its cluster's centroid
        used = w.t() > 0  # (H, B)
        sim = torch.where(used, sim, torch.full_like(sim, math.inf))
        grp = inv.view(1, b).expand(h, b)
        low = sim.new_full((h, b), math.inf).scatter_reduce(1, grp, sim, "amin")
        rows = torch.arange(b, device=f.device).view(1, b).expand(h, b)
        cand = torch.where(used & (sim == low.gather(1, grp)), rows, torch.full_like(rows, b))
        win = torch.full_like(rows, b).scatter_reduce(1, grp, cand, "amin")  # (H, B)
        x = ft.gather(1, win.clamp_max(b - 1)[..., None].expand(h, b, self.feat_dim))
        cnt = w.new_zeros(b, h).index_add_(0, inv, w)
        return x, cnt

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The bank and the hyper-parameters that shape it."""
        return {
            "centroids": self.centroids.detach().clone(),
            "feat_dim": self.feat_dim,
            "num_heads": self.num_heads,
            "temperature": self.temperature,
            "momentum": self.momentum,
            "hard": self.hard,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`. The number of clusters may differ from the current
        bank's (it changes every epoch); heads and feature dimension must match.

        Raises:
            KeyError: ``state`` has no ``"centroids"``.
            ValueError: the stored bank is not ``(H, C, D)`` with this memory's H and D.
        """
        if "centroids" not in state:
            raise KeyError("cluster memory state has no 'centroids' entry")
        bank = state["centroids"]
        if (
            not isinstance(bank, torch.Tensor)
            or bank.dim() != 3
            or bank.shape[0] != self.num_heads
            or bank.shape[2] != self.feat_dim
        ):
            shape = tuple(bank.shape) if isinstance(bank, torch.Tensor) else type(bank)
            raise ValueError(
                f"cluster memory centroids of shape {shape}: expected ({self.num_heads}, C, "
                f"{self.feat_dim}) (heads, clusters, feat_dim)"
            )
        self.centroids = bank.to(device=self.device, dtype=self.dtype).clone()
        self.temperature = float(state.get("temperature", self.temperature))
        self.momentum = float(state.get("momentum", self.momentum))
        self.hard = bool(state.get("hard", self.hard))
