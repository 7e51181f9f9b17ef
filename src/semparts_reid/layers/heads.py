"""Small head blocks: GeM pooling, BNNecks and a stack of identity classifiers."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BNNeck", "GeM", "MultiBNNeck", "MultiLinear", "global_avg_pool"]


def global_avg_pool(feature_map: Tensor) -> Tensor:
    """``(B, C, h, w) -> (B, C)`` spatial mean."""
    return feature_map.mean(dim=(-2, -1))


class GeM(nn.Module):
    """Generalised-mean pooling ``(mean_hw x^p)^(1/p)`` over the spatial dims.

    ``p = 1`` is average pooling, ``p -> inf`` approaches max pooling. The power is
    computed in float32 (``x^p`` overflows float16 quickly) and cast back.

    Args:
        p: initial exponent (> 0).
        eps: inputs are clamped to ``>= eps`` so the power is defined.
        learn_p: make ``p`` a trainable parameter.

    Shape:
        ``(B, C, h, w) -> (B, C)``

    Example:
        >>> GeM(p=1.0)(torch.ones(2, 3, 4, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(self, p: float = 3.0, *, eps: float = 1e-6, learn_p: bool = True) -> None:
        super().__init__()
        if not p > 0:
            raise ValueError(f"p must be > 0, got {p}")
        self.eps = eps
        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=learn_p)

    def forward(self, feature_map: Tensor) -> Tensor:
        if feature_map.ndim != 4:
            raise ValueError(f"GeM expects (B, C, h, w), got {tuple(feature_map.shape)}")
        p = self.p.float()
        x = feature_map.float().clamp_min(self.eps).pow(p)
        return x.mean(dim=(-2, -1)).pow(1.0 / p).to(feature_map.dtype)

    def extra_repr(self) -> str:
        return f"p={float(self.p):.3f}, eps={self.eps}"


class BNNeck(nn.BatchNorm1d):
    """Batch-norm neck (Luo et al., 2019): ``BatchNorm1d`` with a frozen zero bias.

    The identity classifier sits after the neck; retrieval uses the neck output.

    Shape:
        ``(B, D) -> (B, D)``
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        self.bias.requires_grad_(False)


class MultiBNNeck(nn.Module):
    """One independent BNNeck per part, applied to ``(B, K, D)`` in a single op.

    Batch norm normalises every channel independently, so ``K`` separate ``D``-dim necks
    equal one ``BatchNorm1d(K*D)`` on the flattened ``(B, K*D)`` input: no loop over parts.

    Shape:
        ``(B, K, D) -> (B, K, D)``
    """

    def __init__(self, num_parts: int, dim: int) -> None:
        super().__init__()
        if num_parts < 1 or dim < 1:
            raise ValueError(f"num_parts and dim must be >= 1, got {num_parts}, {dim}")
        self.num_parts = num_parts
        self.dim = dim
        self.bn = BNNeck(num_parts * dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1:] != (self.num_parts, self.dim):
            raise ValueError(f"expected (B, {self.num_parts}, {self.dim}), got {tuple(x.shape)}")
        return self.bn(x.reshape(x.shape[0], -1)).view_as(x)


class MultiLinear(nn.Module):
    """``H`` independent linear classifiers applied to ``(B, H, D)`` with one einsum.

    Args:
        num_heads: number of classifiers ``H`` (global + parts).
        in_dim: feature dim ``D``.
        out_dim: number of classes.
        bias: add a per-head bias (off by default, as after a BNNeck).
        std: init std of the weights.

    Shape:
        ``(B, H, D) -> (B, H, out_dim)``
    """

    def __init__(
        self, num_heads: int, in_dim: int, out_dim: int, *, bias: bool = False, std: float = 0.001
    ) -> None:
        super().__init__()
        if min(num_heads, in_dim, out_dim) < 1:
            raise ValueError(
                f"num_heads, in_dim and out_dim must be >= 1, got {num_heads}, {in_dim}, {out_dim}"
            )
        self.num_heads, self.in_dim, self.out_dim = num_heads, in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(num_heads, out_dim, in_dim))
        nn.init.normal_(self.weight, std=std)
        self.bias = nn.Parameter(torch.zeros(num_heads, out_dim)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1:] != (self.num_heads, self.in_dim):
            raise ValueError(f"expected (B, {self.num_heads}, {self.in_dim}), got {tuple(x.shape)}")
        out = torch.einsum("bhd,hod->bho", x, self.weight.to(x.dtype))
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, in_dim={self.in_dim}, out_dim={self.out_dim}"
