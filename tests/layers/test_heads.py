"""GeM, BNNeck, MultiBNNeck, MultiLinear."""

from __future__ import annotations

import pytest
import torch

from semparts_reid.layers.heads import BNNeck, GeM, MultiBNNeck, MultiLinear, global_avg_pool


def test_gem_limits() -> None:
    x = torch.rand(2, 3, 4, 4) + 0.1
    torch.testing.assert_close(GeM(p=1.0)(x), global_avg_pool(x))
    big = GeM(p=50.0)(x)
    assert torch.all(big <= x.amax(dim=(-2, -1)) + 1e-5)
    assert torch.all(big >= 0.9 * x.amax(dim=(-2, -1)))
    ref = x.pow(3).mean(dim=(-2, -1)).pow(1 / 3)
    torch.testing.assert_close(GeM()(x), ref)
    gem = GeM()
    gem(x).sum().backward()
    assert gem.p.grad is not None
    assert not GeM(learn_p=False).p.requires_grad
    assert GeM()(x.bfloat16()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="p must be"):
        GeM(p=0.0)


def test_bnneck_bias_frozen() -> None:
    neck = BNNeck(8)
    assert not neck.bias.requires_grad and neck.weight.requires_grad


def test_multi_bnneck_equals_independent_necks() -> None:
    x = torch.randn(16, 3, 8)
    multi = MultiBNNeck(3, 8)
    out = multi(x)
    for k in range(3):
        single = BNNeck(8)
        torch.testing.assert_close(out[:, k], single(x[:, k]))
    with pytest.raises(ValueError, match=r"\(B, 3, 8\)"):
        multi(torch.randn(4, 2, 8))


def test_multi_linear_equals_per_head_linear() -> None:
    lin = MultiLinear(4, 8, 5, bias=True)
    with torch.no_grad():
        lin.bias.normal_()  # type: ignore[union-attr]
    x = torch.randn(3, 4, 8)
    out = lin(x)
    assert out.shape == (3, 4, 5)
    for h in range(4):
        ref = x[:, h] @ lin.weight[h].t() + lin.bias[h]  # type: ignore[index]
        torch.testing.assert_close(out[:, h], ref)
    with pytest.raises(ValueError, match=r"\(B, 4, 8\)"):
        lin(torch.randn(3, 8))
    with pytest.raises(ValueError, match=">= 1"):
        MultiLinear(0, 8, 5)
