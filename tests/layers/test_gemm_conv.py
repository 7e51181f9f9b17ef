"""gemm_conv2d: F.conv2d (groups=1, zero padding) as im2col + one matrix product."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semparts_reid.layers.gemm_conv import gemm_conv2d

CASES = [  # (C, O, kernel, stride, padding, dilation, in_hw)
    (5, 7, 3, 1, 1, 1, (5, 3)),
    (4, 6, 3, 2, 1, 1, (10, 5)),
    (4, 6, 1, 1, 0, 1, (5, 3)),
    (4, 6, 1, 2, 0, 1, (9, 6)),
    (3, 2, (3, 1), (2, 1), (1, 0), 1, (7, 4)),
    (3, 4, 3, 1, 2, 2, (6, 5)),
    (3, 4, 7, 2, 3, 1, (8, 6)),
    (2, 3, 3, 1, 0, 1, (3, 3)),
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_forward_and_gradients_equal_conv2d(case, bias: bool, channels_last: bool) -> None:
    c, o, k, s, p, d, hw = case
    gen = torch.Generator().manual_seed(0)
    k2 = (k, k) if isinstance(k, int) else k
    x = torch.randn(3, c, *hw, generator=gen, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(o, c, *k2, generator=gen, dtype=torch.float64)
    b = torch.randn(o, generator=gen, dtype=torch.float64) if bias else None
    leaves = [t.requires_grad_() for t in (x, w, b) if t is not None]
    ref = F.conv2d(x, w, b, s, p, d)
    out = gemm_conv2d(x, w, b, s, p, d)
    assert out.shape == ref.shape
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref)
    grad_out = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    ref_grads = torch.autograd.grad(ref, leaves, grad_out)
    our_grads = torch.autograd.grad(out, leaves, grad_out)
    for ours, theirs in zip(our_grads, ref_grads):
        torch.testing.assert_close(ours, theirs)


def test_bf16_matches_conv2d_to_rounding() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 256, 5, 3).contiguous(memory_format=torch.channels_last)
    w = torch.randn(512, 256, 3, 3) * 0.02
    ref = F.conv2d(x, w, padding=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = gemm_conv2d(x.bfloat16(), w, padding=1)  # autocast casts the weight
    assert out.dtype == torch.bfloat16
    assert float((out.float() - ref).abs().max() / ref.abs().max()) < 0.02


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, match",
    [
        ((2, 4, 5, 5), (3, 2, 3, 3), {}, "grouped"),
        ((4, 5, 5), (3, 4, 3, 3), {}, r"\(B, C, H, W\)"),
        ((2, 4, 5, 5), (3, 4, 3, 3), {"padding": -1}, "padding >= 0"),
        ((2, 4, 5, 5), (3, 4, 3, 3), {"stride": 0}, "stride"),
        ((2, 4, 2, 2), (3, 4, 3, 3), {}, "larger than the padded input"),
        ((2, 4, 5, 5), (3, 4, 3, 3), {"stride": (1, 1, 1)}, "pair"),
    ],
)
def test_bad_inputs_are_named(x_shape, w_shape, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gemm_conv2d(torch.zeros(x_shape), torch.zeros(w_shape), **kwargs)


def test_bf16_input_gradient_is_as_accurate_as_conv2d() -> None:
    """The bf16 input gradient is rounded twice (the column gradients, then their fp32
    sum over the overlapping offsets): within 2x of oneDNN's bf16 error (measured 1.6x),
    0.2 % of the gradient's mean magnitude."""
    torch.manual_seed(0)
    x = torch.randn(4, 256, 5, 3).bfloat16()
    w = (torch.randn(128, 256, 3, 3) * 0.05).bfloat16()
    g = torch.randn(4, 128, 5, 3).bfloat16()
    exact = torch.nn.grad.conv2d_input(x.shape, w.double(), g.double(), padding=1)
    ours = x.clone().requires_grad_()
    gemm_conv2d(ours, w, padding=1).backward(g)
    theirs = x.clone().requires_grad_()
    F.conv2d(theirs, w, padding=1).backward(g)
    assert ours.grad is not None and theirs.grad is not None
    assert ours.grad.dtype == torch.bfloat16

    def err(grad: torch.Tensor) -> float:
        return float((grad.double() - exact).abs().mean() / exact.abs().mean())

    assert err(ours.grad) <= 2 * err(theirs.grad), (err(ours.grad), err(theirs.grad))
    assert err(ours.grad) < 5e-3
