"""A light decoder that predicts part logits from several backbone stages.

The paper's part classifier is a ``1x1`` convolution on the last feature map ``M``. At
the demo's ``80x40`` input ``M`` is ``5x3``: the head has no cell of its own, and the
classifier can only learn a positional prior. :class:`PartDecoder` predicts the part
maps at a finer stride from early stages (``layer1``: stride 4, ``layer2``: stride 8)
plus ``M`` (the semantics), in the style of a feature-pyramid segmentation head:

    for each stage s:   lateral_s = ReLU(BN(Conv1x1(stage_s)))        (B, width, h_s, w_s)
    fused               = sum_s upsample_bilinear(lateral_s, size of the finest stage)
    logits              = Conv1x1(ReLU(BN(Conv3x3(fused))))            (B, K+1, h_0, w_0)

The part features are still pooled on ``M``: the model averages the decoder's soft maps
down to ``M``'s grid (area pooling). Cost at ``256x128`` with ``width=64``: about 0.1
GFLOP per image, against 4 GFLOPs of a ResNet-50 trunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .parts import NUM_PART_CLASSES

__all__ = ["PartDecoder"]


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _coordinates(x: Tensor) -> Tensor:
    """``(B, 2, h, w)`` row and column positions in ``[-1, 1]`` (pixel centres)."""
    b, _, h, w = x.shape
    rows = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=x.device, dtype=x.dtype)
    cols = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"))
    return grid.unsqueeze(0).expand(b, -1, -1, -1)


class PartDecoder(nn.Module):
    """Part logits at the finest input stride from a list of feature maps.

    Args:
        in_channels: channels of each input map, finest first (e.g. ``(64, 128, 512)``
            for ResNet-18 ``layer1``, ``layer2`` and ``layer4``).
        num_classes: ``K + 1`` part classes (background first).
        width: channels of the fused map.

    Shape:
        - input: a sequence of ``(B, C_s, h_s, w_s)`` maps, one per entry of
          ``in_channels``; the first is the finest.
        - output: ``(B, K+1, h_0, w_0)`` logits.

    Example:
        >>> import torch
        >>> dec = PartDecoder((8, 16, 32))
        >>> maps = [torch.randn(2, 8, 16, 8), torch.randn(2, 16, 8, 4), torch.randn(2, 32, 4, 2)]
        >>> dec(maps).shape
        torch.Size([2, 4, 16, 8])
    """

    def __init__(
        self, in_channels: Sequence[int], num_classes: int = NUM_PART_CLASSES, width: int = 64
    ) -> None:
        super().__init__()
        chans = [int(c) for c in in_channels]
        if not chans or min(chans) < 1:
            raise ValueError(f"in_channels must be a non-empty list of positive ints, got {chans}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background + parts), got {num_classes}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.in_channels = tuple(chans)
        self.num_classes = int(num_classes)
        self.width = int(width)
        self.laterals = nn.ModuleList(_conv_bn_relu(c, width, 1) for c in chans)
        self.fuse = _conv_bn_relu(width + 2, width, 3)
        self.classifier = nn.Conv2d(width, num_classes, kernel_size=1, bias=True)
        nn.init.normal_(self.classifier.weight, std=0.01)
        assert self.classifier.bias is not None
        nn.init.zeros_(self.classifier.bias)

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        """``(B, K+1, h_0, w_0)`` logits from the stage maps (finest first)."""
        if len(maps) != len(self.in_channels):
            raise ValueError(
                f"PartDecoder expects {len(self.in_channels)} maps with channels "
                f"{self.in_channels}, got {len(maps)}"
            )
        for i, (m, c) in enumerate(zip(maps, self.in_channels)):
            if m.ndim != 4 or m.shape[1] != c:
                raise ValueError(
                    f"PartDecoder input {i} must have shape (B, {c}, h, w), got {tuple(m.shape)}"
                )
        size = maps[0].shape[-2:]
        fused = self.laterals[0](maps[0])
        for lateral, m in zip(self.laterals[1:], maps[1:]):
            y = lateral(m)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            fused = fused + y
        return self.classifier(self.fuse(torch.cat([fused, _coordinates(fused)], dim=1)))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, width={self.width}"
