"""PartMaskPooling / part_mask_pool against the naive broadcast formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semparts_reid.layers.part_pooling import (
    PartMaskPooling,
    _flatten_spatial,
    labels_to_masks,
    part_mask_pool,
    resize_masks,
)


def naive_pool(fmap: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The broadcast reference: (B,1,C,h,w) * (B,K,1,h,w) summed, divided by sum(P)."""
    num = (fmap[:, None] * masks[:, :, None]).sum(dim=(-2, -1))
    den = masks.sum(dim=(-2, -1))[..., None]
    return torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(num))


def test_matches_broadcast_reference_same_size() -> None:
    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(3, 16, 6, 4, generator=g)
    masks = torch.rand(3, 4, 6, 4, generator=g)
    feats, vis = part_mask_pool(fmap, masks)
    torch.testing.assert_close(feats, naive_pool(fmap, masks), atol=1e-5, rtol=1e-5)
    assert feats.shape == (3, 4, 16) and vis.shape == (3, 4)
    assert vis.dtype == torch.float32


def test_soft_masks_are_resized_bilinearly() -> None:
    g = torch.Generator().manual_seed(1)
    fmap = torch.randn(2, 8, 6, 4, generator=g)
    masks = torch.rand(2, 3, 24, 16, generator=g)
    feats, _ = part_mask_pool(fmap, masks)
    resized = F.interpolate(masks, size=(6, 4), mode="bilinear", align_corners=False)
    torch.testing.assert_close(feats, naive_pool(fmap, resized), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["area", "nearest"])
def test_hard_masks_resize_modes(mode: str) -> None:
    g = torch.Generator().manual_seed(2)
    fmap = torch.randn(2, 8, 6, 4, generator=g)
    labels = torch.randint(0, 4, (2, 24, 16), generator=g)
    onehot_int = F.one_hot(labels, 4).permute(0, 3, 1, 2)  # int64 -> hard
    feats, _ = part_mask_pool(fmap, onehot_int, hard_resize=mode)
    ref_masks = F.interpolate(onehot_int.float(), size=(6, 4), mode=mode)
    torch.testing.assert_close(feats, naive_pool(fmap, ref_masks), atol=1e-5, rtol=1e-5)
    # the same one-hot map as float is soft unless hard=True is passed
    feats_hard, _ = part_mask_pool(fmap, onehot_int.float(), hard=True, hard_resize=mode)
    torch.testing.assert_close(feats_hard, feats)
    feats_soft, _ = part_mask_pool(fmap, onehot_int.float())
    assert not torch.allclose(feats_soft, feats)


def test_area_resize_keeps_partition_of_unity() -> None:
    labels = torch.randint(0, 4, (2, 24, 16))
    masks = resize_masks(labels_to_masks(labels, 4), (6, 4), hard=True)
    torch.testing.assert_close(masks.sum(1), torch.ones(2, 6, 4))


def test_hard_vs_soft_agree_for_aligned_blocks() -> None:
    # masks that are constant on every 4x4 block give identical results either way
    g = torch.Generator().manual_seed(3)
    fmap = torch.randn(2, 8, 6, 4, generator=g)
    small = F.one_hot(torch.randint(0, 3, (2, 6, 4), generator=g), 3).permute(0, 3, 1, 2)
    big = small.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    hard, vis_hard = part_mask_pool(fmap, big)
    same, vis_same = part_mask_pool(fmap, small.float())
    torch.testing.assert_close(hard, same)
    torch.testing.assert_close(vis_hard, vis_same)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_empty_parts_give_zero_and_invisible(dtype: torch.dtype) -> None:
    fmap = (torch.randn(2, 8, 6, 4) * 100).to(dtype)
    masks = torch.rand(2, 3, 6, 4)
    masks[0, 1] = 0.0
    masks[1, 2] = 0.0
    feats, vis = part_mask_pool(fmap, masks.to(dtype))
    assert torch.isfinite(feats.float()).all()
    assert feats.dtype == dtype
    assert torch.count_nonzero(feats[0, 1]) == 0 and torch.count_nonzero(feats[1, 2]) == 0
    assert vis[0, 1] == 0 and vis[1, 2] == 0
    assert vis[0, 0] == 1 and vis[1, 1] == 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_float32(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(4)
    fmap = torch.randn(2, 32, 8, 4, generator=g)
    # tiny masses: sum(P) in half precision would underflow to 0 (NaN/inf before the fix)
    masks = torch.rand(2, 3, 8, 4, generator=g) * 1e-6
    feats, _ = part_mask_pool(fmap.to(dtype), masks.to(dtype))
    ref = naive_pool(fmap.double(), masks.to(dtype).double()).float()
    assert torch.isfinite(feats.float()).all()
    tol = 2e-2 if dtype == torch.bfloat16 else 2e-3
    torch.testing.assert_close(feats.float(), ref, atol=tol, rtol=tol)


def test_autocast_bfloat16() -> None:
    fmap = torch.randn(2, 16, 6, 4)
    masks = torch.rand(2, 4, 6, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats, _ = part_mask_pool(fmap, masks)
    torch.testing.assert_close(feats.float(), naive_pool(fmap, masks), atol=3e-2, rtol=3e-2)


def test_channels_last_is_consumed_without_copy() -> None:
    g = torch.Generator().manual_seed(5)
    fmap = torch.randn(2, 16, 6, 4, generator=g)
    cl = fmap.to(memory_format=torch.channels_last)
    flat = _flatten_spatial(cl)
    assert flat.data_ptr() == cl.data_ptr() and flat.is_contiguous()
    flat_default = _flatten_spatial(fmap)
    assert flat_default.data_ptr() == fmap.data_ptr()  # a transposed view, no copy either
    masks = torch.rand(2, 4, 6, 4, generator=g)
    torch.testing.assert_close(part_mask_pool(cl, masks)[0], part_mask_pool(fmap, masks)[0])


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_feature_gradient_keeps_the_input_layout(memory_format: torch.memory_format) -> None:
    fmap = torch.randn(2, 16, 6, 4).to(memory_format=memory_format).requires_grad_()
    masks = torch.rand(2, 4, 6, 4)
    part_mask_pool(fmap, masks)[0].sum().backward()
    assert fmap.grad is not None
    assert fmap.grad.is_contiguous(memory_format=memory_format)
    torch.testing.assert_close(fmap.grad.sum((-2, -1)), torch.full((2, 16), 4.0))


def test_non_contiguous_features() -> None:
    fmap = torch.randn(2, 6, 16, 4).transpose(1, 2)  # neither NCHW nor NHWC contiguous
    masks = torch.rand(2, 3, 6, 4)
    torch.testing.assert_close(part_mask_pool(fmap, masks)[0], naive_pool(fmap, masks))


def test_gradcheck_features_and_masks() -> None:
    g = torch.Generator().manual_seed(6)
    fmap = torch.randn(2, 3, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    masks = (torch.rand(2, 3, 8, 6, generator=g, dtype=torch.float64) + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda f, m: part_mask_pool(f, m)[0], (fmap, masks))
    cl = fmap.detach().to(memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda f, m: part_mask_pool(f, m)[0], (cl, masks))


def test_gradients_flow_to_both_inputs() -> None:
    fmap = torch.randn(2, 8, 6, 4, requires_grad=True)
    masks = torch.rand(2, 3, 6, 4, requires_grad=True)
    part_mask_pool(fmap, masks)[0].square().sum().backward()
    assert fmap.grad is not None and fmap.grad.abs().sum() > 0
    assert masks.grad is not None and masks.grad.abs().sum() > 0


def test_visibility_rules() -> None:
    fmap = torch.randn(1, 4, 4, 4)
    masks = torch.zeros(1, 3, 4, 4)
    masks[0, 0] = 0.9  # wins everywhere
    masks[0, 1] = 0.1  # never wins, mass fraction 0.1
    masks[0, 2, 0, 0] = 0.01  # never wins, tiny mass
    _, vis = part_mask_pool(fmap, masks, visibility_threshold=0.05)
    assert vis.tolist() == [[1.0, 1.0, 0.0]]
    _, vis = part_mask_pool(fmap, masks, visibility_threshold=None)
    assert vis.tolist() == [[1.0, 0.0, 0.0]]
    masks[0, 2, 0, 0] = 0.95  # wins one pixel
    _, vis = part_mask_pool(fmap, masks, visibility_threshold=None)
    assert vis.tolist() == [[1.0, 0.0, 1.0]]


def test_module_and_labels_to_masks() -> None:
    pool = PartMaskPooling(hard_resize="nearest", visibility_threshold=None)
    assert "nearest" in repr(pool)
    labels = torch.tensor([[[0, 1], [255, 1]]])
    masks = labels_to_masks(labels, 3)
    assert masks.dtype == torch.float32 and masks[0, :, 1, 0].sum() == 0
    fmap = torch.arange(4.0).view(1, 1, 2, 2)
    feats, vis = pool(fmap, masks, hard=True)
    assert feats[0, :, 0].tolist() == [0.0, 2.0, 0.0]
    assert vis.tolist() == [[1.0, 1.0, 0.0]]


@pytest.mark.parametrize(
    ("fmap", "masks", "exc", "match"),
    [
        (torch.randn(2, 3, 4), torch.rand(2, 3, 4, 4), ValueError, "feature_map"),
        (torch.randn(2, 3, 4, 4), torch.rand(2, 4, 4), ValueError, "masks"),
        (torch.randn(2, 3, 4, 4), torch.rand(3, 2, 4, 4), ValueError, "batch size"),
        (torch.randn(2, 3, 4, 4), torch.rand(2, 0, 4, 4), ValueError, "at least one"),
        (torch.ones(2, 3, 4, 4, dtype=torch.long), torch.rand(2, 2, 4, 4), TypeError, "floating"),
        ([1.0], torch.rand(2, 2, 4, 4), TypeError, "feature_map"),
    ],
)
def test_input_errors(fmap, masks, exc, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=match):
        part_mask_pool(fmap, masks)


def test_option_errors() -> None:
    with pytest.raises(ValueError, match="hard_resize"):
        PartMaskPooling(hard_resize="bicubic")
    with pytest.raises(ValueError, match="visibility_threshold"):
        part_mask_pool(torch.randn(1, 2, 2, 2), torch.rand(1, 2, 2, 2), visibility_threshold=0)
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        labels_to_masks(torch.tensor([[[0, 7]]]), 3)
    with pytest.raises(TypeError, match="integer"):
        labels_to_masks(torch.zeros(1, 2, 2), 3)
