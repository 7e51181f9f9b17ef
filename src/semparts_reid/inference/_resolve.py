"""Private: one :class:`FeatureExtractor` for a model or an extractor, train mode restored."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from .extractor import FeatureExtractor


@contextmanager
def resolved_extractor(
    model_or_extractor: nn.Module | FeatureExtractor,
    *,
    device: str | torch.device = "auto",
    precision: str = "auto",
    batch_size: int = 64,
    num_workers: int | None = None,
    data_config: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> Iterator[FeatureExtractor]:
    """Yield ``model_or_extractor`` as an extractor; a model's train mode is restored after.

    A ready extractor is used as it is (its device, precision and batch size); a model
    gets one built with the given options (no batch-norm folding, so it stays trainable).

    Raises:
        TypeError: neither an ``nn.Module`` nor a :class:`FeatureExtractor`.
    """
    if isinstance(model_or_extractor, FeatureExtractor):
        yield model_or_extractor
        return
    if not isinstance(model_or_extractor, nn.Module):
        raise TypeError("model_or_extractor: expected an nn.Module or a FeatureExtractor, "
                        f"got {type(model_or_extractor).__name__}")
    was_training = model_or_extractor.training
    try:
        yield FeatureExtractor(
            model_or_extractor, device=device, precision=precision, batch_size=batch_size,
            num_workers=num_workers, data_config=data_config, progress=progress, fuse_bn=False,
        )
    finally:
        model_or_extractor.train(was_training)
