"""A 2-D convolution computed as one matrix product (im2col), for small feature maps.

On a CPU, oneDNN's bf16 convolution *backward* is slow on the small maps of a
low-resolution ResNet: for a ``512 -> 512`` 3x3 convolution on 32 maps of ``5x3``
the weight gradient takes ~3x the forward. The same convolution written as
``im2col -> GEMM`` needs one matrix product forward and two backward, each on a
``(B*h*w) x (C*k*k)`` matrix that is tiny at these sizes, and runs ~2.5x faster for
forward + backward (``benchmarks/bench_small_map_conv.py``). On large maps the
im2col copy costs more than it saves, so callers use it below a size threshold
(:func:`semparts_reid.precision.guard_cpu_bf16_convs`).

The columns are gathered from the NHWC view of the input (free for a
``channels_last`` tensor) by ``k*k`` shifted slices, so the backward is plain
slicing and addition, and the output comes back as an NCHW tensor with
``channels_last`` strides, which is what the next layer of a channels_last network
expects.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["conv_output_size", "gemm_conv2d"]


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis (PyTorch's formula; < 1 when the
    kernel does not fit the padded input)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _windows(
    kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
    out: tuple[int, int],
) -> list[tuple[slice, slice]]:
    """The (rows, cols) slice of the padded NHWC input under each kernel offset."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out
    return [
        (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
         slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))
        for i in range(kh)
        for j in range(kw)
    ]


class _Im2Col(torch.autograd.Function):
    """``(B, C, H, W)`` -> ``(B, h', w', kh*kw, C)`` columns of the zero-padded NHWC
    input; the backward adds each offset's gradient into one padded buffer (autograd's
    own backward of ``stack`` + slicing would allocate and add a full-size zero tensor
    per offset)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
        padding: tuple[int, int], dilation: tuple[int, int], out: tuple[int, int],
    ) -> Tensor:
        (ph, pw) = padding
        nhwc = x.permute(0, 2, 3, 1)
        if ph or pw:
            nhwc = F.pad(nhwc, (0, 0, pw, pw, ph, ph))
        windows = _windows(kernel, stride, dilation, out)
        ctx.geometry = (tuple(x.shape), padding, windows)
        return torch.stack([nhwc[:, rows, cols, :] for rows, cols in windows], dim=3)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        (batch, channels, height, width), (ph, pw), windows = ctx.geometry
        # sum the overlapping offsets in (at least) fp32, then round once to the input's
        # dtype: a bf16 buffer would round after every one of the kh*kw additions
        acc = torch.promote_types(grad.dtype, torch.float32)
        buf = grad.new_zeros(batch, height + 2 * ph, width + 2 * pw, channels, dtype=acc)
        for k, (rows, cols) in enumerate(windows):
            buf[:, rows, cols, :] += grad[:, :, :, k, :]
        grad_x = buf[:, ph : ph + height, pw : pw + width, :].permute(0, 3, 1, 2)
        return grad_x.to(grad.dtype), None, None, None, None, None


def _pair(value: int | tuple[int, ...], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {value!r}")
    return pair[0], pair[1]


def gemm_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, dilation)`` (``groups=1``, zero
    padding) computed as im2col + one matrix product.

    Args:
        x: ``(B, C, H, W)`` input, any memory format (``channels_last`` avoids a copy).
        weight: ``(O, C, kh, kw)`` filters.
        bias: optional ``(O,)`` bias.
        stride, padding, dilation: as in :func:`torch.nn.functional.conv2d`
            (non-negative ints or pairs; no string padding).

    Returns:
        ``(B, O, H', W')`` output with ``channels_last`` strides, equal to
        ``F.conv2d`` up to the rounding of the matmul (autocast applies to it as to
        ``conv2d``).

    Raises:
        ValueError: wrong ranks, channel mismatch (grouped convolutions are not
            supported), negative padding, non-positive stride or dilation, or a
            kernel larger than the padded input.

    Example:
        >>> x, w = torch.randn(2, 8, 5, 3), torch.randn(16, 8, 3, 3)
        >>> y = gemm_conv2d(x, w, padding=1)
        >>> torch.allclose(y, F.conv2d(x, w, padding=1), atol=1e-4)
        True
    """
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(
            f"gemm_conv2d needs a (B, C, H, W) input and (O, C, kh, kw) weight, got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    batch, channels, height, width = x.shape
    out_channels, in_channels, kh, kw = weight.shape
    if in_channels != channels:
        raise ValueError(
            f"input has {channels} channels but the weight expects {in_channels} "
            "(grouped convolutions are not supported)"
        )
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    dh, dw = _pair(dilation, "dilation")
    if min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(
            f"stride and dilation must be >= 1 and padding >= 0, got stride={stride}, "
            f"padding={padding}, dilation={dilation}"
        )
    out_h = conv_output_size(height, kh, sh, ph, dh)
    out_w = conv_output_size(width, kw, sw, pw, dw)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"kernel {kh}x{kw} (dilation {dh}x{dw}) is larger than the padded input "
            f"{height + 2 * ph}x{width + 2 * pw}"
        )
    if torch.is_autocast_enabled(x.device.type):
        # cast the weight before its permute: autocast would otherwise cast the permuted
        # (strided) matrix inside the matmul, a slow gather, forward and backward alike
        dtype = torch.get_autocast_dtype(x.device.type)
        weight = weight.to(dtype)
        x = x.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    if kh == kw == 1 and ph == pw == 0:
        rows_s, cols_s = _windows((1, 1), (sh, sw), (1, 1), (out_h, out_w))[0]
        cols = x.permute(0, 2, 3, 1)[:, rows_s, cols_s, :]
    else:
        cols = _Im2Col.apply(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), (out_h, out_w))
    cols = cols.reshape(batch * out_h * out_w, kh * kw * channels)
    matrix = weight.permute(0, 2, 3, 1).reshape(out_channels, kh * kw * channels)
    out = cols @ matrix.t()
    if bias is not None:
        out = out + bias.to(out.dtype)
    return out.view(batch, out_h, out_w, out_channels).permute(0, 3, 1, 2)
