"""The weight registry, the hub package's surface, and the one ImageNet normalisation."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from semparts_reid import hub
from semparts_reid.hub import (
    PretrainedCfg,
    get_pretrained_cfg,
    list_pretrained,
    register_pretrained,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "semparts_reid"


def test_registry_has_torchvision_resnets() -> None:
    names = list_pretrained(kind="backbone")
    assert {"resnet18.tv_in1k", "resnet34.tv_in1k", "resnet50.tv_in1k"} <= set(names)
    cfg = get_pretrained_cfg("resnet50.tv_in1k")
    assert cfg.url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    assert cfg.sha256 == "0676ba61" and cfg.filename == "resnet50-0676ba61.pth"
    assert get_pretrained_cfg("resnet18.tv_in1k").sha256 == "f37072fd"
    assert get_pretrained_cfg("resnet34.tv_in1k").sha256 == "b627a593"
    for name in names:
        cfg = get_pretrained_cfg(name)
        assert cfg.url.endswith(f"-{cfg.sha256}.pth")
        assert cfg.licence and cfg.data_config["mean"] == hub.IMAGENET_MEAN
    with pytest.raises(KeyError, match="resnet18.tv_in1k"):
        get_pretrained_cfg("nope")
    with pytest.raises(ValueError, match="kind"):
        list_pretrained(kind="weird")


def test_imagenet_resolves_by_arch() -> None:
    assert hub.resolve_pretrained_name("imagenet", "semparts_resnet50") == "resnet50.tv_in1k"
    assert hub.resolve_pretrained_name("imagenet", "semparts_resnet18") == "resnet18.tv_in1k"
    assert hub.resolve_pretrained_name("./x.pth", "semparts_resnet18") is None
    with pytest.raises(ValueError, match="arch"):
        hub.resolve_pretrained_name("imagenet", "vit_b16")


def test_register_needs_full_sha_for_reid() -> None:
    cfg = PretrainedCfg("t.reid", "http://x/y.pth", "abcdef12", "semparts_resnet18", "reid",
                        {}, "MIT")
    with pytest.raises(ValueError, match="full 64-digit"):
        register_pretrained(cfg)
    with pytest.raises(ValueError, match="already registered"):
        register_pretrained(get_pretrained_cfg("resnet18.tv_in1k"))


def test_register_validates_kind_and_hash_and_can_overwrite() -> None:
    base = get_pretrained_cfg("resnet18.tv_in1k")
    kind: Any = "other"
    bad_kind = PretrainedCfg("t.kind", base.url, base.sha256, "resnet18", kind, {}, "MIT")
    with pytest.raises(ValueError, match="kind='other'"):
        register_pretrained(bad_kind)
    bad_hash = PretrainedCfg("t.hash", base.url, "XYZ", "resnet18", "backbone", {}, "MIT")
    with pytest.raises(ValueError, match="sha256='XYZ'"):
        register_pretrained(bad_hash)
    assert "t.kind" not in list_pretrained() and "t.hash" not in list_pretrained()
    assert register_pretrained(base, overwrite=True) is base


# the names ``semparts_reid.hub`` offered when it was one module; they must stay importable
HUB_NAMES = [
    "ENV_HOME", "ENV_OFFLINE", "IMAGENET_MEAN", "IMAGENET_STD", "MIN_FILL", "ChecksumError",
    "DownloadError", "LoadReport", "PretrainedCfg", "StrictWeightsError",
    "WeightsMismatchError", "download_weights", "file_sha256", "get_cache_dir",
    "get_pretrained_cfg", "list_pretrained", "load_matching_weights",
    "load_pretrained", "register_pretrained", "resolve_pretrained_name",
]  # fmt: skip


@pytest.mark.parametrize("name", HUB_NAMES)
def test_every_name_of_the_old_hub_module_still_imports(name: str) -> None:
    assert name in hub.__all__
    assert getattr(hub, name) is not None


def test_the_top_level_names_are_the_hub_ones() -> None:
    import semparts_reid

    for name in ("download_weights", "load_pretrained", "list_pretrained"):
        assert getattr(semparts_reid, name) is getattr(hub, name)


def test_hub_modules_import_no_private_name_from_each_other() -> None:
    found = []
    for path in sorted((SRC / "hub").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                found += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert found == []


def test_imagenet_normalisation_is_defined_once() -> None:
    from semparts_reid.hub.constants import IMAGENET_MEAN, IMAGENET_STD
    from semparts_reid.models import sempartsnet

    for name in ("IMAGENET_MEAN", "IMAGENET_STD"):
        pattern = re.compile(rf"^\s*{name}\s*(:[^=]*)?=", re.MULTILINE)
        defined = [
            str(p.relative_to(SRC)) for p in sorted(SRC.rglob("*.py"))
            if pattern.search(p.read_text(encoding="utf-8"))
        ]
        assert defined == ["hub/constants.py"], f"{name} defined in {defined}"
    # the model's defaults and the registry's data configs are the same objects
    assert sempartsnet.IMAGENET_MEAN is IMAGENET_MEAN is hub.IMAGENET_MEAN
    assert sempartsnet.IMAGENET_STD is IMAGENET_STD is hub.IMAGENET_STD
    assert get_pretrained_cfg("resnet50.tv_in1k").data_config["std"] is IMAGENET_STD
    assert sempartsnet.default_data_config()["mean"] == IMAGENET_MEAN
