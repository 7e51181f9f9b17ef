"""SmallMapConv2d: CPU bf16 convolutions on small maps through one GEMM, the rest as before."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from semparts_reid.cpu_convs import (
    GEMM_MAX_POSITIONS,
    GEMM_MIN_CHANNELS,
    OneDNNSafeConv2d,
    SmallMapConv2d,
    guard_cpu_bf16_convs,
)
from semparts_reid.layers import gemm_conv
from semparts_reid.models.factory import build_model
from semparts_reid.precision import SmallMapConv2d as FromPrecision


def _pair(conv: nn.Conv2d) -> tuple[nn.Conv2d, nn.Conv2d]:
    guarded = copy.deepcopy(conv)
    guard_cpu_bf16_convs(guarded)
    return conv, guarded


def _count_gemm_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = gemm_conv.gemm_conv2d

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr("semparts_reid.cpu_convs.gemm_conv2d", counting)
    return calls


def test_the_name_stays_importable_from_precision() -> None:
    assert FromPrecision is SmallMapConv2d


@pytest.mark.parametrize("stride, in_hw", [(1, (5, 3)), (2, (10, 5)), (2, (4, 2))])
def test_small_maps_under_bf16_take_the_gemm_route(monkeypatch, stride, in_hw) -> None:
    torch.manual_seed(0)
    plain, conv = _pair(nn.Conv2d(GEMM_MIN_CHANNELS, 64, 3, stride, 1, bias=True))
    assert type(conv) is SmallMapConv2d
    calls = _count_gemm_calls(monkeypatch)
    x = torch.randn(4, GEMM_MIN_CHANNELS, *in_hw).contiguous(memory_format=torch.channels_last)
    x32 = x.clone().requires_grad_()
    ref = plain(x32)
    xb = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(xb)
    assert calls[0] == 1
    assert out.dtype == torch.bfloat16 and out.shape == ref.shape
    assert out.is_contiguous(memory_format=torch.channels_last)
    out_f, ref_f = out.detach().float(), ref.detach()
    assert float((out_f - ref_f).abs().max() / ref_f.abs().max()) < 0.02
    g = torch.randn(ref.shape)
    ref.backward(g)
    out.float().backward(g)
    for ours, theirs in ((xb.grad, x32.grad), (conv.weight.grad, plain.weight.grad),
                         (conv.bias.grad, plain.bias.grad)):
        assert float((ours - theirs).abs().max() / theirs.abs().max()) < 0.02


def test_large_maps_fp32_and_other_convs_are_untouched(monkeypatch) -> None:
    torch.manual_seed(0)
    plain, conv = _pair(nn.Conv2d(GEMM_MIN_CHANNELS, 32, 3, 1, 1))
    calls = _count_gemm_calls(monkeypatch)
    big = torch.randn(2, GEMM_MIN_CHANNELS, 8, 5)  # 40 output positions > the limit
    assert 8 * 5 > GEMM_MAX_POSITIONS
    small = torch.randn(2, GEMM_MIN_CHANNELS, 5, 3)
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(plain(big), conv(big))
        assert torch.equal(plain(small), conv(small))  # fp32: the plain conv
    assert calls[0] == 0


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(GEMM_MIN_CHANNELS - 1, 8, 3, 1, 1),  # too few channels
        nn.Conv2d(GEMM_MIN_CHANNELS, 8, 3, 1, 1, groups=2),  # grouped
        nn.Conv2d(GEMM_MIN_CHANNELS, 8, 3, 1, "same"),  # string padding
        nn.Conv2d(GEMM_MIN_CHANNELS, 8, 3, 1, 1, padding_mode="reflect"),
    ],
)
def test_convs_the_gemm_cannot_compute_are_not_converted(conv: nn.Conv2d) -> None:
    guard_cpu_bf16_convs(conv)
    assert type(conv) is nn.Conv2d


def test_a_strided_one_column_output_is_right_on_either_route() -> None:
    """The geometry of the oneDNN defect: both routes give the fp32 result."""
    torch.manual_seed(0)
    for channels, cls in ((GEMM_MIN_CHANNELS, SmallMapConv2d), (128, OneDNNSafeConv2d)):
        plain, conv = _pair(nn.Conv2d(channels, 64, 3, 2, 1))
        assert type(conv) is cls
        x = torch.randn(4, channels, 4, 2).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            ref = plain(x)
            for _ in range(5):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    y = conv(x)
                assert torch.isfinite(y).all()
                assert float((y.float() - ref).abs().max() / ref.abs().max()) < 0.02


def test_a_bf16_training_step_is_as_close_to_fp32_as_the_plain_model() -> None:
    """The demo's model and input size: the GEMM route's loss and gradients are as
    close to the fp32 step as oneDNN's bf16 convolutions are."""
    torch.manual_seed(0)
    model = build_model("semparts_resnet18", num_classes=5, input_size=(80, 40)).train()
    model = model.to(memory_format=torch.channels_last)
    guarded, fp32 = copy.deepcopy(model), copy.deepcopy(model)
    assert guard_cpu_bf16_convs(guarded) > 0
    assert any(type(m) is SmallMapConv2d for m in guarded.modules())
    x = torch.randn(8, 3, 80, 40).contiguous(memory_format=torch.channels_last)

    def step(net: nn.Module, bf16: bool) -> tuple[float, torch.Tensor]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = out.id_logits.float().logsumexp(-1).mean() + out.global_feat.float().pow(2).mean()
        loss.backward()
        return float(loss), torch.cat([p.grad.flatten() for p in net.parameters()
                                       if p.grad is not None])

    (loss_ref, ref), (loss_plain, plain), (loss_gemm, gemm) = (
        step(fp32, False), step(model, True), step(guarded, True))
    assert abs(loss_gemm - loss_ref) <= max(2 * abs(loss_plain - loss_ref), 1e-3)
    cos_plain = float(F.cosine_similarity(plain, ref, dim=0))
    cos_gemm = float(F.cosine_similarity(gemm, ref, dim=0))
    assert cos_gemm > cos_plain - 0.02, (cos_gemm, cos_plain)
