"""ImageNet normalisation: the one definition of ``IMAGENET_MEAN`` and ``IMAGENET_STD``.

The registry's ``data_config`` entries and :class:`~semparts_reid.models.SemPartsNet`'s
defaults both use these (models may import the hub; the hub never imports models).

Example:
    >>> IMAGENET_MEAN, IMAGENET_STD
    ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""

from __future__ import annotations

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""Per-channel RGB mean of ImageNet-1k, in [0, 1] pixel units."""
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation of ImageNet-1k, in [0, 1] pixel units."""
