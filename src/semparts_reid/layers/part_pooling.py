"""Mask-weighted part pooling: one batched matmul over the flattened spatial dims.

Each part ``k`` of image ``b`` is pooled as the mask-weighted mean of the feature map

.. math::

    f_{b,k} = \\frac{\\sum_{p} P_{b,k,p} \\, M_{b,:,p}}{\\sum_{p} P_{b,k,p}}

where ``p`` runs over the ``h*w`` positions of the feature map ``M`` and ``P`` are the
part masks resized to ``h x w``. The masks are normalised first (in float32) and the
pooling of all parts of all images is then one ``torch.bmm`` of the normalised masks
``(B, K, h*w)`` with the features ``(B, h*w, C)`` (for NCHW-contiguous features the same
product is taken as ``(B, C, h*w) @ (B, h*w, K)``, so that the features' gradient is
produced in their own layout). The feature map is never expanded to
``(B, K, C, h, w)`` and there is no Python loop over parts, so time and memory grow like
``B*K*h*w + B*C*h*w`` instead of ``B*K*C*h*w``.

Resizing the masks to the feature map size:

* **soft** masks (float confidences, e.g. softmax maps) are resized bilinearly
  (``align_corners=False``);
* **hard** masks (one-hot maps, integer or bool dtype, or ``hard=True``) are resized by
  ``"area"`` (default: each low-resolution cell gets the fraction of its input pixels that
  belong to the part, so a one-hot map stays a partition of unity and thin parts are not
  dropped) or by ``"nearest"`` (each cell takes the label of one input pixel).

A part whose mask sums to zero on the feature map is *empty*: its pooled feature is the
zero vector and its visibility is 0; no NaN or inf appears, also for float16/bfloat16
features, because the normalisation is accumulated in float32.

Visibility rule (per image and part): a part is visible when

* it **wins the per-pixel argmax** over the ``K`` given masks at some position of the
  resized map (with a strictly positive mask value; ties count for every tied part), or
* its **mass** - the mean of its resized mask over the ``h*w`` positions, i.e. the fraction
  of the map it covers - is at least ``visibility_threshold`` (``None`` disables this
  second rule). The default ``0.05`` is about a third of a typical head region.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PartMaskPooling", "labels_to_masks", "part_mask_pool", "resize_masks"]

_HARD_RESIZE_MODES = ("area", "nearest")
_NORM_EPS = 1e-12


def _check_inputs(feature_map: Tensor, masks: Tensor) -> None:
    if not isinstance(feature_map, Tensor):
        raise TypeError(f"feature_map must be a torch.Tensor, got {type(feature_map).__name__}")
    if not isinstance(masks, Tensor):
        raise TypeError(f"masks must be a torch.Tensor, got {type(masks).__name__}")
    if feature_map.ndim != 4:
        raise ValueError(
            f"feature_map must have shape (B, C, h, w), got {tuple(feature_map.shape)}"
        )
    if not feature_map.is_floating_point():
        raise TypeError(f"feature_map must be a floating tensor, got dtype {feature_map.dtype}")
    if masks.ndim != 4:
        raise ValueError(
            f"masks must have shape (B, K, H, W), got {tuple(masks.shape)}; "
            "convert a (B, H, W) label map with labels_to_masks() first"
        )
    if masks.shape[0] != feature_map.shape[0]:
        raise ValueError(
            f"masks batch size {masks.shape[0]} does not match feature_map batch size "
            f"{feature_map.shape[0]}"
        )
    if masks.shape[1] < 1:
        raise ValueError(f"masks must hold at least one part, got shape {tuple(masks.shape)}")
    if masks.is_complex() or feature_map.is_complex():
        raise TypeError("complex tensors are not supported")


def labels_to_masks(labels: Tensor, num_classes: int, *, ignore_index: int | None = 255) -> Tensor:
    """Turn an integer label map into one-hot masks.

    Args:
        labels: ``(B, H, W)`` integer label map with values in ``[0, num_classes)`` or
            ``ignore_index``.
        num_classes: number of mask channels ``K``.
        ignore_index: label of unknown pixels; they get an all-zero mask column (belong to
            no part). ``None``: every value must be a valid class.

    Returns:
        ``(B, K, H, W)`` float32 one-hot masks.

    Raises:
        ValueError: wrong shape or a label outside the valid range.

    Example:
        >>> labels_to_masks(torch.tensor([[[0, 1], [255, 2]]]), 3)[0, :, 1, 0]
        tensor([0., 0., 0.])
    """
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.ndim != 3:
        raise ValueError(f"labels must have shape (B, H, W), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    labels = labels.long()
    valid = (labels >= 0) & (labels < num_classes)
    if ignore_index is not None:
        ignored = labels == ignore_index
        bad = ~(valid | ignored)
    else:
        ignored = torch.zeros_like(valid)
        bad = ~valid
    if bool(bad.any()):
        offending = torch.unique(labels[bad])[:8].tolist()
        raise ValueError(
            f"labels hold values {offending} outside [0, {num_classes}) "
            f"and not equal to ignore_index={ignore_index}"
        )
    safe = labels.masked_fill(ignored, 0)
    onehot = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).to(torch.float32)
    return onehot * (~ignored).unsqueeze(1).to(torch.float32)


def resize_masks(
    masks: Tensor, size: tuple[int, int], *, hard: bool, hard_resize: str = "area"
) -> Tensor:
    """Resize ``(B, K, H, W)`` masks to ``size = (h, w)``.

    Soft masks are resized bilinearly; hard masks by ``hard_resize`` (``"area"`` or
    ``"nearest"``). Integer/bool masks are converted to float32 first. A mask that
    already has the target size is returned as is (after the dtype conversion).
    """
    if hard_resize not in _HARD_RESIZE_MODES:
        raise ValueError(f"hard_resize must be one of {_HARD_RESIZE_MODES}, got {hard_resize!r}")
    if not masks.is_floating_point():
        masks = masks.to(torch.float32)
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    if not hard:
        return F.interpolate(masks, size=size, mode="bilinear", align_corners=False)
    if hard_resize == "area":
        return F.adaptive_avg_pool2d(masks, size)
    return F.interpolate(masks, size=size, mode="nearest")


def _flatten_spatial(feature_map: Tensor) -> Tensor:
    """View ``(B, C, h, w)`` as ``(B, h*w, C)`` without copying.

    ``permute(0, 2, 3, 1)`` followed by merging ``h`` and ``w`` is a view both for the
    default (NCHW-contiguous) layout, where it becomes a transposed matrix per image, and
    for ``channels_last``, where it becomes a contiguous ``(h*w, C)`` matrix; ``bmm``
    consumes either stride pattern directly.
    """
    return feature_map.permute(0, 2, 3, 1).flatten(1, 2)


def part_mask_pool(
    feature_map: Tensor,
    masks: Tensor,
    *,
    hard: bool | None = None,
    hard_resize: str = "area",
    visibility_threshold: float | None = 0.05,
) -> tuple[Tensor, Tensor]:
    """Pool one feature vector per part as ``sum(P * M) / sum(P)``.

    Args:
        feature_map: ``(B, C, h, w)`` floating features (any memory format;
            ``channels_last`` is consumed without a copy).
        masks: ``(B, K, H, W)`` part masks: soft confidences (float) or hard one-hot maps.
            They are resized to ``(h, w)`` (see module docs). Values must be >= 0.
        hard: treat ``masks`` as hard one-hot maps. ``None`` (default): hard when the dtype
            is integer or bool, soft when it is floating.
        hard_resize: ``"area"`` (default) or ``"nearest"``, used for hard masks only.
        visibility_threshold: minimum mask mass (mean over the ``h*w`` map) that makes a
            part visible even when it never wins the argmax; ``None`` disables the rule.

    Returns:
        ``part_feats`` ``(B, K, C)`` in the feature dtype (zero for empty parts) and
        ``visibility`` ``(B, K)`` float32 (1.0 visible, 0.0 not).

    Raises:
        TypeError: non-tensor inputs, non-floating features.
        ValueError: wrong ranks, batch mismatch, bad ``hard_resize`` or threshold.

    Example:
        >>> fmap = torch.arange(4.0).view(1, 1, 2, 2)
        >>> masks = torch.tensor([[[[1, 1], [0, 0]], [[0, 0], [0, 0]]]])
        >>> feats, vis = part_mask_pool(fmap, masks)
        >>> feats[0, :, 0], vis[0]
        (tensor([0.5000, 0.0000]), tensor([1., 0.]))
    """
    _check_inputs(feature_map, masks)
    if visibility_threshold is not None and not visibility_threshold > 0:
        raise ValueError(f"visibility_threshold must be > 0 or None, got {visibility_threshold}")
    if hard is None:
        hard = not masks.is_floating_point()
    batch, _, height, width = feature_map.shape
    num_parts = masks.shape[1]

    # normalisation in (at least) float32: sum(P) can underflow/overflow in half precision
    m = resize_masks(masks, (height, width), hard=hard, hard_resize=hard_resize)
    acc_dtype = torch.promote_types(m.dtype, torch.float32)  # float64 stays float64
    m32 = m.to(acc_dtype).reshape(batch, num_parts, height * width)
    mass = m32.sum(dim=-1, keepdim=True)  # (B, K, 1)
    weights = m32 / mass.clamp_min(_NORM_EPS)  # empty part -> all-zero row

    if not torch.is_autocast_enabled(feature_map.device.type):
        weights = weights.to(feature_map.dtype)  # under autocast, bmm picks the dtype
    if feature_map.is_contiguous():
        # NCHW: (B, C, hw) @ (B, hw, K); the gradient of the features then comes out
        # NCHW-contiguous as well (no transposing copy when it is accumulated)
        pooled = torch.bmm(feature_map.flatten(2), weights.transpose(1, 2))
        part_feats = pooled.transpose(1, 2).contiguous()
    else:
        # channels_last (or other strides): (B, K, hw) @ (B, hw, C), a view for channels_last
        part_feats = torch.bmm(weights, _flatten_spatial(feature_map))

    with torch.no_grad():
        peak = m32.amax(dim=1, keepdim=True)
        wins = ((m32 >= peak) & (m32 > 0)).any(dim=-1)  # (B, K)
        visible = wins
        if visibility_threshold is not None:
            frac = mass.squeeze(-1) / float(height * width)
            visible = visible | ((frac >= visibility_threshold) & (frac > 0))
        visibility = visible.to(torch.float32)
    return part_feats, visibility


class PartMaskPooling(nn.Module):
    """Module form of :func:`part_mask_pool` (no parameters).

    Args:
        hard_resize: ``"area"`` or ``"nearest"``: how hard masks are resized.
        visibility_threshold: mass threshold of the visibility rule (``None`` disables it).

    Shape:
        - feature_map: ``(B, C, h, w)``
        - masks: ``(B, K, H, W)``
        - output: ``(B, K, C)`` part features and ``(B, K)`` visibility.

    Example:
        >>> pool = PartMaskPooling()
        >>> feats, vis = pool(torch.randn(2, 8, 6, 4), torch.rand(2, 3, 24, 16))
        >>> feats.shape, vis.shape
        (torch.Size([2, 3, 8]), torch.Size([2, 3]))
    """

    def __init__(
        self, *, hard_resize: str = "area", visibility_threshold: float | None = 0.05
    ) -> None:
        super().__init__()
        if hard_resize not in _HARD_RESIZE_MODES:
            raise ValueError(
                f"hard_resize must be one of {_HARD_RESIZE_MODES}, got {hard_resize!r}"
            )
        if visibility_threshold is not None and not visibility_threshold > 0:
            raise ValueError(
                f"visibility_threshold must be > 0 or None, got {visibility_threshold}"
            )
        self.hard_resize = hard_resize
        self.visibility_threshold = visibility_threshold

    def forward(
        self, feature_map: Tensor, masks: Tensor, *, hard: bool | None = None
    ) -> tuple[Tensor, Tensor]:
        return part_mask_pool(
            feature_map,
            masks,
            hard=hard,
            hard_resize=self.hard_resize,
            visibility_threshold=self.visibility_threshold,
        )

    def extra_repr(self) -> str:
        return f"hard_resize={self.hard_resize!r}, visibility_threshold={self.visibility_threshold}"
