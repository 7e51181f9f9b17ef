"""build_optimizer: the fused kernel where it applies, and updates equal to torch's default."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.optim import _fused_kernel, build_optimizer


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.LazyLinear(4))


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 5) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(4, 3, 6, 6, generator=gen)
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_cpu_parameters_use_the_fused_kernel(name: str) -> None:
    model = _net()
    model(torch.zeros(1, 3, 6, 6))  # materialise the lazy layer
    optimizer, _ = build_optimizer(model, TrainConfig().replace(optimizer=name))
    assert all(g.get("fused") for g in optimizer.param_groups)


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_fused_updates_equal_the_default_kernel(name: str) -> None:
    model = _net()
    model(torch.zeros(1, 3, 6, 6))
    reference = copy.deepcopy(model)
    cfg = TrainConfig().replace(optimizer=name, lr=1e-2, weight_decay=5e-4)
    fused, _ = build_optimizer(model, cfg)
    kwargs = {"weight_decay": 5e-4, "lr": 1e-2}
    plain = (torch.optim.Adam(reference.parameters(), **kwargs) if name == "adam" else
             torch.optim.SGD(reference.parameters(), momentum=0.9, nesterov=True, **kwargs))
    _train(model, fused)
    _train(reference, plain)
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        # the kernels order their float32 operations differently; an entry whose
        # gradient is near 0 moves by m / (sqrt(v) + eps), which is sensitive to that
        torch.testing.assert_close(a, b, rtol=1e-4, atol=cfg.optim.lr * 1e-2)


def test_parameters_without_a_fused_kernel_keep_the_default() -> None:
    assert _fused_kernel([nn.Parameter(torch.zeros(2, device="meta"))]) is None
    assert _fused_kernel([]) is None
    assert _fused_kernel([nn.Parameter(torch.zeros(2))]) is True


def test_fused_state_round_trips_through_a_state_dict() -> None:
    model = _net()
    model(torch.zeros(1, 3, 6, 6))
    optimizer, _ = build_optimizer(model, TrainConfig())
    _train(model, optimizer, steps=2)
    fresh, _ = build_optimizer(model, TrainConfig())
    fresh.load_state_dict(optimizer.state_dict())
    for key, value in optimizer.state_dict()["state"][0].items():
        torch.testing.assert_close(fresh.state_dict()["state"][0][key], value)
