"""The oneDNN bf16 width-1 convolution defect and the non-finite feature guard.

On CPUs with AMX, PyTorch's bf16 convolutions run oneDNN's ``brg_conv_fwd`` AMX kernel,
which returns garbage (NaN, 0, ~1e37, different on every call) for a strided convolution
whose output is one column wide. ``OneDNNSafeConv2d`` runs exactly those calls in fp32;
``forward_with_fp32_fallback`` makes sure a bad feature never leaves silently.
"""

from __future__ import annotations

import copy
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from semparts_reid.cpu_convs import GEMM_MIN_CHANNELS
from semparts_reid.inference import FeatureExtractor, extract_split
from semparts_reid.models.factory import build_model
from semparts_reid.precision import (
    NonFiniteFeatureError,
    OneDNNSafeConv2d,
    SmallMapConv2d,
    bad_feature_rows,
    forward_with_fp32_fallback,
    guard_cpu_bf16_convs,
    resolve_precision,
)

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _relerr(a: torch.Tensor, ref: torch.Tensor) -> float:
    if not torch.isfinite(a).all():
        return float("inf")
    return float((a.float() - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("in_hw, stride", [((4, 2), 2), ((8, 1), 2), ((6, 2), (1, 2))])
def test_safe_conv_matches_fp32_where_the_kernel_breaks(in_hw: tuple[int, int], stride) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(128, 256, 3, stride, 1, bias=True).eval()
    x = torch.randn(4, 128, *in_hw).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = conv(x)
        assert ref.shape[-1] == 1  # the defect's geometry: one output column
        guard_cpu_bf16_convs(conv)
        assert type(conv) is OneDNNSafeConv2d
        for _ in range(10):  # the defect reads stale memory: it differs call to call
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = conv(x)
            assert y.dtype == torch.bfloat16  # what autocast would have returned
            assert y.is_contiguous(memory_format=torch.channels_last)
            assert _relerr(y, ref) < 0.02


def test_safe_conv_is_the_plain_conv_elsewhere() -> None:
    torch.manual_seed(0)
    plain = nn.Conv2d(16, 32, 3, 2, 1).eval()
    safe = copy.deepcopy(plain)
    guard_cpu_bf16_convs(safe)
    x = torch.randn(2, 16, 8, 8)
    with torch.inference_mode():
        assert torch.equal(plain(x), safe(x))  # fp32: untouched
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a, b = plain(x), safe(x)  # output width 4: the bf16 kernel is used as is
        assert a.dtype == b.dtype == torch.bfloat16
        assert torch.equal(a, b)


def test_guard_converts_strided_wide_and_small_map_convs_and_keeps_weights() -> None:
    torch.manual_seed(0)
    model = build_model("semparts_resnet18", input_size=(32, 16)).eval()
    keys = list(model.state_dict())
    n = guard_cpu_bf16_convs(model)
    safe = [m for m in model.modules() if type(m) is OneDNNSafeConv2d]
    gemm = [m for m in model.modules() if type(m) is SmallMapConv2d]
    assert n == len(safe) + len(gemm) and safe and gemm
    assert all(m.stride[1] > 1 and m.kernel_size[1] > 1 for m in safe)
    assert all(m.in_channels >= GEMM_MIN_CHANNELS for m in gemm)
    plain = [m for m in model.modules() if type(m) is nn.Conv2d]
    assert plain and all(m.in_channels < GEMM_MIN_CHANNELS for m in plain)
    assert all(m.stride[1] == 1 or m.kernel_size[1] == 1 for m in plain)
    assert list(model.state_dict()) == keys
    assert guard_cpu_bf16_convs(model) == 0  # idempotent
    clone = copy.deepcopy(model)  # class swap survives copies
    assert sum(isinstance(m, OneDNNSafeConv2d) for m in clone.modules()) == n


def test_guard_without_gemm_converts_only_the_defect_geometry() -> None:
    model = build_model("semparts_resnet18", input_size=(32, 16)).eval()
    n = guard_cpu_bf16_convs(model, small_map_gemm=False)
    assert not any(type(m) is SmallMapConv2d for m in model.modules())
    assert n == sum(type(m) is OneDNNSafeConv2d for m in model.modules()) > 0


def test_prepare_module_guards_only_under_cpu_bf16() -> None:
    conv = nn.Conv2d(8, 8, 3, 2, 1)
    resolve_precision("cpu", "fp32").prepare_module(conv)
    assert type(conv) is nn.Conv2d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resolve_precision("cpu", "bf16").prepare_module(conv)
    assert type(conv) is OneDNNSafeConv2d


def _load_bench_extract():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_extract  # noqa: PLC0415
    finally:
        sys.path.remove(str(BENCH))
    return bench_extract


def test_issue_probe_small_crops_give_unit_finite_features_every_time() -> None:
    """The probe from the bug report: 32x16 crops, bf16, batches of 4, many trials."""
    bench = _load_bench_extract()
    crops = bench.make_crops(6, (32, 16), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fp32 fallback may be needed
        ref = None
        for _ in range(12):
            torch.manual_seed(0)
            model = build_model("semparts_resnet18", input_size=(32, 16)).eval()
            ex = FeatureExtractor(model, device="cpu", batch_size=4, precision="bf16",
                                  progress=False, fuse_bn=True)
            f = np.asarray(ex(crops, bgr=True, return_numpy=True))
            assert np.isfinite(f).all()
            np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-4)
            if ref is None:
                torch.manual_seed(0)
                model32 = build_model("semparts_resnet18", input_size=(32, 16)).eval()
                ref = np.asarray(FeatureExtractor(model32, device="cpu", batch_size=4,
                                                  precision="fp32", progress=False)(
                    crops, bgr=True, return_numpy=True))
            assert (f * ref).sum(1).min() > 0.99


@dataclass
class _Out:
    global_feat: torch.Tensor


class _BreaksUnderAutocast(nn.Module):
    """Returns NaN rows under autocast, correct features in fp32; counts its calls."""

    data_config = {"input_size": (16, 8), "mean": (0.5,) * 3, "std": (0.25,) * 3}
    feat_dim = 3

    def __init__(self, broken_always: bool = False, zero: bool = False) -> None:
        super().__init__()
        self.broken_always, self.zero, self.calls = broken_always, zero, 0

    def forward(self, x: torch.Tensor) -> _Out:
        self.calls += 1
        g = x.float().mean((2, 3)) + 1.0
        if self.broken_always or torch.is_autocast_enabled("cpu"):
            g = torch.zeros_like(g) if self.zero else g.clone().index_fill_(
                0, torch.tensor([0]), float("nan"))
        return _Out(g)


def test_bad_feature_rows() -> None:
    f = torch.tensor([[1.0, 0.0], [0.0, 0.0], [float("nan"), 1.0], [float("inf"), 0.0]])
    assert bad_feature_rows(f).tolist() == [False, True, True, True]
    assert bad_feature_rows(torch.ones(2, 3, 4)).tolist() == [False, False]


def test_fallback_recomputes_the_batch_in_fp32_with_a_warning() -> None:
    model = _BreaksUnderAutocast()
    policy = resolve_precision("cpu", "bf16")
    with pytest.warns(RuntimeWarning, match="recomputed this batch in fp32"):
        out = forward_with_fp32_fallback(policy, model, torch.rand(4, 3, 16, 8),
                                         lambda o: o.global_feat, label="batch 0")
    assert torch.isfinite(out.global_feat).all() and model.calls == 2


def test_fallback_raises_naming_the_batch_when_fp32_is_bad_too() -> None:
    for policy_name in ("bf16", "fp32"):
        model = _BreaksUnderAutocast(broken_always=True, zero=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(NonFiniteFeatureError, match=r"batch 7.*row\(s\) \[0, 1\]"):
                forward_with_fp32_fallback(resolve_precision("cpu", policy_name), model,
                                           torch.rand(2, 3, 16, 8), lambda o: o.global_feat,
                                           label="batch 7")


def test_extractor_never_returns_a_bad_feature_silently() -> None:
    crops = [np.full((16, 8, 3), 100 + i, np.uint8) for i in range(5)]
    ex = FeatureExtractor(_BreaksUnderAutocast(), device="cpu", precision="bf16",
                          batch_size=2, progress=False)
    with pytest.warns(RuntimeWarning, match="FeatureExtractor batch 0"):
        f = np.asarray(ex(crops))
    assert np.isfinite(f).all() and np.allclose(np.linalg.norm(f, axis=1), 1)
    broken = FeatureExtractor(_BreaksUnderAutocast(broken_always=True), device="cpu",
                              precision="fp32", batch_size=2, progress=False)
    with pytest.raises(NonFiniteFeatureError, match="FeatureExtractor batch 0"):
        broken(crops)


def test_the_evaluation_path_falls_back_too(tmp_path: Path) -> None:
    """extract_split (behind evaluate_model, the trainer and the CLI) goes through the guard."""
    from PIL import Image

    records = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((16, 8, 3), 60 * i, np.uint8)).save(path)
        records.append((str(path), i, 0))
    ex = FeatureExtractor(_BreaksUnderAutocast(), device="cpu", precision="bf16",
                          batch_size=4, progress=False)
    with pytest.warns(RuntimeWarning, match="FeatureExtractor batch 0"):
        feats = extract_split(ex, records, parts=False)
    assert torch.isfinite(feats.global_feat).all()
