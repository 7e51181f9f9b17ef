"""Helpers of the engine tests (a fast config and a tiny model)."""

from __future__ import annotations

from typing import Any

import torch

from semparts_reid.engine.config import TrainConfig


def tiny_config(out: str, **kw: Any) -> TrainConfig:
    """resnet18 at 64x32, batch 8, 2 steps per epoch, no workers, fp32 (deterministic)."""
    base: dict[str, Any] = dict(
        arch="semparts_resnet18", pretrained=None, input_size=(64, 32), batch_size=8,
        target_batch_size=8, num_workers=0, epochs=2, source_epochs=0, eval_every=0,
        max_steps_per_epoch=2, output_dir=out, progress=False, neighbour_start_epoch=1,
        precision="fp32", device="cpu",
    )
    base.update(kw)
    return TrainConfig().replace(**base)


def tiny_model(num_classes: int, arch: str = "semparts_resnet18", seed: int = 0) -> Any:
    from semparts_reid.models.factory import build_model

    torch.manual_seed(seed)
    return build_model(arch, num_classes=num_classes, input_size=(64, 32))
