"""Inference-only conv + batch-norm folding for torchvision-style ResNet trunks.

In eval mode a ``BatchNorm2d`` after a ``Conv2d`` is an affine map per output channel,
so it can be folded into the convolution's weight and bias
(``W' = W * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta``). A ResNet-50
forward then skips 53 batch-norm passes over its feature maps. Only the torchvision
layout is touched (stem ``conv1``/``bn1``, ``BasicBlock`` / ``Bottleneck``
``convN``/``bnN`` pairs and ``downsample = Sequential(conv, bn)``), where the
order conv -> bn is known; other modules are left alone.
"""

from __future__ import annotations

import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fuse_resnet_conv_bn"]

_BLOCKS = (torchvision.models.resnet.BasicBlock, torchvision.models.resnet.Bottleneck)


def _fuse_pair(parent: nn.Module, conv_name: str, bn_name: str) -> bool:
    conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
    if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
        return False
    if bn.running_mean is None or bn.running_var is None:
        return False  # no running statistics: nothing fixed to fold
    setattr(parent, conv_name, fuse_conv_bn_eval(conv.eval(), bn.eval()))
    setattr(parent, bn_name, nn.Identity())
    return True


def fuse_resnet_conv_bn(trunk: nn.Module) -> int:
    """Fold the batch norms of a torchvision-style ResNet ``trunk`` into its convolutions.

    Modifies ``trunk`` in place (eval mode only: the running statistics are baked in, so
    do not train it afterwards) and returns the number of folded pairs (0 when ``trunk``
    does not have the torchvision layout).
    """
    if not all(hasattr(trunk, n) for n in ("conv1", "bn1", "layer1")):
        return 0
    count = int(_fuse_pair(trunk, "conv1", "bn1"))
    for block in list(trunk.modules()):
        if not isinstance(block, _BLOCKS):
            continue
        for i in (1, 2, 3):
            count += _fuse_pair(block, f"conv{i}", f"bn{i}")
        down = block.downsample
        if isinstance(down, nn.Sequential) and len(down) == 2:
            count += _fuse_pair(down, "0", "1")
    return count
