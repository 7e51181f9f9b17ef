"""build_model(pretrained=...) through semparts_reid.hub.load_pretrained."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torchvision

from semparts_reid import hub
from semparts_reid.hub import WeightsMismatchError, load_pretrained
from semparts_reid.hub import download as hub_download
from semparts_reid.models.factory import build_model


def test_pretrained_none_is_random_init() -> None:
    torch.manual_seed(0)
    a = build_model("ecn_resnet18")
    torch.manual_seed(1)
    b = build_model("ecn_resnet18", pretrained=None)
    assert not torch.equal(a.backbone.conv1.weight, b.backbone.conv1.weight)


def test_pretrained_full_checkpoint_path(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = build_model("semparts_resnet18", num_classes=4)
    path = tmp_path / "ckpt.pth"
    torch.save({"format": "semparts-reid/1", "arch": src.arch, "model": src.state_dict()}, path)
    torch.manual_seed(1)
    dst = build_model("semparts_resnet18", num_classes=4, pretrained=str(path))
    for key, value in src.state_dict().items():
        assert torch.equal(value, dst.state_dict()[key]), key


def test_pretrained_torchvision_state_dict_goes_to_backbone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18_tv.pth"
    torch.save({f"module.{k}": v for k, v in tv.state_dict().items()}, path)
    model = build_model("semparts_resnet18", pretrained=path)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    assert torch.equal(model.backbone.bn1.running_var, tv.bn1.running_var)


def test_imagenet_resnet50_fills_the_whole_backbone(caplog: pytest.LogCaptureFixture) -> None:
    """The real case of the fill rule: torchvision ResNet-50 keys into semparts_resnet50."""
    tv = torchvision.models.resnet50(weights=None)
    model = build_model("semparts_resnet50")
    with caplog.at_level(logging.INFO, logger="semparts_reid.hub"):
        report = load_pretrained(model, tv.state_dict())
    assert report.target == "backbone"
    assert (report.filled, report.counted, report.fill) == (53, 53, 1.0)
    assert report.unexpected == ["fc.weight", "fc.bias"] and not report.missing
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert torch.equal(model.backbone.layer4[2].conv3.weight, tv.layer4[2].conv3.weight)


def test_weights_of_another_depth_raise_unless_not_strict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18_tv.pth"
    torch.save(tv.state_dict(), path)
    with pytest.raises(WeightsMismatchError, match=r"resnet18_tv\.pth: the weights fill only "
                       r"9 of the 53 weight kernels of the backbone \(17%"):
        build_model("semparts_resnet50", pretrained=path)
    model = build_model("semparts_resnet50")
    report = load_pretrained(model, path, strict=False)
    assert report.fill < 0.5 and torch.equal(model.backbone.conv1.weight, tv.conv1.weight)


@pytest.fixture()
def offline_imagenet18(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> torch.nn.Module:
    """torchvision resnet18 (random weights) in an offline cache, where "imagenet" finds it."""
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.setenv(hub.ENV_OFFLINE, "1")
    cache = hub.get_cache_dir()
    cache.mkdir(parents=True)
    torch.save(tv.state_dict(), cache / hub.get_pretrained_cfg("resnet18.tv_in1k").filename)
    monkeypatch.setattr(hub_download, "check_hash", lambda *a, **k: None)  # not the real file
    return tv


def test_pretrained_true_means_imagenet(offline_imagenet18: torch.nn.Module) -> None:
    torch.manual_seed(1)
    model = build_model("semparts_resnet18", pretrained=True)
    tv = offline_imagenet18
    assert torch.equal(model.backbone.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)


def test_pretrained_false_is_random_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "empty"))
    monkeypatch.setenv(hub.ENV_OFFLINE, "1")  # any attempt to load would raise DownloadError
    torch.manual_seed(0)
    a = build_model("ecn_resnet18", pretrained=False)
    torch.manual_seed(0)
    b = build_model("ecn_resnet18")
    assert torch.equal(a.backbone.conv1.weight, b.backbone.conv1.weight)


@pytest.mark.parametrize("bad", [1, 0.5, ["imagenet"]])
def test_pretrained_of_another_type_lists_what_is_accepted(bad: object) -> None:
    with pytest.raises(TypeError, match=r"pretrained=.*expected None/False .*True or "
                       r"'imagenet'.*registry name.*path.*URL.*state dict"):
        build_model("ecn_resnet18", pretrained=bad)  # type: ignore[arg-type]
