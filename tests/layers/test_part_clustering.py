"""ISP-style pseudo part labels and the band prior."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semparts_reid.layers.part_clustering import (
    band_labels,
    band_prior,
    batched_kmeans,
    foreground_by_norm,
    pseudo_part_labels,
)
from semparts_reid.layers.parts import BACKGROUND, HEAD, LOWER, UPPER


def planted_feature_maps(batch: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature maps with a planted person (head/upper/lower) at a random position.

    Returns ``(B, C, 24, 8)`` features and the ``(B, 24, 8)`` ground-truth labels. The
    parts' directions are random per batch (not aligned with any band), body pixels have
    large norms, background pixels small ones, and everything is noisy.
    """
    g = torch.Generator().manual_seed(seed)
    channels, height, width = 32, 24, 8
    labels = torch.zeros(batch, height, width, dtype=torch.long)
    for b in range(batch):  # building the synthetic ground truth, not the code under test
        top = int(torch.randint(0, 4, (1,), generator=g))
        left = int(torch.randint(0, 2, (1,), generator=g))
        head_h = int(torch.randint(3, 5, (1,), generator=g))
        upper_h = int(torch.randint(7, 10, (1,), generator=g))
        lower_h = int(torch.randint(6, 24 - top - head_h - upper_h + 1, (1,), generator=g))
        y = top
        labels[b, y : y + head_h, left + 2 : left + 5] = HEAD
        y += head_h
        labels[b, y : y + upper_h, left : left + 6] = UPPER
        y += upper_h
        labels[b, y : y + lower_h, left + 1 : left + 6] = LOWER
    protos = F.normalize(torch.randn(4, channels, generator=g), dim=1)
    scale = torch.tensor([0.3, 3.0, 3.0, 3.0])
    feats = protos[labels] * scale[labels][..., None]  # (B, H, W, C)
    feats = feats + 0.35 * torch.randn(feats.shape, generator=g)
    return feats.permute(0, 3, 1, 2).contiguous(), labels


def test_pseudo_labels_recover_planted_parts() -> None:
    fmap, truth = planted_feature_maps()
    pred = pseudo_part_labels(fmap)
    assert pred.shape == truth.shape and pred.dtype == torch.long
    acc = (pred == truth).float().mean().item()
    assert acc >= 0.9, acc
    # every body part recovered individually, not just the background
    for part in (HEAD, UPPER, LOWER):
        sel = truth == part
        assert (pred[sel] == part).float().mean() >= 0.8


def test_pseudo_labels_output_size_and_degenerate_fallback() -> None:
    fmap, _ = planted_feature_maps(batch=2)
    fmap[1] = 1.0  # constant features: no foreground -> band prior on every pixel
    pred = pseudo_part_labels(fmap, output_size=(48, 16))
    assert pred.shape == (2, 48, 16)
    bands = band_labels(24, 8).repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(pred[1], bands)
    assert (pred[0] == BACKGROUND).any()


def test_foreground_by_norm() -> None:
    fmap = torch.full((2, 4, 6, 4), 0.1)
    fmap[:, :, 2:5, 1:3] = 2.0
    fg = foreground_by_norm(fmap)
    expected = torch.zeros(2, 6, 4, dtype=torch.bool)
    expected[:, 2:5, 1:3] = True
    assert torch.equal(fg, expected)


def test_batched_kmeans_separates_and_ignores_invalid() -> None:
    g = torch.Generator().manual_seed(1)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    idx = torch.randint(0, 3, (4, 60), generator=g)
    pts = centers[idx] + 0.3 * torch.randn(4, 60, 2, generator=g)
    valid = torch.ones(4, 60, dtype=torch.bool)
    valid[:, :5] = False
    init = centers.expand(4, 3, 2) + 1.0
    assign, found = batched_kmeans(pts, init, valid=valid)
    assert (assign[:, :5] == -1).all()
    assert torch.equal(assign[:, 5:], idx[:, 5:])
    torch.testing.assert_close(found, centers.expand(4, 3, 2), atol=0.3, rtol=0)
    with pytest.raises(ValueError, match="init_centers"):
        batched_kmeans(pts, init[:, :, :1])


def test_band_prior_soft_edges() -> None:
    prior = band_prior(40, 3, background=0.2)
    assert prior.shape == (4, 40, 3)
    torch.testing.assert_close(prior.sum(0), torch.ones(40, 3))
    assert torch.allclose(prior[0], torch.full((40, 3), 0.2))
    head = prior[1, :, 0]
    assert head[0] > 0.75 and head[-1] < 1e-3
    assert torch.all(head[1:] <= head[:-1] + 1e-6)  # monotone, soft transition
    mid = ((head > 0.05) & (head < 0.75)).sum()
    assert mid >= 2  # a soft edge spans several rows
    hard = band_prior(40, 3, softness=0.0)
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="edges"):
        band_prior(8, 4, edges=(0.6, 0.3))
    with pytest.raises(ValueError, match="feature_map"):
        pseudo_part_labels(torch.randn(2, 3, 4))
