"""part_map_iou: per-class IoU / mIoU of part maps, against a loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semparts_reid.metrics.part_iou import part_map_confusion, part_map_iou


def _reference(pred: np.ndarray, target: np.ndarray, c: int, ignore: int) -> list[float]:
    out = []
    for k in range(c):
        keep = target != ignore
        inter = np.sum((pred == k) & (target == k) & keep)
        union = np.sum(((pred == k) | (target == k)) & keep)
        out.append(inter / union if union else math.nan)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_maps_equal_a_loop_reference_with_ignored_pixels(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 4, (3, 16, 8), generator=g)
    target[torch.rand(3, 16, 8, generator=g) < 0.2] = 255
    pred = torch.randint(0, 4, (3, 16, 8), generator=g)
    got = part_map_iou(pred, target)
    ref = _reference(pred.numpy(), target.numpy(), 4, 255)
    np.testing.assert_allclose(got.per_class.numpy(), ref)
    assert got.miou == pytest.approx(np.nanmean(ref))
    assert int(got.confusion.sum()) == int((target != 255).sum())


def test_logits_are_upsampled_to_the_target_then_argmaxed() -> None:
    target = torch.zeros(1, 8, 4, dtype=torch.long)
    target[:, :4] = 1  # top half head, bottom half background
    logits = torch.zeros(1, 4, 2, 1)
    logits[0, 1, 0, 0] = 5.0  # head wins the top cell
    logits[0, 0, 1, 0] = 5.0  # background wins the bottom cell
    r = part_map_iou(logits, target)
    assert r.per_class[0] == 1.0 and r.per_class[1] == 1.0
    assert math.isnan(float(r.per_class[2])) and math.isnan(float(r.per_class[3]))
    assert r.miou == 1.0
    assert r.as_dict()["head"] == 1.0 and math.isnan(r.as_dict()["lower"])


def test_label_maps_of_another_size_are_resized_by_nearest() -> None:
    pred = torch.tensor([[[1], [3]]])  # (1, 2, 1)
    target = torch.tensor([[[1, 1], [1, 1], [3, 3], [3, 3]]])  # (1, 4, 2)
    assert part_map_iou(pred, target).miou == 1.0


def test_bad_inputs_are_named() -> None:
    t = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="3 channels; expected num_parts=4"):
        part_map_iou(torch.zeros(2, 3, 4, 4), t)
    with pytest.raises(ValueError, match="integer label map, got floats"):
        part_map_iou(torch.zeros(2, 4, 4), t)
    with pytest.raises(ValueError, match="target must be a \\(B, H, W\\) integer label map"):
        part_map_iou(torch.zeros(2, 4, 4, dtype=torch.long), t.float())
    with pytest.raises(ValueError, match="pred has 1 images, target 2"):
        part_map_iou(torch.zeros(1, 4, 4, dtype=torch.long), t)
    bad = t.clone()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match="label 7 outside \\[0, 4\\)"):
        part_map_confusion(torch.zeros(2, 4, 4, dtype=torch.long), bad)
    all_ignored = torch.full((1, 2, 2), 255)
    assert math.isnan(part_map_iou(torch.zeros(1, 2, 2, dtype=torch.long), all_ignored).miou)
