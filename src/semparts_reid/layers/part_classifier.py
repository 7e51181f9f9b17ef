"""Semantic part classifier (BN + 1x1 conv -> K+1 part logits) and its pixel-wise loss.

Channel 0 of the logits is background, channels 1..K the body parts (head, upper, lower
for the default K = 3), following :mod:`semparts_reid.layers.parts`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .parts import IGNORE_INDEX, NUM_PART_CLASSES

__all__ = [
    "SemanticPartClassifier",
    "confident_part_labels",
    "part_dice_loss", "part_map_loss",
    "resize_labels",
]


class SemanticPartClassifier(nn.Module):
    """Per-pixel part classifier: ``BatchNorm2d`` then a ``1x1`` convolution.

    Args:
        in_channels: channels ``C`` of the feature map.
        num_classes: number of part classes ``K + 1`` including background (default 4:
            background, head, upper, lower).

    Shape:
        - input: ``(B, C, h, w)`` feature map
        - output of :meth:`forward`: ``(B, K+1, h, w)`` logits
        - output of :meth:`part_maps`: ``(B, K+1, h, w)`` softmax confidences

    Example:
        >>> clf = SemanticPartClassifier(16)
        >>> clf(torch.randn(2, 16, 8, 4)).shape
        torch.Size([2, 4, 8, 4])
    """

    def __init__(self, in_channels: int, num_classes: int = NUM_PART_CLASSES) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background + parts), got {num_classes}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1, bias=True)
        nn.init.normal_(self.conv.weight, std=0.001)
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    def forward(self, feature_map: Tensor) -> Tensor:
        """Return ``(B, K+1, h, w)`` part logits for a ``(B, C, h, w)`` feature map."""
        if feature_map.ndim != 4 or feature_map.shape[1] != self.in_channels:
            raise ValueError(
                f"feature_map must have shape (B, {self.in_channels}, h, w), "
                f"got {tuple(feature_map.shape)}"
            )
        return self.conv(self.bn(feature_map))

    @staticmethod
    def to_maps(logits: Tensor) -> Tensor:
        """Softmax over the class channel (computed in float32, returned in the input dtype)."""
        return torch.softmax(logits.float(), dim=1).to(logits.dtype)

    def part_maps(self, feature_map: Tensor) -> Tensor:
        """``(B, K+1, h, w)`` part confidences that sum to one over the channel dim."""
        return self.to_maps(self(feature_map))


def resize_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of an integer ``(B, H, W)`` label map to ``size``.

    Each output cell takes the label at its *centre* (the index rule of
    ``F.interpolate(mode="nearest-exact")``: ``src = floor((dst + 0.5) * in / out)``),
    gathering integer indices directly so labels such as 255 stay exact and no float copy
    is made. Sampling cell centres matters for strong down-sampling: the corner rule of
    ``mode="nearest"`` would label a 2-column feature map of a centred person with the
    image's left edge (background) and its centre line (body), a left/right bias.
    """
    in_h, in_w = labels.shape[-2:]
    out_h, out_w = size
    if (in_h, in_w) == (out_h, out_w):
        return labels
    rows = ((2 * torch.arange(out_h, device=labels.device) + 1) * in_h) // (2 * out_h)
    cols = ((2 * torch.arange(out_w, device=labels.device) + 1) * in_w) // (2 * out_w)
    return labels.index_select(-2, rows).index_select(-1, cols)


def _checked_part_map_args(
    logits: Tensor, labels: Tensor, label_smoothing: float, dice_weight: float, resize: str
) -> Tensor:
    """:func:`part_map_loss`'s argument checks; ``labels`` as (B, H, W)."""
    if logits.ndim != 4:
        raise ValueError(f"logits must have shape (B, K+1, h, w), got {tuple(logits.shape)}")
    if labels.ndim == 4 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 3:
        raise ValueError(f"labels must have shape (B, H, W), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"labels batch size {labels.shape[0]} does not match logits batch size "
            f"{logits.shape[0]}"
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if dice_weight < 0:
        raise ValueError(f"dice_weight must be >= 0, got {dice_weight}")
    if resize not in ("logits", "labels"):
        raise ValueError(f"resize must be 'logits' or 'labels', got {resize!r}")
    return labels


def part_map_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    class_balance: bool = False,
    label_smoothing: float = 0.0,
    resize: str = "logits",
    check_labels: bool = True,
    dice_weight: float = 0.0,
) -> Tensor:
    """Pixel-wise cross-entropy between part logits and a part label map (+ a dice term).

    Args:
        logits: ``(B, K+1, h, w)`` part-classifier logits (``ReIDOutput.part_logits``).
        labels: ``(B, H, W)`` or ``(B, 1, H, W)`` integer labels in ``[0, K]`` or
            ``ignore_index``.
        resize: how logits and labels of different sizes are matched. ``"logits"``
            (default) up-samples the logits bilinearly to the label map's size, so every
            labelled pixel counts, as segmentation networks are trained; ``"labels"``
            down-samples the labels to ``(h, w)`` (cell centres, :func:`resize_labels`),
            cheaper but coarse when the feature map is small.
        ignore_index: label of pixels that do not contribute.
        class_balance: weight each class by the inverse of its pixel frequency in this
            batch (``w_c = N / (n_classes_present * N_c)``; absent classes get weight 0),
            so small parts such as the head are not swamped by background.
        label_smoothing: as in :func:`torch.nn.functional.cross_entropy`, in ``[0, 1)``.
        dice_weight: weight of :func:`part_dice_loss` added to the cross-entropy (0: off).
            Dice scores each class by its overlap, whatever its size, so the head (a
            few percent of the pixels) counts as much as the background.
        check_labels: raise ``ValueError`` for labels outside ``[0, K]`` (other than
            ``ignore_index``). The check reads a flag back to the host (a GPU
            synchronisation); a training loop whose labels come from a grouping table
            or from pseudo labels (always in range) passes ``False``.

    Returns:
        Scalar float32 loss: the (weighted) mean over non-ignored pixels. When every pixel
        is ignored the loss is an exact zero that still carries a graph to ``logits``.

    Raises:
        ValueError: shape mismatch, labels outside ``[0, K]`` other than ``ignore_index``,
            or ``label_smoothing`` outside ``[0, 1)``.
        TypeError: floating labels.

    Example:
        >>> logits = torch.zeros(1, 4, 2, 2)
        >>> round(part_map_loss(logits, torch.tensor([[[0, 1], [2, 255]]])).item(), 4)
        1.3863
    """
    labels = _checked_part_map_args(logits, labels, label_smoothing, dice_weight, resize)
    num_classes = logits.shape[1]
    logits32 = logits.float()
    if resize == "logits" and logits.shape[-2:] != labels.shape[-2:]:
        logits32 = F.interpolate(
            logits32, size=labels.shape[-2:], mode="bilinear", align_corners=False
        )
    target = resize_labels(labels.long(), (logits32.shape[2], logits32.shape[3]))
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= num_classes))
    if check_labels and bool(bad.any()):
        raise ValueError(
            f"labels hold values {torch.unique(target[bad])[:8].tolist()} outside "
            f"[0, {num_classes - 1}] and not equal to ignore_index={ignore_index}"
        )
    weight: Tensor | None = None
    if class_balance:
        counts = torch.bincount(target[valid], minlength=num_classes).to(torch.float32)
        present = (counts > 0).sum().clamp_min(1)
        weight = torch.where(
            counts > 0, counts.sum() / (present * counts.clamp_min(1.0)), torch.zeros_like(counts)
        )
    total = F.cross_entropy(
        logits32,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction="sum",
        label_smoothing=label_smoothing,
    )
    if weight is None:
        denom = valid.sum().to(torch.float32)
    else:
        denom = weight[target.masked_fill(~valid, 0)].masked_fill(~valid, 0.0).sum()
    loss = total / denom.clamp_min(1e-12)
    if dice_weight > 0:
        loss = loss + dice_weight * _dice(logits32, target, valid)
    return loss


def _dice(logits32: Tensor, target: Tensor, valid: Tensor, eps: float = 1.0) -> Tensor:
    """Soft dice loss over the batch, mean over the classes present in ``target``."""
    num_classes = logits32.shape[1]
    prob = torch.softmax(logits32, dim=1) * valid.unsqueeze(1)
    onehot = F.one_hot(target.masked_fill(~valid, 0), num_classes).permute(0, 3, 1, 2)
    onehot = onehot.to(prob.dtype) * valid.unsqueeze(1)
    inter = (prob * onehot).sum((0, 2, 3))
    card = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = onehot.sum((0, 2, 3)) > 0
    dice = 1.0 - (2.0 * inter + eps) / (card + eps)
    # classes absent from the batch: no term (their predicted mass is pushed down by CE)
    return (dice * present).sum() / present.sum().clamp_min(1)


def part_dice_loss(
    logits: Tensor, labels: Tensor, *, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Soft dice loss ``1 - (2 sum p y + 1) / (sum p + sum y + 1)`` per class over the batch,
    averaged over the classes present in ``labels``; ignored pixels count for nothing.

    Args:
        logits: ``(B, K+1, h, w)`` part logits (up-sampled to the labels' size).
        labels: ``(B, H, W)`` integer labels in ``[0, K]`` or ``ignore_index``.

    Returns:
        Scalar float32 loss in ``[0, 1]``.

    Example:
        >>> perfect = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # (1, 2, 1, 2)
        >>> round(part_dice_loss(perfect, torch.tensor([[[0, 1]]])).item(), 3)
        0.0
    """
    if logits.ndim != 4:
        raise ValueError(f"logits must have shape (B, K+1, h, w), got {tuple(logits.shape)}")
    if labels.ndim == 4 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 3 or labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"labels must have shape (B, H, W) with B={logits.shape[0]}, got {tuple(labels.shape)}"
        )
    logits32 = logits.float()
    if logits32.shape[-2:] != labels.shape[-2:]:
        logits32 = F.interpolate(
            logits32, size=labels.shape[-2:], mode="bilinear", align_corners=False
        )
    target = labels.long()
    return _dice(logits32, target, target != ignore_index)


def confident_part_labels(
    logits: Tensor,
    *,
    threshold: float = 0.9,
    size: tuple[int, int] | None = None,
    ignore_index: int = IGNORE_INDEX,
    class_portion: float = 0.0,
) -> Tensor:
    """Self-training labels: the classifier's own argmax where it is confident.

    Args:
        logits: ``(B, K+1, h, w)`` part logits (detached here).
        threshold: a pixel keeps its argmax label when its softmax confidence is at
            least this, else it is ``ignore_index``.
        size: ``(H, W)`` to up-sample the logits to first (bilinear), or None.
        class_portion: class-balanced selection (as in CBST, Zou et al., ECCV 2018):
            each class keeps at least this portion of the batch's pixels predicted as
            it, its most confident ones (its threshold is lowered to that quantile of
            its confidences when ``threshold`` would keep fewer), so a small, less
            confident part such as the head is not starved of labels and forgotten.
            ``0``: one global threshold.

    Returns:
        ``(B, H, W)`` int64 labels.

    Example:
        >>> logits = torch.tensor([[[[4.0, 0.0]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
        >>> confident_part_labels(logits, threshold=0.9)
        tensor([[[  0, 255]]])
    """
    if logits.ndim != 4:
        raise ValueError(f"logits must have shape (B, K+1, h, w), got {tuple(logits.shape)}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if not 0.0 <= class_portion <= 1.0:
        raise ValueError(f"class_portion must be in [0, 1], got {class_portion}")
    x = logits.detach().float()
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    conf, labels = torch.softmax(x, dim=1).max(dim=1)
    cut = torch.full((x.shape[1],), float(threshold), device=x.device)
    if class_portion > 0:
        # per class: the (1 - portion) quantile of the confidences of its pixels, from
        # one sort of all pixels by (class, confidence); no host synchronisation
        flat_conf, flat_lab = conf.flatten(), labels.flatten()
        sorted_conf = flat_conf[torch.argsort(flat_lab * 2.0 + flat_conf)]  # exact values
        counts = torch.bincount(flat_lab, minlength=x.shape[1])
        starts = torch.cumsum(counts, 0) - counts
        k = torch.minimum(((1.0 - class_portion) * counts).long(), (counts - 1).clamp_min(0))
        quantile = sorted_conf[(starts + k).clamp_max(sorted_conf.numel() - 1)]
        cut = torch.where(counts > 0, torch.minimum(cut, quantile), cut)
    return labels.masked_fill(conf < cut[labels], ignore_index)
