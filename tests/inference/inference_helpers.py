"""Helpers for the inference tests: a tiny real model, a stand-in module, random crops."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from semparts_reid.models.factory import build_model

SIZE = (64, 32)


def tiny_model() -> nn.Module:
    """The real ``semparts_resnet18`` at 64x32, fixed seed, eval mode."""
    torch.manual_seed(0)
    return build_model("semparts_resnet18", input_size=SIZE).eval()


@dataclass
class StandInOutput:
    global_feat: torch.Tensor
    part_feats: torch.Tensor
    visibility: torch.Tensor


class StandIn(nn.Module):
    """A small module with the SemPartsNet attributes the extractor relies on."""

    arch = "standin"
    feat_dim = 8

    def __init__(self, input_size: tuple[int, int] = (16, 8)) -> None:
        super().__init__()
        self.data_config = {"input_size": input_size, "mean": (0.5, 0.4, 0.3),
                            "std": (0.2, 0.25, 0.3), "interpolation": "bilinear"}
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.part = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> StandInOutput:
        fm = torch.relu(self.conv(x))
        g = fm.mean((2, 3))
        w = torch.softmax(self.part(fm).flatten(2), -1)  # (B, 3, HW)
        parts = torch.einsum("bkn,bcn->bkc", w, fm.flatten(2))
        vis = (parts.abs().sum(-1) > 0).float()
        return StandInOutput(g, parts, vis)


def stand_in() -> StandIn:
    torch.manual_seed(0)
    return StandIn().eval()


def random_crops(n: int, seed: int = 0, lo: int = 40, hi: int = 120) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (int(rng.integers(lo, hi)), int(rng.integers(lo // 2, hi // 2)), 3),
                     dtype=np.uint8)
        for _ in range(n)
    ]
