"""Convolutions routed around oneDNN's bf16 weak spots on the CPU.

Under CPU bf16 autocast, :meth:`semparts_reid.precision.PrecisionPolicy.prepare_module`
swaps the class of a model's plain ``nn.Conv2d`` modules (same parameters, same
state-dict keys) so that two kinds of call avoid oneDNN's convolution kernels:

* **a defect** (:class:`OneDNNSafeConv2d`): the AMX kernel computes a strided
  convolution with a one-column output from memory it never wrote. Those calls run
  in fp32.
* **a slow path** (:class:`SmallMapConv2d`): on small maps (``<= 32`` output
  positions) with ``>= 256`` input channels, the bf16 weight gradient takes ~3x the
  forward. Those calls run as im2col + one matrix product
  (:func:`semparts_reid.layers.gemm_conv.gemm_conv2d`), ~2.5x faster for forward +
  backward; they are the ``layer3`` / ``layer4`` convolutions of a ResNet at the
  demo's 80x40 input (``benchmarks/bench_small_map_conv.py``).

Everything else is the plain ``nn.Conv2d`` forward. The names stay importable from
:mod:`semparts_reid.precision`, where they were first defined.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .layers.gemm_conv import conv_output_size, gemm_conv2d

__all__ = [
    "GEMM_MAX_POSITIONS", "GEMM_MIN_CHANNELS", "OneDNNSafeConv2d", "SmallMapConv2d",
    "guard_cpu_bf16_convs",
]

logger = logging.getLogger(__name__)

#: largest output map (``h * w``) a :class:`SmallMapConv2d` computes as a GEMM; above it
#: the im2col copy costs more than oneDNN's slow weight gradient (measured crossover
#: between 32 and 50 positions for 512 -> 512 3x3)
GEMM_MAX_POSITIONS = 32
#: fewest input channels for the GEMM route; below 256 oneDNN is as fast or faster
GEMM_MIN_CHANNELS = 256


def _out_size(conv: nn.Conv2d, size: int, axis: int) -> int:
    """Output size of ``conv`` along ``axis`` (0: height, 1: width) for an input ``size``."""
    pad = conv.padding  # a string only as "valid" when strided ("same" needs stride 1)
    pad_n = 0 if isinstance(pad, str) else int(pad[axis])
    return conv_output_size(size, conv.kernel_size[axis], conv.stride[axis], pad_n,
                            conv.dilation[axis])


def _strided_wide(conv: nn.Conv2d) -> bool:
    """A horizontal stride > 1 and a kernel wider than 1: the convolutions that can hit
    oneDNN's width-1 defect (whether a call does depends on its input width)."""
    return conv.stride[1] > 1 and conv.kernel_size[1] > 1


def _cpu_bf16_active(x: torch.Tensor) -> bool:
    if x.dtype == torch.bfloat16:
        return True
    return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def _hits_defect(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    return _strided_wide(conv) and _out_size(conv, int(x.shape[-1]), 1) == 1


class OneDNNSafeConv2d(nn.Conv2d):
    """``nn.Conv2d`` that avoids a oneDNN bf16 kernel defect on CPUs with AMX.

    oneDNN's AMX brgemm convolution (``brg_conv_fwd:avx10_1_512_amx``, the kernel PyTorch
    2.x picks for bf16 on CPUs with AMX) computes a convolution with a horizontal stride
    > 1, a kernel wider than 1 and an **output width of 1** from memory it never
    wrote: the result changes from call to call and is often NaN, 0 or ~1e37. ResNets
    hit it at small inputs (a ``32x16`` crop gives ``layer3``'s strided 3x3 a ``4x2 ->
    2x1`` map). Other shapes, 1x1 convolutions, the backward kernels and fp32 are
    correct (measured on PyTorch 2.14.1, see ``tests/test_precision_onednn.py``).

    This class runs exactly those calls in fp32 (the output is cast back to bf16 so
    the rest of the autocast region sees the usual dtype); every other call is the plain
    ``nn.Conv2d`` forward. State-dict keys and parameters are those of ``nn.Conv2d``.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - nn.Conv2d's name
        if input.device.type == "cpu" and input.dim() == 4 and _cpu_bf16_active(input) \
                and _hits_defect(self, input):
            with torch.autocast("cpu", enabled=False):
                bias = None if self.bias is None else self.bias.float()
                out = self._conv_forward(input.float(), self.weight.float(), bias)
            return out.to(torch.bfloat16)
        return super().forward(input)


class SmallMapConv2d(OneDNNSafeConv2d):
    """``nn.Conv2d`` whose CPU bf16 calls on small maps run as im2col + one GEMM.

    A call takes the GEMM route when it runs on the CPU under bf16 and its output
    has at most :data:`GEMM_MAX_POSITIONS` positions; the module itself has at least
    :data:`GEMM_MIN_CHANNELS` input channels, ``groups=1`` and zero padding (what
    :func:`guard_cpu_bf16_convs` checks before converting). The result equals
    ``nn.Conv2d``'s to bf16 rounding and keeps the ``channels_last`` strides. Other
    calls (larger maps, fp32, CUDA) fall through to :class:`OneDNNSafeConv2d`.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - nn.Conv2d's name
        if input.device.type == "cpu" and input.dim() == 4 and _cpu_bf16_active(input):
            positions = _out_size(self, int(input.shape[-2]), 0) \
                * _out_size(self, int(input.shape[-1]), 1)
            if 0 < positions <= GEMM_MAX_POSITIONS:
                pad = self.padding
                assert not isinstance(pad, str)  # checked on conversion
                return gemm_conv2d(input, self.weight, self.bias,
                                   (self.stride[0], self.stride[1]), (pad[0], pad[1]),
                                   (self.dilation[0], self.dilation[1]))
        return super().forward(input)


def _gemm_convertible(conv: nn.Conv2d) -> bool:
    return conv.groups == 1 and conv.padding_mode == "zeros" \
        and not isinstance(conv.padding, str) and conv.in_channels >= GEMM_MIN_CHANNELS


def guard_cpu_bf16_convs(module: nn.Module, *, small_map_gemm: bool = True) -> int:
    """Route the convolutions of ``module`` around oneDNN's bf16 weak spots (in place).

    Every plain ``nn.Conv2d`` that can take the GEMM route (``groups=1``, zero padding,
    at least :data:`GEMM_MIN_CHANNELS` input channels) becomes a :class:`SmallMapConv2d`
    when ``small_map_gemm``; every other one with a horizontal stride > 1 and a kernel
    wider than 1 becomes a :class:`OneDNNSafeConv2d`. Only the class changes (same
    parameters, same state-dict keys). Which route a call takes depends on its input
    size, so the check runs per call and costs a few integer operations. Subclasses of
    ``nn.Conv2d`` are left alone.

    Args:
        module: the model, changed in place.
        small_map_gemm: convert for the GEMM route too (``False``: the defect only).

    Returns:
        The number of convolutions converted (0 on a second call).
    """
    safe = gemm = 0
    for mod in module.modules():
        if type(mod) is not nn.Conv2d:
            continue
        if small_map_gemm and _gemm_convertible(mod):
            mod.__class__ = SmallMapConv2d
            gemm += 1
        elif _strided_wide(mod):
            mod.__class__ = OneDNNSafeConv2d
            safe += 1
    if safe or gemm:
        logger.debug("CPU bf16 convolutions: %d routed around the oneDNN width-1 defect, "
                     "%d take the GEMM route on small maps", safe, gemm)
    return safe + gemm
