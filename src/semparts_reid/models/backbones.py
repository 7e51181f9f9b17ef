"""torchvision ResNet trunks (no pooling, no classifier) with last stride 1 by default.

The trunk keeps torchvision's module names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``)
so a torchvision ImageNet state dict loads into it directly (its ``fc.*`` keys are the
only ones left over).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn

__all__ = ["RESNET_CHANNELS", "STAGE_CHANNELS", "ResNetBackbone", "list_backbones"]

_BUILDERS: dict[str, Callable[..., torchvision.models.ResNet]] = {
    "resnet18": torchvision.models.resnet18,
    "resnet34": torchvision.models.resnet34,
    "resnet50": torchvision.models.resnet50,
}

#: channels of the last stage's feature map
RESNET_CHANNELS: dict[str, int] = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
#: channels of ``layer1`` ... ``layer4``
STAGE_CHANNELS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
}


def list_backbones() -> list[str]:
    """Names accepted by :class:`ResNetBackbone`."""
    return sorted(_BUILDERS)


class ResNetBackbone(nn.Module):
    """A torchvision ResNet up to ``layer4``, returning the feature map.

    Args:
        name: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        last_stride: stride of ``layer4`` (1, as usual in re-ID, keeps a ``16x8`` map for
            a ``256x128`` input; 2 is the ImageNet setting).
        frozen_stages: ``-1`` trains everything; ``0`` freezes the stem (``conv1``,
            ``bn1``); ``n`` in 1..4 freezes the stem and ``layer1`` ... ``layer{n}``.
            Frozen stages get ``requires_grad=False`` and keep their batch norms in eval
            mode even while the model trains.

    Attributes:
        out_channels: channels ``C`` of the output feature map.
        stage_channels: channels of ``layer1`` ... ``layer4`` (:meth:`forward_stages`).
        output_stride: input size / feature map size (16 with last stride 1, else 32).

    Shape:
        ``(B, 3, H, W) -> (B, C, H / output_stride, W / output_stride)``

    Example:
        >>> net = ResNetBackbone("resnet18")
        >>> net(torch.zeros(1, 3, 64, 32)).shape
        torch.Size([1, 512, 4, 2])
    """

    def __init__(self, name: str = "resnet50", *, last_stride: int = 1, frozen_stages: int = -1):
        super().__init__()
        if name not in _BUILDERS:
            raise ValueError(f"unknown backbone {name!r}; known: {', '.join(list_backbones())}")
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        if not -1 <= frozen_stages <= 4:
            raise ValueError(f"frozen_stages must be in [-1, 4], got {frozen_stages}")
        net = _BUILDERS[name](weights=None)
        self.name = name
        self.last_stride = last_stride
        self.frozen_stages = frozen_stages
        self.out_channels = RESNET_CHANNELS[name]
        self.stage_channels = STAGE_CHANNELS[name]
        self.output_stride = 16 if last_stride == 1 else 32
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        if last_stride == 1:
            block = self.layer4[0]
            # Bottleneck strides in conv2 (torchvision "v1.5"), BasicBlock in conv1
            is_bottleneck = isinstance(block, torchvision.models.resnet.Bottleneck)
            strided = block.conv2 if is_bottleneck else block.conv1
            strided.stride = (1, 1)
            if block.downsample is not None:
                block.downsample[0].stride = (1, 1)
        self._freeze()

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        mods: list[nn.Module] = [self.conv1, self.bn1]
        mods += [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]
        return mods

    def _freeze(self) -> None:
        for mod in self._frozen_modules():
            mod.eval()
            for p in mod.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNetBackbone:
        super().train(mode)
        if mode:
            for mod in self._frozen_modules():
                mod.eval()
        return self

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The outputs of ``layer1`` ... ``layer4``: strides 4, 8, 16 and
        ``output_stride``, channels :attr:`stage_channels`."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return c1, c2, c3, self.layer4(c3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(x)[-1]

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, last_stride={self.last_stride}, "
            f"frozen_stages={self.frozen_stages}, out_channels={self.out_channels}"
        )
