"""Private: the per-head bank both memories are built on (pure tensor code).

:class:`HeadBank` holds what :class:`~.cluster.ClusterMemory` (bank ``centroids``,
``(H, C, D)``) and :class:`~.exemplar.ExemplarMemory` (bank ``slots``, ``(H, N, D)``)
share: the storage dtype / device and :meth:`~HeadBank.to`, the feature and visibility
checks, the logits against the bank, the per-head reduction of a loss and the momentum
write of an update. A subclass names its bank attribute in ``_bank_attr`` and sets
``feat_dim``, ``num_heads`` and ``temperature``.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import torch
import torch.nn.functional as F

__all__ = ["HeadBank"]

#: the epsilon of every L2 normalisation of a bank (shared with :mod:`.cluster`)
EPS = 1e-12

_Bank = TypeVar("_Bank", bound="HeadBank")


class HeadBank:
    """Base of the memories: a ``(H, R, D)`` bank of unit rows, one set per head."""

    _bank_attr: str  # name of the bank attribute: "centroids" or "slots"
    feat_dim: int
    num_heads: int
    temperature: float

    @property
    def _bank(self) -> torch.Tensor:
        bank: torch.Tensor = getattr(self, self._bank_attr)
        return bank

    @property
    def dtype(self) -> torch.dtype:
        return self._bank.dtype

    @property
    def device(self) -> torch.device:
        return self._bank.device

    def to(self: _Bank, device: torch.device | str) -> _Bank:
        """Move the bank (``centroids`` / ``slots``) to ``device`` (in place) and return
        ``self``."""
        setattr(self, self._bank_attr, self._bank.to(device))
        return self

    # ------------------------------------------------------------------ checks
    def _heads(self, features: torch.Tensor, *, explain_2d: bool = False) -> torch.Tensor:
        """Validate ``features``; return them as ``(B, H, D)`` (``(B, D)`` is accepted
        with one head). ``explain_2d``: a ``(B, D)`` input with several heads gets its
        own message rather than the generic one."""
        if not isinstance(features, torch.Tensor) or not features.is_floating_point():
            raise TypeError(f"features: expected a float tensor, got {type(features).__name__}")
        if features.dim() == 2:
            if explain_2d and self.num_heads != 1:
                raise ValueError(
                    f"features of shape {tuple(features.shape)} are (B, D) but the memory has "
                    f"num_heads={self.num_heads}; expected (B, {self.num_heads}, {self.feat_dim})"
                )
            if self.num_heads == 1:
                features = features.unsqueeze(1)
        if features.dim() != 3 or features.shape[1:] != (self.num_heads, self.feat_dim):
            raise ValueError(
                f"features of shape {tuple(features.shape)}: expected (B, {self.num_heads}, "
                f"{self.feat_dim})" + (f" or (B, {self.feat_dim})" if self.num_heads == 1 else "")
            )
        return features

    @staticmethod
    def _long_rows(
        t: torch.Tensor, name: str, b: int, device: torch.device, note: str = ""
    ) -> torch.Tensor:
        """``t`` (labels or indices) checked to be a ``(B,)`` integer tensor, returned as
        int64 on ``device``; ``note`` ends the message of a wrong shape or dtype."""
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a tensor, got {type(t).__name__}")
        if t.shape != (b,) or t.is_floating_point() or t.dtype == torch.bool:
            raise ValueError(
                f"{name} of shape {tuple(t.shape)} dtype {t.dtype}: expected an "
                f"integer tensor of shape ({b},){note}"
            )
        return t.to(device=device, dtype=torch.long)

    def _visible(
        self, visibility: torch.Tensor, b: int, device: torch.device, hint: str
    ) -> torch.Tensor:
        """``(B, H)`` float32 mask, 1 where visible (> 0.5), of a ``(B, H)`` or
        ``(B, H-1)`` (parts only: the global head, index 0, is then always visible)
        ``visibility``; ``hint`` ends the message of a wrong shape."""
        if not isinstance(visibility, torch.Tensor):
            raise TypeError(f"visibility: expected a tensor, got {type(visibility).__name__}")
        vis = visibility.to(device=device, dtype=torch.float32)
        if vis.shape == (b, self.num_heads - 1) and self.num_heads > 1:
            vis = torch.cat([vis.new_ones(b, 1), vis], dim=1)  # global always visible
        if vis.shape != (b, self.num_heads):
            raise ValueError(
                f"visibility of shape {tuple(visibility.shape)}: expected ({b}, "
                f"{self.num_heads}) or ({b}, {self.num_heads - 1}) {hint}"
            )
        return (vis > 0.5).to(torch.float32)

    # ------------------------------------------------------------------ loss
    def _logits(self, features: torch.Tensor) -> torch.Tensor:
        """``normalize(f) · bankᵀ / temperature``: ``(B, H, D)`` (or ``(B, D)``) ->
        ``(H, B, R)`` float32, computed in the bank's dtype, differentiable w.r.t. ``f``."""
        if features.dim() == 2 and self.num_heads == 1:
            features = features.unsqueeze(1)
        f = F.normalize(features.float(), dim=-1).transpose(0, 1)  # (H, B, D)
        z = torch.bmm(f.to(device=self.device, dtype=self.dtype), self._bank.transpose(1, 2))
        return z.float() / self.temperature

    @staticmethod
    def _check_reduction(reduction: str) -> None:
        if reduction not in ("sum", "mean", "none"):
            raise ValueError(f"reduction={reduction!r}: expected 'sum', 'mean' or 'none'")

    @staticmethod
    def _head_means(per: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``(H,)`` per-head mean of ``per`` (H, B) over the samples of weight 1 in
        ``weights`` (B, H); 0 for a head with none."""
        w = weights.to(per.device).t()  # (H, B)
        return (per * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)

    @staticmethod
    def _reduce_heads(
        per_head: torch.Tensor, reduction: Literal["sum", "mean", "none"]
    ) -> torch.Tensor:
        """``per_head`` (H,) summed, averaged or kept as it is (``"none"``)."""
        if reduction == "none":
            return per_head
        return per_head.sum() if reduction == "sum" else per_head.mean()

    # ------------------------------------------------------------------ update
    def _group_means(
        self, f: torch.Tensor, w: torch.Tensor, inv: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of the used rows of ``f`` (B, H, D) per group ``inv`` (B,) and head,
        ``w`` (B, H) the 0/1 weights. Returns ``(H, B, D)`` means (rows indexed by group)
        and ``(B, H)`` counts."""
        b = f.shape[0]
        acc = f.new_zeros(b, self.num_heads, self.feat_dim).index_add_(0, inv, f * w[..., None])
        cnt = w.new_zeros(b, self.num_heads).index_add_(0, inv, w)  # (B, H); 0 on padding
        return (acc / cnt.clamp_min(1.0)[..., None]).transpose(0, 1), cnt

    def _momentum_write(
        self,
        uniq: torch.Tensor,
        count: torch.Tensor,
        old: torch.Tensor,
        x: torch.Tensor,
        cnt: torch.Tensor,
        momentum: float,
    ) -> None:
        """``bank[:, uniq] <- normalize(m old + (1-m) x)`` where a group has a used member
        (``cnt`` (B, H) > 0), else ``old``; ``uniq``, ``count`` as
        :func:`~._unique.unique_padded` returns them, ``old`` and ``x`` (H, B, D)."""
        new = F.normalize(momentum * old + (1.0 - momentum) * x, dim=-1, eps=EPS)
        new = torch.where((cnt.t() > 0)[..., None], new, old)
        # padding rows repeat the last distinct index: give them that row's value, so
        # every write to a repeated index carries the same value (a deterministic result)
        src = torch.minimum(torch.arange(uniq.numel(), device=uniq.device), count - 1)
        self._bank[:, uniq] = new[:, src].to(self.dtype)
