"""The names of the built-in architectures, importable without torch.

``semparts_<backbone>`` models have the semantic part branch; ``ecn_<backbone>`` are
the global-only ECN-style baselines with the same backbone and heads.
:func:`semparts_reid.models.factory.build_model` builds them from these names;
configuration checks (``TrainConfig.arch``) read them here, so they run without torch.
"""

from __future__ import annotations

__all__ = ["BACKBONES", "MODEL_NAMES"]

BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50")
MODEL_NAMES: tuple[str, ...] = tuple(
    sorted(f"{kind}_{backbone}" for kind in ("ecn", "semparts") for backbone in BACKBONES)
)
