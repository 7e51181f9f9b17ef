"""build_model(pretrained=<local path>) through semparts_reid.hub.load_pretrained."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision

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
