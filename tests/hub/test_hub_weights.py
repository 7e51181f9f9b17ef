"""Weight loading: reading weights files, matching keys, the fill rule, the old names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from semparts_reid import hub
from semparts_reid.errors import InputError
from semparts_reid.hub import (
    ChecksumError,
    WeightsMismatchError,
    get_pretrained_cfg,
    load_pretrained,
    load_weights_file,
)
from semparts_reid.hub import download as hub_download


class _Trunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)


class _Net(nn.Module):
    arch = "semparts_resnet18"

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.backbone = _Trunk()
        self.head = nn.Linear(4, classes)


def test_load_checkpoint_dict_strips_module_prefix(tmp_path: Path) -> None:
    src = _Net()
    ckpt = {"format": "semparts-reid/1", "arch": "semparts_resnet18", "model_kwargs": {},
            "data_config": {},
            "model": {f"module.{k}": v for k, v in src.state_dict().items()}}
    path = tmp_path / "ckpt.pth"
    torch.save(ckpt, path)
    dst = _Net()
    report = load_pretrained(dst, path)
    assert report.ok and report.target == "model" and report.strict
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v)


def test_strict_mismatch_raises_one_summary() -> None:
    state = _Net(classes=7).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["backbone.bn1.bias"]
    dst = _Net(classes=5)
    before = dst.head.weight.clone()
    with pytest.raises(RuntimeError) as info:
        load_pretrained(dst, state)
    msg = str(info.value)
    assert "missing in weights (1): backbone.bn1.bias" in msg
    assert "unexpected in weights (1): extra.weight" in msg
    assert "head.weight (7, 4) vs model (5, 4)" in msg
    assert torch.equal(dst.head.weight, before)  # nothing loaded
    report = load_pretrained(dst, state, strict=False)
    assert not report.ok and "backbone.conv1.weight" in report.loaded
    assert torch.equal(dst.head.weight, before)


def test_torchvision_style_weights_go_into_backbone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trunk = _Trunk()
    state = {**trunk.state_dict(), "fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}
    path = tmp_path / "resnet-like.pth"
    torch.save(state, path)
    dst = _Net()
    with caplog.at_level(logging.INFO, logger="semparts_reid.hub"):
        report = load_pretrained(dst, path)
    assert report.target == "backbone" and not report.strict
    assert report.unexpected == ["fc.weight", "fc.bias"]
    assert (report.filled, report.counted, report.fill) == (1, 1, 1.0)
    assert torch.equal(dst.backbone.conv1.weight, trunk.conv1.weight)
    # the ImageNet classifier has no counterpart in a backbone: expected, so not a warning
    assert [r.levelno for r in caplog.records if "resnet-like" in r.getMessage()] == [logging.INFO]


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}.weight" for i in range(n)]


def test_lenient_load_warns_with_counts_and_first_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state: dict[str, torch.Tensor] = dict(_Net(classes=7).state_dict())
    del state["backbone.bn1.bias"]
    for key in _names("extra", 8):
        state[key] = torch.zeros(1)
    dst = _Net(classes=5)
    with caplog.at_level(logging.INFO, logger="semparts_reid.hub"):
        report = load_pretrained(dst, state, strict=False)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    msg = warnings[0].getMessage()
    assert "missing in weights (1): backbone.bn1.bias" in msg
    # counts, the first five names, and how many more there are
    assert "unexpected in weights (8): " + ", ".join(_names("extra", 5)) + ", ... (+3)" in msg
    assert "shape mismatch (2): head.weight (7, 4) vs model (5, 4), head.bias" in msg
    assert "filled 1 of 2 weight kernels, 50%" in msg
    assert report.fill == 0.5 and "backbone.conv1.weight" in report.loaded


def test_backbone_weights_of_another_architecture_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trunk = _Trunk()
    other = nn.Conv2d(3, 4, 5)  # same key, another kernel size: another architecture
    state = {**trunk.state_dict(), "conv1.weight": other.weight.detach().clone(),
             "fc.weight": torch.zeros(10, 4)}
    path = tmp_path / "other_arch.pth"
    torch.save(state, path)
    dst = _Net()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(WeightsMismatchError) as info:
        load_pretrained(dst, path)
    msg = str(info.value)
    assert str(path) in msg and "0 of the 1 weight kernels of the backbone (0%" in msg
    assert "backbone.conv1.weight" not in msg and "conv1.weight (4, 3, 5, 5)" in msg
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    for key, value in dst.state_dict().items():
        assert torch.equal(value, before[key]), key  # nothing was loaded
    # the caller can insist: what matches is loaded, with a warning
    with caplog.at_level(logging.INFO, logger="semparts_reid.hub"):
        report = load_pretrained(dst, path, strict=False)
    assert report.fill == 0.0 and "bn1.running_var" in report.loaded
    assert torch.equal(dst.backbone.bn1.running_var, trunk.bn1.running_var)
    assert [r.levelno for r in caplog.records if "other_arch" in r.getMessage()] == [
        logging.WARNING
    ]


def test_load_matching_weights_fill_rule_counts_kernels() -> None:
    dst = _Net(classes=5)
    half = {"backbone.conv1.weight": torch.zeros(4, 3, 3, 3), "head.weight": torch.zeros(9, 4)}
    report = hub.load_matching_weights(dst, half)  # 1 of 2 kernels: exactly half is enough
    assert (report.filled, report.counted) == (1, 2)
    assert torch.equal(dst.backbone.conv1.weight, torch.zeros(4, 3, 3, 3))
    bn_only = {k: v for k, v in _Net().state_dict().items() if k.startswith("backbone.bn1")}
    with pytest.raises(WeightsMismatchError, match="<state dict>: the weights fill only 0 of"):
        hub.load_matching_weights(dst, bn_only)  # BatchNorm vectors alone do not count
    # a module without kernels counts its tensors (the num_batches_tracked counter aside)
    report = hub.load_matching_weights(nn.BatchNorm1d(3), {"weight": torch.ones(3)},
                                       strict=False)
    assert (report.filled, report.counted) == (1, 4)
    with pytest.raises(RuntimeError, match="missing in weights"):
        hub.load_matching_weights(nn.BatchNorm1d(3), {"weight": torch.ones(3)}, strict=True)


def test_imagenet_from_offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trunk = _Trunk()
    cfg = get_pretrained_cfg("resnet18.tv_in1k")
    cache = tmp_path / "home" / "weights"
    cache.mkdir(parents=True)
    torch.save(trunk.state_dict(), cache / cfg.filename)
    monkeypatch.setenv(hub.ENV_OFFLINE, "1")
    # the cached file is not torchvision's, so the hash prefix check must refuse it
    with pytest.raises(ChecksumError, match="f37072fd"):
        load_pretrained(_Net(), "imagenet")
    monkeypatch.setattr(hub_download, "check_hash", lambda *a, **k: None)
    report = load_pretrained(_Net(), "imagenet")
    assert report.source == "resnet18.tv_in1k" and report.target == "backbone"


def test_load_pretrained_type_errors() -> None:
    with pytest.raises(TypeError, match="nn.Module"):
        load_pretrained("model", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no tensors"):
        load_pretrained(_Net(), {"model": {"a": 1}})
    with pytest.raises(TypeError, match="registry name"):
        load_pretrained(_Net(), True)  # type: ignore[arg-type]


def test_load_weights_file_reads_state_dicts_and_checkpoints(tmp_path: Path) -> None:
    state = _Net().state_dict()
    plain, ckpt = tmp_path / "plain.pth", tmp_path / "ckpt.pth"
    torch.save(state, plain)
    torch.save({"format": "semparts-reid/1", "arch": "semparts_resnet18", "model": state}, ckpt)
    loaded = load_weights_file(plain)
    assert set(loaded) == set(state) and torch.equal(loaded["head.weight"], state["head.weight"])
    assert load_weights_file(ckpt)["arch"] == "semparts_resnet18"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_weights_file(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="junk.pth is not a readable checkpoint"):
        load_weights_file(junk)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(InputError, match="expected a state dict or a checkpoint dict"):
        load_weights_file(listed)
