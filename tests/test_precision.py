"""Tests for the shared precision policy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semparts_reid import precision as prec
from semparts_reid.precision import (
    PrecisionPolicy,
    has_native_bf16,
    resolve_device,
    resolve_precision,
    to_memory_format,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(prec.ENV_PRECISION, raising=False)
    monkeypatch.delenv(prec.ENV_NATIVE_BF16, raising=False)


def test_fp32_forced_on_cpu() -> None:
    policy = resolve_precision("cpu", "fp32")
    assert policy.device == torch.device("cpu")
    assert policy.amp_dtype is None
    assert policy.channels_last is True
    assert policy.needs_grad_scaler is False
    assert policy.name == "fp32"
    assert not policy.enabled


@pytest.mark.parametrize("native, expected", [("1", torch.bfloat16), ("0", None)])
def test_auto_on_cpu_follows_native_bf16(
    monkeypatch: pytest.MonkeyPatch, native: str, expected: torch.dtype | None
) -> None:
    monkeypatch.setenv(prec.ENV_NATIVE_BF16, native)
    policy = resolve_precision("cpu", "auto")
    assert policy.amp_dtype == expected
    assert policy.channels_last


def test_auto_matches_hardware_probe() -> None:
    policy = resolve_precision("cpu")
    assert (policy.amp_dtype == torch.bfloat16) == has_native_bf16("cpu")


def test_env_overrides_auto_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prec.ENV_PRECISION, "fp32")
    monkeypatch.setenv(prec.ENV_NATIVE_BF16, "1")
    assert resolve_precision("cpu", "auto").amp_dtype is None
    assert resolve_precision("cpu", "bf16").amp_dtype == torch.bfloat16


def test_bad_env_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prec.ENV_PRECISION, "fp8")
    with pytest.raises(ValueError, match="SEMPARTS_REID_PRECISION"):
        resolve_precision("cpu")


def test_fp16_needs_scaler() -> None:
    policy = resolve_precision("cpu", "fp16")
    assert policy.amp_dtype == torch.float16
    assert policy.needs_grad_scaler
    assert policy.grad_scaler().is_enabled()
    assert not resolve_precision("cpu", "fp32").grad_scaler().is_enabled()


@pytest.mark.parametrize("bad", ["fp8", "half", "", 16])
def test_bad_precision_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("cpu", bad)  # type: ignore[arg-type]


def test_channels_last_override() -> None:
    assert resolve_precision("cpu", "fp32", channels_last=False).channels_last is False


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda:0")


def test_autocast_context_changes_matmul_dtype() -> None:
    a, b = torch.randn(4, 8), torch.randn(8, 4)
    with resolve_precision("cpu", "bf16").autocast():
        assert (a @ b).dtype == torch.bfloat16
    with resolve_precision("cpu", "fp32").autocast():
        assert (a @ b).dtype == torch.float32


def test_memory_format_helpers() -> None:
    x = torch.randn(2, 3, 5, 4)
    y = to_memory_format(x, True)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert to_memory_format(y, False).is_contiguous()
    v = torch.randn(3, 4)
    assert to_memory_format(v, True) is v
    conv = to_memory_format(nn.Conv2d(3, 4, 3), True)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(TypeError, match="nn.Module or a Tensor"):
        to_memory_format([1, 2], True)  # type: ignore[type-var]


def test_policy_prepare_and_run_bf16_close_to_fp32() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3)).eval()
    x = torch.randn(2, 3, 16, 16)
    ref = model(x)
    policy = resolve_precision("cpu", "bf16")
    model = policy.prepare_module(model)
    xin = policy.prepare_input(x)
    assert xin.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), policy.autocast():
        out = model(xin)
    assert out.dtype == torch.bfloat16
    cos = torch.nn.functional.cosine_similarity(out.float().flatten(1), ref.flatten(1))
    assert bool((cos > 0.99).all())


def test_policy_is_frozen_and_printable() -> None:
    policy = PrecisionPolicy(torch.device("cpu"), None, True, False)
    with pytest.raises(AttributeError):
        policy.channels_last = False  # type: ignore[misc]
    assert "fp32" in str(policy) and "channels_last" in str(policy)
