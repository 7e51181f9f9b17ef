"""Conv + batch-norm folding: same outputs, fewer batch norms, user modules untouched."""

from __future__ import annotations

import copy

import numpy as np
import torch
from inference_helpers import StandIn, random_crops
from torch import nn

from semparts_reid.inference import FeatureExtractor, fuse_resnet_conv_bn


def _randomise_bn(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, so folding matters
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def test_folding_keeps_outputs(tiny_model: nn.Module) -> None:
    _randomise_bn(tiny_model)
    fused = copy.deepcopy(tiny_model)
    n = fuse_resnet_conv_bn(fused.backbone)
    assert n == 1 + 8 * 2 + 3  # stem, two convs per BasicBlock, three downsamples
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.backbone.modules())
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        a, b = tiny_model(x), fused(x)
    torch.testing.assert_close(b.global_feat, a.global_feat, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(b.part_feats, a.part_feats, atol=1e-4, rtol=1e-4)
    assert fuse_resnet_conv_bn(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))) == 0


def test_extractor_fuses_a_copy_of_user_models(tiny_model: nn.Module) -> None:
    _randomise_bn(tiny_model)
    crops = random_crops(4)
    plain = FeatureExtractor(tiny_model, device="cpu", precision="fp32")
    assert plain.model is tiny_model  # default for user modules: no folding, no copy
    fused = FeatureExtractor(tiny_model, device="cpu", precision="fp32", fuse_bn=True)
    assert fused.model is not tiny_model
    assert isinstance(tiny_model.backbone.bn1, nn.BatchNorm2d)
    assert isinstance(fused.model.backbone.bn1, nn.Identity)
    np.testing.assert_allclose(fused(crops), plain(crops), atol=1e-4)


def test_models_without_resnet_layout_are_left_alone(stand_in: StandIn) -> None:
    ext = FeatureExtractor(stand_in, device="cpu", fuse_bn=True)
    assert ext(random_crops(2, lo=10, hi=30)).shape == (2, 8)
