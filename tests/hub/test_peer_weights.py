"""torchreid and fast-reid weights into SemPartsNet: key maps, detection, what is reported.

torchreid is tested against its real ResNet code (``pip install torchreid``; its package
``__init__`` also needs opencv and gdown, so the ResNet module is loaded from its file when
the package does not import). fast-reid is not on PyPI: its state dicts are built here from
the key names of its source (``fastreid/modeling/backbones/resnet.py``,
``fastreid/layers/{non_local,batch_norm,pooling}.py``, ``fastreid/modeling/heads/
embedding_head.py``), with random values, and every tensor is followed to its place.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from semparts_reid.errors import InputError
from semparts_reid.hub import (
    WEIGHT_FORMATS,
    WeightsMismatchError,
    detect_weights_format,
    load_pretrained,
)
from semparts_reid.models.factory import build_model

STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # ResNet-50: planes, blocks


def _torchreid_resnet() -> ModuleType:
    """torchreid's ``resnet`` module (the real code), or skip when torchreid is absent."""
    spec = importlib.util.find_spec("torchreid")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchreid is not installed (pip install torchreid)")
    try:
        from torchreid.reid.models import resnet  # type: ignore[import-not-found]

        return resnet  # type: ignore[no-any-return]
    except ImportError:  # its package __init__ imports cv2 and gdown
        path = Path(list(spec.submodule_search_locations)[0]) / "reid" / "models" / "resnet.py"
        if not path.is_file():
            pytest.skip(f"torchreid's ResNet is not at {path}")
        mod_spec = importlib.util.spec_from_file_location("_torchreid_resnet", path)
        assert mod_spec is not None and mod_spec.loader is not None
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        return module


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Random values in every parameter and BatchNorm statistic (a trained look)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.05)


def _bn(prefix: str, dim: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.rand(dim, generator=gen) + 0.5,
        f"{prefix}.bias": torch.randn(dim, generator=gen),
        f"{prefix}.running_mean": torch.randn(dim, generator=gen),
        f"{prefix}.running_var": torch.rand(dim, generator=gen) + 0.5,
        f"{prefix}.num_batches_tracked": torch.tensor(1000),
    }


def fastreid_state(
    num_classes: int = 9, *, ibn: bool = False, nl: bool = False, gem: bool = False,
    head: str = "v1.2", seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A fast-reid ResNet-50 ``Baseline`` state dict with its published key names.

    Args:
        ibn: IBN-a blocks in layer1-3 (``bn1.IN`` / ``bn1.BN``), as in ``*_R50-ibn``.
        nl: AGW's non-local blocks, ``NL_2`` (2 x 512) and ``NL_3`` (3 x 1024).
        gem: ``GeneralizedMeanPoolingP`` (a learnable ``heads.pool_layer.p``).
        head: ``"v1.2"`` (``heads.bottleneck.0``, ``heads.weight``), ``"v1.0"``
            (``heads.classifier.weight``) or ``"v0.1"`` (``heads.bnneck``).
    """
    gen = torch.Generator().manual_seed(seed)

    def conv(name: str, out: int, inp: int, k: int) -> dict[str, torch.Tensor]:
        return {name: torch.randn(out, inp, k, k, generator=gen) * 0.05}

    s: dict[str, torch.Tensor] = {**conv("backbone.conv1.weight", 64, 3, 7),
                                  **_bn("backbone.bn1", 64, gen)}
    inplanes = 64
    for i, (planes, blocks, _) in enumerate(STAGES, start=1):
        for b in range(blocks):
            p = f"backbone.layer{i}.{b}"
            s.update(conv(f"{p}.conv1.weight", planes, inplanes, 1))
            if ibn and planes != 512:
                half = planes // 2
                s[f"{p}.bn1.IN.weight"] = torch.rand(half, generator=gen)
                s[f"{p}.bn1.IN.bias"] = torch.randn(half, generator=gen)
                s.update(_bn(f"{p}.bn1.BN", planes - half, gen))
            else:
                s.update(_bn(f"{p}.bn1", planes, gen))
            s.update(conv(f"{p}.conv2.weight", planes, planes, 3))
            s.update(_bn(f"{p}.bn2", planes, gen))
            s.update(conv(f"{p}.conv3.weight", planes * 4, planes, 1))
            s.update(_bn(f"{p}.bn3", planes * 4, gen))
            if b == 0:
                s.update(conv(f"{p}.downsample.0.weight", planes * 4, inplanes, 1))
                s.update(_bn(f"{p}.downsample.1", planes * 4, gen))
            inplanes = planes * 4
    if nl:  # Non_local(C): inter_channels = reduc_ratio // reduc_ratio = 1
        for stage, count, channels in ((2, 2, 512), (3, 3, 1024)):
            for j in range(count):
                p = f"backbone.NL_{stage}.{j}"
                for part in ("g", "theta", "phi"):
                    s.update(conv(f"{p}.{part}.weight", 1, channels, 1))
                    s[f"{p}.{part}.bias"] = torch.randn(1, generator=gen)
                s.update(conv(f"{p}.W.0.weight", channels, 1, 1))
                s[f"{p}.W.0.bias"] = torch.randn(channels, generator=gen)
                s.update(_bn(f"{p}.W.1", channels, gen))
    if gem:
        s["heads.pool_layer.p"] = torch.ones(1) * 3.5
    neck = {"v0.1": "heads.bnneck"}.get(head, "heads.bottleneck.0")
    s.update(_bn(neck, 2048, gen))
    cls = "heads.weight" if head == "v1.2" else "heads.classifier.weight"
    s[cls] = torch.randn(num_classes, 2048, generator=gen)
    return s


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# ------------------------------------------------------------------ torchreid
def test_torchreid_resnet50_gives_the_same_backbone_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A torchreid training checkpoint (numpy ``rank1`` included) fills our backbone so
    that it computes exactly what torchreid's ``featuremaps`` computes."""
    resnet = _torchreid_resnet()
    theirs = resnet.resnet50(num_classes=7, loss="softmax", pretrained=False)
    _randomise(theirs, seed=1)
    theirs.eval()
    path = tmp_path / "model.pth.tar-60"  # torchreid's engine.save_model layout
    torch.save({"state_dict": {f"module.{k}": v for k, v in theirs.state_dict().items()},
                "epoch": 60, "rank1": np.float32(0.87), "optimizer": {}}, path)
    ours = build_model("semparts_resnet50", num_classes=7, last_stride=2).eval()
    part_heads = ours.id_classifier.weight[1:].detach().clone()
    with caplog.at_level(logging.INFO, logger="semparts_reid"):
        report = load_pretrained(ours, path)
    assert report.format == "torchreid" and report.target == "model"
    x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(ours.backbone(x), theirs.featuremaps(x))
    assert torch.equal(ours.id_classifier.weight[0], theirs.classifier.weight)
    assert torch.equal(ours.id_classifier.weight[1:], part_heads)
    assert report.unexpected == ["classifier.bias"]  # our classifiers have no bias
    assert {"global_neck.weight", "part_classifier.classifier.weight"} <= set(report.missing)
    (warning,) = _warnings(caplog)  # the untouched heads are worth a WARNING
    assert "(torchreid layout)" in warning and "id_classifier.weight[0]" in warning


def test_torchreid_classifier_of_another_source_is_skipped_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resnet = _torchreid_resnet()
    theirs = resnet.resnet50(num_classes=751, loss="softmax", pretrained=False)
    ours = build_model("semparts_resnet50", num_classes=12)
    before = ours.id_classifier.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="semparts_reid"):
        report = load_pretrained(ours, theirs.state_dict())
    assert torch.equal(ours.id_classifier.weight, before)
    assert torch.equal(ours.backbone.layer3[2].conv2.weight, theirs.layer3[2].conv2.weight)
    assert {"classifier.weight", "classifier.bias"} == set(report.unexpected)
    assert any("751 classes x 2048) not mapped" in n and "12 classes x 2048" in n
               for n in report.notes), report.notes
    assert "not mapped" in _warnings(caplog)[0]


def test_torchreid_resnet50_fc512_leaves_its_embedding_layer_out() -> None:
    resnet = _torchreid_resnet()
    theirs = resnet.resnet50_fc512(num_classes=5, loss="softmax", pretrained=False)
    ours = build_model("semparts_resnet50", num_classes=5)  # last stride 1, as theirs
    report = load_pretrained(ours, theirs.state_dict())
    assert report.format == "torchreid"
    assert torch.equal(ours.backbone.layer4[0].downsample[0].weight,
                       theirs.layer4[0].downsample[0].weight)
    assert {k for k in report.unexpected if k.startswith("fc.")} == {
        k for k in theirs.state_dict() if k.startswith("fc.")}
    assert "classifier.weight" in report.unexpected  # (5, 512): not our 2048-d feature
    assert any(n.startswith("fc.*") for n in report.notes)


def test_torchreid_resnet50_into_a_resnet18_is_refused() -> None:
    resnet = _torchreid_resnet()
    theirs = resnet.resnet50(num_classes=5, loss="softmax", pretrained=False)
    ours = build_model("semparts_resnet18", num_classes=5)
    before = ours.backbone.conv1.weight.detach().clone()
    with pytest.raises(WeightsMismatchError, match="weight kernels of the model"):
        load_pretrained(ours, theirs.state_dict())
    assert torch.equal(ours.backbone.conv1.weight, before)  # nothing loaded


# ------------------------------------------------------------------ fast-reid
def test_fastreid_bot_every_tensor_lands_in_its_place(tmp_path: Path) -> None:
    state = fastreid_state(num_classes=9)
    path = tmp_path / "market_bot_R50.pth"
    torch.save({"model": state, "iteration": 12000}, path)  # fast-reid's Checkpointer
    ours = build_model("semparts_resnet50", num_classes=9)
    report = load_pretrained(ours, path)
    assert report.format == "fastreid"
    # all but the part classifier (the decoder: 3 laterals, fuse, classifier)
    assert (report.filled, report.counted) == (54, 59)
    own = ours.state_dict()
    for key, value in state.items():
        if key.startswith("backbone."):
            assert torch.equal(own[key], value), key
        elif key.startswith("heads.bottleneck.0."):
            assert torch.equal(own["global_neck." + key.split(".", 3)[3]], value), key
    assert torch.equal(ours.id_classifier.weight[0], state["heads.weight"])
    assert report.unexpected == [] and report.mismatched == []
    assert not [k for k in report.missing if k.startswith(("backbone.", "global_neck."))]


def test_fastreid_agw_ibn_leaves_non_local_and_ibn_out_and_says_so() -> None:
    state = fastreid_state(ibn=True, nl=True, gem=True)
    ours = build_model("semparts_resnet50", num_classes=9, pooling="gem")
    report = load_pretrained(ours, state)
    assert ours.global_pool.p.item() == 3.5  # heads.pool_layer.p (1,) -> global_pool.p ()
    nl = {k for k in state if k.startswith("backbone.NL_")}
    ibn = {k for k in state if ".bn1.IN." in k or ".bn1.BN." in k}
    assert len(nl) == 5 * 13 and len(ibn) == 13 * 7  # 5 NL blocks; 13 IBN blocks
    assert set(report.unexpected) == nl | ibn
    assert "backbone.layer1.0.bn1.weight" in report.missing  # IBN's place stays fresh
    assert torch.equal(ours.backbone.layer4[0].bn1.weight, state["backbone.layer4.0.bn1.weight"])
    notes = " | ".join(report.notes)
    assert "non-local blocks (backbone.NL_*), 65 tensors" in notes
    assert "IBN-a norms (*.bn1.IN/BN), 91 tensors" in notes


def test_fastreid_gem_exponent_without_a_gem_model_is_reported() -> None:
    ours = build_model("semparts_resnet50", num_classes=9)  # average pooling
    report = load_pretrained(ours, fastreid_state(gem=True))
    assert report.unexpected == ["heads.pool_layer.p"]
    assert any("pooling='gem'" in n and "p=3.50" in n for n in report.notes)


@pytest.mark.parametrize("head", ["v1.0", "v0.1"])
def test_older_fastreid_head_names_map_too(head: str) -> None:
    state = fastreid_state(num_classes=4, head=head)
    ours = build_model("semparts_resnet50", num_classes=4)
    report = load_pretrained(ours, state)
    neck = "heads.bnneck" if head == "v0.1" else "heads.bottleneck.0"
    assert torch.equal(ours.global_neck.running_mean, state[f"{neck}.running_mean"])
    assert torch.equal(ours.id_classifier.weight[0], state["heads.classifier.weight"])
    assert report.unexpected == []


def test_fastreid_embedding_reduction_is_not_mapped() -> None:
    state = fastreid_state(num_classes=4)
    gen = torch.Generator().manual_seed(3)
    for key in [k for k in state if k.startswith("heads.bottleneck.0.")]:
        del state[key]
    state["heads.bottleneck.0.weight"] = torch.randn(256, 2048, 1, 1, generator=gen)
    state.update(_bn("heads.bottleneck.1", 256, gen))
    state["heads.weight"] = torch.randn(4, 256, generator=gen)
    ours = build_model("semparts_resnet50", num_classes=4)
    neck = ours.global_neck.weight.detach().clone()
    report = load_pretrained(ours, state)
    assert torch.equal(ours.global_neck.weight, neck)
    assert {k for k in report.unexpected if k.startswith("heads.bottleneck")} == {
        k for k in state if k.startswith("heads.bottleneck")}
    assert any("2048->256 embedding reduction" in n for n in report.notes)


# ------------------------------------------------------------------ formats
def test_format_detection_from_key_names() -> None:
    assert detect_weights_format(fastreid_state()) == "fastreid"
    assert detect_weights_format(["backbone.conv1.weight", "backbone.NL_2.0.g.weight"]) \
        == "fastreid"
    assert detect_weights_format(["conv1.weight", "layer1.0.conv1.weight",
                                  "classifier.weight"]) == "torchreid"
    # torchvision ImageNet weights (fc, no classifier) and our own keep the name matching
    assert detect_weights_format(["conv1.weight", "layer1.0.conv1.weight", "fc.weight"]) \
        == "semparts"
    assert detect_weights_format(build_model("semparts_resnet18").state_dict()) == "semparts"
    assert WEIGHT_FORMATS == ("auto", "semparts", "torchreid", "fastreid")


def test_a_wrong_explicit_format_names_the_keys_that_do_not_fit() -> None:
    ours = build_model("semparts_resnet50", num_classes=9)
    before = ours.backbone.conv1.weight.detach().clone()
    with pytest.raises(InputError, match=r"format='torchreid' .* do not fit \(\d+\): "
                                         r"backbone\.conv1\.weight, backbone\.bn1\.weight"):
        load_pretrained(ours, fastreid_state(), format="torchreid")
    torchreid_keys = {"conv1.weight": torch.zeros(64, 3, 7, 7),
                      "layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1),
                      "classifier.weight": torch.zeros(9, 2048)}
    with pytest.raises(InputError, match=r"format='fastreid' .*: conv1\.weight, "
                                         r"layer1\.0\.conv1\.weight, classifier\.weight"):
        load_pretrained(ours, torchreid_keys, format="fastreid")
    with pytest.raises(InputError, match="format='caffe'"):
        load_pretrained(ours, torchreid_keys, format="caffe")
    assert torch.equal(ours.backbone.conv1.weight, before)


def test_explicit_format_equals_auto() -> None:
    state = fastreid_state(num_classes=3, seed=5)
    a, b = (build_model("semparts_resnet50", num_classes=3) for _ in range(2))
    load_pretrained(a, state)
    load_pretrained(b, state, format="fastreid")
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        if key.startswith(("backbone.", "global_neck.")):
            assert torch.equal(x, y), key
    assert torch.equal(a.id_classifier.weight[0], b.id_classifier.weight[0])


# ------------------------------------------------------------------ reading their files
def _as_numpy1_file(obj: dict[str, object], path: Path) -> Path:
    """``torch.save(obj)`` as numpy 1 pickles it (``numpy.core``, not ``numpy._core``)."""
    import io
    import zipfile

    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, \
            zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(info, data)
    return path


@pytest.mark.parametrize("numpy1", [False, True])
def test_numpy_scalars_in_a_checkpoint_are_read_safely(tmp_path: Path, numpy1: bool) -> None:
    from semparts_reid.hub import load_weights_file

    obj = {"state_dict": {"conv1.weight": torch.ones(2)}, "rank1": np.float32(0.5),
           "mAP": np.float64(0.25), "epoch": 3}
    path = tmp_path / "ckpt.pth"
    _as_numpy1_file(obj, path) if numpy1 else torch.save(obj, path)
    loaded = load_weights_file(path)
    assert loaded["rank1"] == np.float32(0.5) and loaded["mAP"] == 0.25
    assert torch.equal(loaded["state_dict"]["conv1.weight"], torch.ones(2))


def test_numpy_arrays_stay_refused(tmp_path: Path) -> None:
    """Only scalars and dtypes are allowed: an array's rebuilder is still refused."""
    from semparts_reid.hub import load_weights_file

    path = tmp_path / "array.pth"
    torch.save({"w": torch.ones(2), "extra": np.zeros(3)}, path)
    with pytest.raises(InputError, match=r"array\.pth is not a readable checkpoint"):
        load_weights_file(path)
