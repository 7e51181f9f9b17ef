"""SemPartsNet, backbones and the model factory (tiny inputs; timm-style over list_models)."""

from __future__ import annotations

import pytest
import torch
import torchvision

from semparts_reid.layers.part_classifier import part_map_loss
from semparts_reid.layers.part_pooling import part_mask_pool
from semparts_reid.models.backbones import ResNetBackbone, list_backbones
from semparts_reid.models.factory import build_model, list_models
from semparts_reid.models.sempartsnet import ReIDOutput, SemPartsNet

H, W = 64, 32  # tiny input: 4x2 feature map with last stride 1


@pytest.fixture(scope="module")
def net18() -> SemPartsNet:
    torch.manual_seed(0)
    return build_model("semparts_resnet18", num_classes=7)


def test_list_models() -> None:
    names = list_models()
    assert names == sorted(names)
    assert {f"{p}_resnet{d}" for p in ("semparts", "ecn") for d in (18, 34, 50)} == set(names)
    assert list_backbones() == ["resnet18", "resnet34", "resnet50"]


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=5)
    assert model.arch == name
    parts = name.startswith("semparts")
    k = 3 if parts else 0
    dim = 2048 if name.endswith("50") else 512
    assert model.feat_dim == dim == model.backbone.out_channels
    out = model.train()(torch.randn(2, 3, H, W))
    assert isinstance(out, ReIDOutput)
    assert out.global_feat.shape == (2, dim) and out.global_raw.shape == (2, dim)
    assert out.part_feats.shape == (2, k, dim) and out.part_raw.shape == (2, k, dim)
    assert out.visibility.shape == (2, k) and out.visibility.dtype == torch.float32
    assert out.id_logits is not None and out.id_logits.shape == (2, 1 + k, 5)
    assert out.num_parts == k
    if parts:
        # the decoder part head predicts at stride 4 (16x8 for a 64x32 input)
        assert out.part_logits is not None and out.part_logits.shape == (2, 4, 16, 8)
        assert out.background_feat is not None and out.background_feat.shape == (2, dim)
    else:
        assert out.part_logits is None and out.background_feat is None
    loss = out.id_logits.logsumexp(-1).sum() + out.global_feat.square().mean()
    loss.backward()
    assert model.backbone.conv1.weight.grad is not None
    assert model.id_classifier is not None and model.id_classifier.weight.grad is not None


def test_eval_vs_train(net18: SemPartsNet) -> None:
    x = torch.randn(3, 3, H, W)
    net18.eval()
    with torch.no_grad():
        a = net18(x)
        fmap, skips = net18.forward_stages(x)
        b = net18.forward_head(fmap, skips=skips)
    assert a.id_logits is None
    torch.testing.assert_close(a.global_feat, b.global_feat)
    torch.testing.assert_close(a.part_feats, b.part_feats)
    net18.train()
    with torch.no_grad():
        c = net18(x)
    assert c.id_logits is not None
    assert not torch.allclose(a.global_feat, c.global_feat)  # batch stats vs running stats
    assert not torch.allclose(a.global_raw, c.global_raw)  # trunk BNs use batch stats too
    net18.eval()


def test_fully_frozen_trunk_is_identical_in_train_mode() -> None:
    model = build_model("semparts_resnet18", num_classes=3, frozen_stages=4)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        train_raw = model.train()(x).global_raw
        eval_raw = model.eval()(x).global_raw
    torch.testing.assert_close(train_raw, eval_raw)


def test_eval_raw_features_are_batch_independent(net18: SemPartsNet) -> None:
    net18.eval()
    x = torch.randn(3, 3, H, W)
    with torch.no_grad():
        full = net18(x)
        single = net18(x[1:2])
    torch.testing.assert_close(full.global_feat[1:2], single.global_feat, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(full.part_feats[1:2], single.part_feats, atol=1e-4, rtol=1e-4)


def test_predicted_masks_pool_the_feature_map(net18: SemPartsNet) -> None:
    net18.eval()
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        fmap, skips = net18.forward_stages(x)
        out = net18.forward_head(fmap, skips=skips)
        assert out.part_logits is not None
        # stride-4 maps are area-pooled to the feature map's grid before pooling
        maps = torch.nn.functional.adaptive_avg_pool2d(out.part_logits.softmax(1), fmap.shape[-2:])
        ref, vis = part_mask_pool(fmap, maps)
    torch.testing.assert_close(out.part_raw, ref[:, 1:])
    torch.testing.assert_close(out.background_feat, ref[:, 0])
    torch.testing.assert_close(out.visibility, vis[:, 1:])


def test_given_label_map_pooling(net18: SemPartsNet) -> None:
    net18.eval()
    x = torch.randn(2, 3, H, W)
    labels = torch.full((2, H, W), 255, dtype=torch.long)
    labels[:, :16] = 1  # head: first feature row
    labels[:, 16:48] = 2  # upper: rows 1-2
    labels[0, 48:] = 3  # lower only in image 0; image 1 leaves it unknown
    with torch.no_grad():
        fmap, skips = net18.forward_stages(x)
        out = net18.forward_head(fmap, part_labels=labels, skips=skips)
    torch.testing.assert_close(out.part_raw[:, 0], fmap[:, :, 0].mean(-1))
    torch.testing.assert_close(out.part_raw[:, 1], fmap[:, :, 1:3].mean((-2, -1)))
    torch.testing.assert_close(out.part_raw[0, 2], fmap[0, :, 3].mean(-1))
    assert torch.count_nonzero(out.part_raw[1, 2]) == 0
    assert out.visibility.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]
    assert out.background_feat is not None and torch.count_nonzero(out.background_feat) == 0
    # soft maps given as (B, K+1, H, W), and (B, 1, H, W) label maps
    soft = torch.rand(2, 4, H, W)
    with torch.no_grad():
        out_soft = net18.forward_head(fmap, part_labels=soft, skips=skips)
        out_1ch = net18.forward_head(fmap, part_labels=labels[:, None], skips=skips)
    torch.testing.assert_close(out_soft.part_raw, part_mask_pool(fmap, soft)[0][:, 1:])
    torch.testing.assert_close(out_1ch.part_raw, out.part_raw)
    with pytest.raises(ValueError, match="part_labels must be"):
        net18(x, part_labels=torch.rand(2, 3, H, W))
    with pytest.raises(ValueError, match="batch size"):
        net18(x, part_labels=labels[:1])


def test_parts_false_baseline() -> None:
    model = build_model("ecn_resnet18").eval()
    out = model(torch.randn(2, 3, H, W))
    assert out.part_feats.shape == (2, 0, 512) and out.visibility.shape == (2, 0)
    assert out.part_logits is None and out.id_logits is None
    assert not any("part" in k for k in model.state_dict())
    with pytest.raises(ValueError, match="no part branch"):
        model(torch.randn(2, 3, H, W), part_labels=torch.zeros(2, H, W, dtype=torch.long))


def test_part_loss_and_detach_masks() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, H, W)
    labels = torch.randint(0, 4, (2, H, W))
    for detach in (False, True):
        model = build_model("semparts_resnet18", num_classes=3, detach_masks=detach)
        out = model(x)
        assert out.id_logits is not None
        out.id_logits.square().sum().backward()
        grad = model.part_classifier.classifier.weight.grad  # type: ignore[union-attr]
        assert (grad is None or grad.abs().sum() == 0) == detach
        part = part_map_loss(model(x).part_logits, labels, class_balance=True)
        assert part.ndim == 0 and torch.isfinite(part)


def test_linear_part_head_is_the_paper_classifier_on_the_feature_map() -> None:
    from semparts_reid.layers.part_classifier import SemanticPartClassifier

    torch.manual_seed(0)
    model = build_model("semparts_resnet18", part_head="linear").eval()
    assert isinstance(model.part_classifier, SemanticPartClassifier)
    assert model.build_kwargs["part_head"] == "linear" and not model.needs_skips
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        out = model(x)
        fmap = model.forward_features(x)
        ref, _ = part_mask_pool(fmap, model.part_classifier(fmap).softmax(1))
    assert out.part_logits is not None and out.part_logits.shape == (2, 4, 4, 2)
    torch.testing.assert_close(out.part_raw, ref[:, 1:])
    with pytest.raises(ValueError, match="part_head must be"):
        build_model("semparts_resnet18", part_head="fpn")


def test_decoder_head_needs_the_skips(net18: SemPartsNet) -> None:
    assert net18.needs_skips
    fmap = net18.forward_features(torch.randn(1, 3, H, W))
    with pytest.raises(ValueError, match="needs the backbone's layer1/layer2"):
        net18.forward_head(fmap)


def test_backbone_stages() -> None:
    bb = ResNetBackbone("resnet18")
    stages = bb.forward_stages(torch.randn(1, 3, H, W))
    assert [tuple(s.shape[1:]) for s in stages] == [
        (64, 16, 8), (128, 8, 4), (256, 4, 2), (512, 4, 2)]
    assert bb.stage_channels == (64, 128, 256, 512)
    assert ResNetBackbone("resnet50").stage_channels[0] == 256


def test_backbone_options_and_torchvision_keys() -> None:
    bb = ResNetBackbone("resnet18", last_stride=2, frozen_stages=1)
    assert bb(torch.randn(1, 3, H, W)).shape == (1, 512, 2, 1) and bb.output_stride == 32
    assert not any(p.requires_grad for p in bb.layer1.parameters())
    assert all(p.requires_grad for p in bb.layer2.parameters())
    bb.train()
    assert not bb.bn1.training and not bb.layer1[0].bn1.training and bb.layer2[0].bn1.training
    tv = torchvision.models.resnet18(weights=None).state_dict()
    tv_keys = {k for k in tv if not k.startswith("fc.")}
    assert set(bb.state_dict()) == tv_keys
    bb.load_state_dict({k: v for k, v in tv.items() if k in tv_keys}, strict=True)
    with pytest.raises(ValueError, match="unknown backbone"):
        ResNetBackbone("vgg16")
    with pytest.raises(ValueError, match="last_stride"):
        ResNetBackbone("resnet18", last_stride=3)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, H, W\)"):
        bb(torch.randn(1, 1, H, W))


def test_factory_errors_and_rebuild() -> None:
    with pytest.raises(ValueError, match="known models: ecn_resnet18"):
        build_model("semparts_vit")
    with pytest.raises(TypeError, match="backbone"):
        build_model("semparts_resnet18", backbone="resnet50")
    model = build_model("semparts_resnet18", num_classes=4, pooling="gem", input_size=(128, 64))
    assert model.data_config == {
        "input_size": (128, 64),
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "interpolation": "bilinear",
    }
    again = build_model(model.arch, **model.build_kwargs)
    assert again.data_config == model.data_config and again.build_kwargs == model.build_kwargs
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in again.state_dict().items()}
    assert "global_pool.p" in shapes
    with pytest.raises(ValueError, match="pooling"):
        build_model("semparts_resnet18", pooling="max")


def test_channels_last_bf16_autocast(net18: SemPartsNet) -> None:
    net18.eval()
    x = torch.randn(2, 3, H, W)
    cl = net18.to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = cl(x.to(memory_format=torch.channels_last))
    for t in (out.global_feat, out.part_feats, out.part_raw):
        assert torch.isfinite(t.float()).all()
    net18.to(memory_format=torch.contiguous_format)
