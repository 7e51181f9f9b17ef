"""Exemplar memory for unsupervised target-domain learning (ECN, extended to parts).

:class:`ExemplarMemory` follows ECN (Zhong et al., "Invariance Matters: Exemplar Memory
for Domain Adaptive Person Re-identification", CVPR 2019) and extends it to several
heads (the global feature plus the head / upper / lower part features):

* one slot per target training image **and per head**: a tensor ``slots`` of shape
  ``(heads, N, D)``, rows L2-normalised (zero until first written, as in ECN);
* logits ``z = f · Kᵀ / β`` with ``β = 0.05`` (``temperature``), computed against the
  memory **before** this step's update;
* *exemplar invariance*: cross-entropy with the image's own slot as the label;
* *camera invariance*: the same loss on camera-style versions of an image, which keep
  the original slot index (the caller passes those features with the same indices);
* *neighbourhood invariance* (``neighbours=True``; ECN switches it on from epoch 5):
  the ``k`` slots most similar to ``f`` get weight ``1/k``, the image's own slot
  weight ``1`` (it overrides its ``1/k`` when it is among the ``k``), and the loss is
  ``-Σ_j w_j log softmax(z)_j``. The weights are **not** re-normalised (ECN's code
  scatters ``softmax(ones(k)) = 1/k`` and then writes ``1`` at the own slot), so
  they sum to ``1 + (k-1)/k`` when the own slot is among the ``k`` nearest and to
  ``2`` otherwise;
* update after the loss: ``K[i] <- α K[i] + (1-α) f_i`` then ``K[i] /= ||K[i]||`` with
  ``α = 0.01 × epoch`` by default (:class:`LinearMomentum`; any callable
  ``epoch -> α`` works).

Part heads: an image whose part is invisible (``visibility == 0``) contributes no loss
and no update for that head. Per-head losses are averaged over the images visible in
that head; :meth:`ExemplarMemory.loss` returns their sum over heads (or the per-head
vector with ``reduction="none"``).

Distributed: under an initialised :mod:`torch.distributed` process group,
:meth:`ExemplarMemory.update` all-gathers features, indices and visibility from every
rank first (:func:`~semparts_reid.memory.gather.all_gather_rows`), so all replicas
apply the same update and stay identical; the loss uses the local features only (DDP
averages the gradients). The memory is a plain tensor,
neither an ``nn.Parameter`` nor a module buffer, so DDP never broadcasts it.

Example:
    >>> import torch
    >>> mem = ExemplarMemory(100, 16, num_heads=4)
    >>> feats = torch.randn(8, 4, 16, requires_grad=True)
    >>> idx = torch.arange(8)
    >>> vis = torch.ones(8, 3)  # head / upper / lower visible (global always is)
    >>> loss = mem.loss(feats, idx, neighbours=False, visibility=vis)
    >>> loss.backward()
    >>> mem.update(feats.detach(), idx, epoch=1, visibility=vis)
    >>> mem.slots.shape
    torch.Size([4, 100, 16])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ._bank import HeadBank
from ._unique import unique_padded
from .gather import all_gather_rows

__all__ = ["ExemplarMemory", "LinearMomentum", "MomentumSchedule"]

MomentumSchedule = Callable[[int], float]


@dataclass(frozen=True)
class LinearMomentum:
    """ECN's memory momentum: ``α(epoch) = min(step × epoch, max_momentum)``.

    ECN uses ``step = 0.01`` with 0-based epochs, so the first epoch overwrites slots
    (``α = 0``) and the memory becomes slower to change as training goes on.

    Args:
        step: increase of ``α`` per epoch (ECN: 0.01).
        max_momentum: upper bound on ``α`` (must be < 1 so the memory keeps updating).
    """

    step: float = 0.01
    max_momentum: float = 0.99

    def __post_init__(self) -> None:
        if not (self.step >= 0 and math.isfinite(self.step)):
            raise ValueError(f"step={self.step!r}: expected a finite value >= 0")
        if not 0.0 <= self.max_momentum < 1.0:
            raise ValueError(f"max_momentum={self.max_momentum!r}: expected 0 <= value < 1")

    def __call__(self, epoch: int) -> float:
        return min(self.step * float(epoch), self.max_momentum)


class ExemplarMemory(HeadBank):
    """A per-head exemplar memory with ECN's exemplar / camera / neighbourhood invariance.

    Args:
        num_samples: ``N``, the number of target training images (one slot each).
        feat_dim: ``D``, the feature dimension.
        num_heads: number of heads (1 for ECN's global feature; 4 for global + head +
            upper + lower).
        temperature: ``β`` in ``z = f·Kᵀ / β`` (ECN: 0.05).
        knn: ``k`` for the neighbourhood-invariance term (ECN: 6); a memory with fewer
            than ``k`` slots uses all of them.
        momentum_schedule: callable ``epoch -> α`` in ``[0, 1)``; default
            :class:`LinearMomentum` (``α = 0.01 × epoch``).
        dtype: storage dtype of the slots (``torch.float32``, ``torch.bfloat16`` or
            ``torch.float16``). Logits are computed in the storage dtype and returned in
            fp32; bf16 halves the memory of a large bank (Duke: 16,522 × 4 × 2048).
        device: device of the slots.

    Attributes:
        slots: ``(heads, N, D)`` tensor; rows are unit vectors once written, else zero.
    """

    _bank_attr = "slots"

    def __init__(
        self,
        num_samples: int,
        feat_dim: int,
        *,
        num_heads: int = 1,
        temperature: float = 0.05,
        knn: int = 6,
        momentum_schedule: MomentumSchedule | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        for name, value in (
            ("num_samples", num_samples),
            ("feat_dim", feat_dim),
            ("num_heads", num_heads),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive int")
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"temperature={temperature!r}: expected a float > 0")
        if isinstance(knn, bool) or not isinstance(knn, int) or knn < 0:
            raise ValueError(f"knn={knn!r}: expected an int >= 0")
        if dtype not in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
            raise TypeError(f"dtype={dtype!r}: expected float32, bfloat16, float16 or float64")
        if momentum_schedule is not None and not callable(momentum_schedule):
            raise TypeError(
                f"momentum_schedule={momentum_schedule!r}: expected a callable epoch -> alpha"
            )
        self.num_samples = num_samples
        self.feat_dim = feat_dim
        self.num_heads = num_heads
        self.temperature = float(temperature)
        self.knn = knn
        self.momentum_schedule: MomentumSchedule = momentum_schedule or LinearMomentum()
        self.slots = torch.zeros(num_heads, num_samples, feat_dim, dtype=dtype, device=device)

    # ------------------------------------------------------------------ helpers
    def __repr__(self) -> str:
        return (
            f"ExemplarMemory(num_samples={self.num_samples}, feat_dim={self.feat_dim}, "
            f"num_heads={self.num_heads}, temperature={self.temperature}, knn={self.knn}, "
            f"momentum_schedule={self.momentum_schedule!r}, dtype={self.dtype})"
        )

    def _check(
        self,
        features: torch.Tensor,
        indices: torch.Tensor,
        visibility: torch.Tensor | None,
        check_indices: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Validate inputs; return features (B, H, D), indices (B,) long, weights (B, H).

        Shapes and dtypes are checked always; the range of ``indices`` only with
        ``check_indices`` (reading it back is a host synchronisation on a GPU)."""
        features = self._heads(features, explain_2d=True)
        b = features.shape[0]
        indices = self._long_rows(indices, "indices", b, self.device)
        if check_indices and b and (
            int(indices.min()) < 0 or int(indices.max()) >= self.num_samples
        ):
            raise ValueError(
                f"indices out of range [{int(indices.min())}, {int(indices.max())}]: expected "
                f"values in [0, {self.num_samples - 1}]"
            )
        weights = None
        if visibility is not None:
            weights = self._visible(
                visibility, b, features.device,
                "(parts only, the global head is then always visible)",
            )
        return features, indices, weights

    # ------------------------------------------------------------------ loss
    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``z = normalize(f) · Kᵀ / β`` against the current memory.

        Args:
            features: (B, H, D) or (B, D) when ``num_heads == 1``.

        Returns:
            (H, B, N) float32 logits (differentiable w.r.t. ``features``).
        """
        return self._logits(features)

    def loss(
        self,
        features: torch.Tensor,
        indices: torch.Tensor,
        *,
        neighbours: bool,
        visibility: torch.Tensor | None = None,
        reduction: Literal["sum", "mean", "none"] = "sum",
        check_indices: bool = True,
        neighbour_weights: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """ECN's invariance loss of a batch against the memory (before the update).

        Use the same call for camera-style images (camera invariance): pass their
        features with the original images' ``indices``.

        Args:
            features: (B, H, D) features (un-normalised is fine: they are L2-normalised
                here), or (B, D) when ``num_heads == 1``.
            indices: (B,) int slot index of every image (its position in the target
                training list).
            neighbours: add neighbourhood invariance (the ``knn`` nearest slots get
                weight ``1/knn``, the own slot weight 1). ECN: from epoch 5 on.
            visibility: optional (B, H) or (B, H-1) (parts only; the global head, index
                0, is then always visible) with 1 where the head's feature is valid;
                invisible entries contribute no loss.
            reduction: ``"sum"`` over heads (default), ``"mean"`` over heads, or
                ``"none"`` for the (H,) vector of per-head losses. Each per-head loss is
                the mean over the images visible in that head (0 when none is).
            check_indices: raise ``ValueError`` for an index outside ``[0, N)``. The
                check reads the indices back to the host (a GPU synchronisation); a
                training loop whose indices come from a sampler over the ``N`` target
                images passes ``False``.
            neighbour_weights: with ``neighbours``, ``(logits (H, B, N), indices (B,))
                -> (H, B, N)`` weights of the neighbour term in place of ``1/knn`` on
                the ``knn`` nearest slots (the own slot must get 0), e.g. a
                :class:`~semparts_reid.memory.NeighbourConstraint` that adds a video's
                tracklet mates and removes same-frame slots. Called without gradient.

        Returns:
            A scalar (or (H,)) float32 loss tensor.
        """
        self._check_reduction(reduction)
        feats, idx, weights = self._check(features, indices, visibility, check_indices)
        z = self.logits(feats)  # (H, B, N)
        logp = torch.log_softmax(z, dim=-1)
        h, b, _ = z.shape
        own = idx.view(1, b, 1).expand(h, b, 1)
        per = -logp.gather(2, own).squeeze(2)  # (H, B) exemplar term, own slot weight 1
        k = min(self.knn, self.num_samples)
        if neighbours and neighbour_weights is not None:
            with torch.no_grad():
                w = neighbour_weights(z, idx).to(logp.dtype)
            per = per - (logp * w).sum(-1)
        elif neighbours and k > 0:
            with torch.no_grad():
                top = z.topk(k, dim=-1).indices  # (H, B, k)
                not_own = (top != own).to(logp.dtype)
            per = per - (logp.gather(2, top) * not_own).sum(-1) / k
        if weights is None:
            per_head = per.mean(dim=1) if b else per.sum(dim=1)
        else:
            per_head = self._head_means(per, weights)
        return self._reduce_heads(per_head, reduction)

    # ------------------------------------------------------------------ update
    @torch.no_grad()
    def update(
        self,
        features: torch.Tensor,
        indices: torch.Tensor,
        *,
        epoch: int,
        visibility: torch.Tensor | None = None,
        check_indices: bool = True,
    ) -> None:
        """Move the slots of ``indices`` toward ``features``, then re-normalise them.

        ``K[h, i] <- α K[h, i] + (1-α) f_i / ||f_i||``, ``K[h, i] /= ||K[h, i]||``, with
        ``α = momentum_schedule(epoch)``. Images invisible in head ``h`` leave
        ``K[h, i]`` unchanged. When an index appears several times in the (global)
        batch, its visible features are averaged first and the slot is updated once.
        Under :mod:`torch.distributed`, features / indices / visibility of all ranks
        are gathered first so every replica applies the same update.

        Args:
            features: (B, H, D) or (B, D) (``num_heads == 1``); detached here.
            indices: (B,) int slot indices.
            epoch: the current epoch (0-based, as ECN), fed to the momentum schedule.
            visibility: optional (B, H) or (B, H-1), as in :meth:`loss`.
            check_indices: as in :meth:`loss`.

        Without a process group and with ``check_indices=False`` the update runs
        without any host synchronisation (duplicate indices are merged by a sort and
        a scan rather than ``torch.unique``, whose output size the host must read).
        """
        alpha = float(self.momentum_schedule(epoch))
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(
                f"momentum_schedule({epoch}) = {alpha!r}: expected a momentum in [0, 1]"
            )
        feats, idx, weights = self._check(features.detach(), indices, visibility, check_indices)
        f = F.normalize(feats.float(), dim=-1).to(self.device)  # (B, H, D)
        w = (
            weights.to(self.device)
            if weights is not None
            else f.new_ones(f.shape[0], self.num_heads)
        )
        f, idx, w = all_gather_rows(f), all_gather_rows(idx), all_gather_rows(w)  # no-op at 1
        if idx.numel() == 0:
            return
        uniq, inv, count = unique_padded(idx)  # (B,) sorted distinct, padded; (B,); ()
        mean, cnt = self._group_means(f, w, inv)  # (H, B, D), (B, H); 0 on padding
        old = self.slots[:, uniq].float()  # (H, B, D)
        self._momentum_write(uniq, count, old, mean, cnt, alpha)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The memory's state: slots plus the hyper-parameters that shape them."""
        return {
            "slots": self.slots.detach().clone(),
            "num_samples": self.num_samples,
            "feat_dim": self.feat_dim,
            "num_heads": self.num_heads,
            "temperature": self.temperature,
            "knn": self.knn,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the slot shape must match this memory's.

        Raises:
            KeyError: if ``state`` has no ``"slots"``.
            ValueError: if the stored slots have another shape.
        """
        if "slots" not in state:
            raise KeyError("memory state has no 'slots' entry")
        slots = state["slots"]
        if not isinstance(slots, torch.Tensor) or tuple(slots.shape) != tuple(self.slots.shape):
            shape = tuple(slots.shape) if isinstance(slots, torch.Tensor) else type(slots)
            raise ValueError(
                f"memory state slots of shape {shape}: expected {tuple(self.slots.shape)} "
                f"(heads, num_samples, feat_dim)"
            )
        self.slots = slots.to(device=self.device, dtype=self.dtype).clone()
        self.temperature = float(state.get("temperature", self.temperature))
        self.knn = int(state.get("knn", self.knn))
