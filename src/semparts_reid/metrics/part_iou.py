"""Part-map quality: per-class IoU and mIoU of predicted part maps against label maps.

Pure tensor code (layer 0). Predictions may be logits / probabilities ``(B, C, H, W)``
(the argmax over ``C`` is taken) or label maps ``(B, H, W)``; targets are label maps
``(B, H', W')`` with ``ignore_index`` where unknown. Logits of another size than the
target (a part classifier's ``h x w`` map) are up-sampled bilinearly to the target
before the argmax, as the part loss does; label maps of another size are resized by
nearest neighbour.

IoU of class ``c`` is ``|pred == c and target == c| / |pred == c or target == c|`` over
the pixels whose target is not ignored, summed over the whole batch (not averaged per
image). A class absent from both prediction and target has no IoU (NaN) and is left out
of the mean.

Example:
    >>> import torch
    >>> target = torch.tensor([[[0, 1], [2, 3]]])
    >>> pred = torch.tensor([[[0, 1], [2, 2]]])
    >>> r = part_map_iou(pred, target, num_parts=4)
    >>> [round(v, 2) for v in r.per_class.tolist()], round(r.miou, 3)
    ([1.0, 1.0, 0.5, 0.0], 0.625)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["PartIoU", "part_map_iou", "part_map_confusion"]

CLASS_NAMES = ("background", "head", "upper", "lower")


@dataclass(frozen=True)
class PartIoU:
    """Result of :func:`part_map_iou`.

    Attributes:
        per_class: ``(C,)`` float64 IoU per class (NaN where the class is absent from
            both prediction and target).
        confusion: ``(C, C)`` int64 pixel counts, rows = target class, columns = predicted.
    """

    per_class: Tensor
    confusion: Tensor

    @property
    def miou(self) -> float:
        """Mean IoU over the classes that occur (NaN if none does)."""
        present = ~torch.isnan(self.per_class)
        return float(self.per_class[present].mean()) if bool(present.any()) else float("nan")

    def as_dict(self, names: tuple[str, ...] = CLASS_NAMES) -> dict[str, float]:
        """``{"mIoU": ..., "<class name>": IoU, ...}`` (names beyond the first ``C`` ignored)."""
        out = {"mIoU": self.miou}
        for i, value in enumerate(self.per_class.tolist()):
            out[names[i] if i < len(names) else f"class{i}"] = value
        return out


def _labels(pred: Tensor, size: tuple[int, int], num_parts: int) -> Tensor:
    if pred.ndim == 4:
        if pred.shape[1] != num_parts:
            raise ValueError(
                f"pred has {pred.shape[1]} channels; expected num_parts={num_parts} "
                "(logits or probabilities (B, C, H, W)) or a (B, H, W) label map"
            )
        if tuple(pred.shape[-2:]) != size:
            pred = F.interpolate(pred.float(), size=size, mode="bilinear", align_corners=False)
        return pred.argmax(1)
    if pred.ndim == 3:
        if pred.is_floating_point():
            raise ValueError("a (B, H, W) pred must be an integer label map, got floats")
        if tuple(pred.shape[-2:]) != size:
            pred = F.interpolate(pred[:, None].float(), size=size, mode="nearest")[:, 0].long()
        return pred.long()
    raise ValueError(
        f"pred must be (B, C, H, W) logits/probabilities or a (B, H, W) label map, "
        f"got shape {tuple(pred.shape)}"
    )


def part_map_confusion(
    pred: Tensor, target: Tensor, num_parts: int = 4, ignore_index: int = 255
) -> Tensor:
    """``(C, C)`` int64 confusion matrix (rows target, columns prediction), one bincount."""
    if target.ndim != 3 or target.is_floating_point():
        raise ValueError(
            f"target must be a (B, H, W) integer label map, got {tuple(target.shape)} "
            f"{target.dtype}"
        )
    if pred.shape[0] != target.shape[0]:
        raise ValueError(f"pred has {pred.shape[0]} images, target {target.shape[0]}")
    if num_parts < 1:
        raise ValueError(f"num_parts must be >= 1, got {num_parts}")
    labels = _labels(pred, (int(target.shape[1]), int(target.shape[2])), num_parts)
    t = target.long().reshape(-1)
    p = labels.to(t.device).reshape(-1)
    keep = t != ignore_index
    t, p = t[keep], p[keep]
    bad = (t < 0) | (t >= num_parts)
    if bool(bad.any()):
        raise ValueError(
            f"target holds label {int(t[bad][0])} outside [0, {num_parts}) and not "
            f"ignore_index={ignore_index}"
        )
    p = p.clamp(0, num_parts - 1)
    return torch.bincount(t * num_parts + p, minlength=num_parts * num_parts).reshape(
        num_parts, num_parts
    )


def part_map_iou(
    pred: Tensor, target: Tensor, num_parts: int = 4, ignore_index: int = 255
) -> PartIoU:
    """Per-class IoU and mIoU of part maps (see the module docstring).

    Args:
        pred: ``(B, C, h, w)`` logits or probabilities, or a ``(B, h, w)`` label map.
        target: ``(B, H, W)`` integer label map; ``ignore_index`` marks unknown pixels.
        num_parts: number of classes ``C`` (4: background, head, upper, lower).
        ignore_index: target value that is left out.

    Returns:
        :class:`PartIoU` (``per_class``, ``miou``, ``confusion``).

    Raises:
        ValueError: shapes that do not fit, or target labels outside ``[0, C)``.
    """
    conf = part_map_confusion(pred, target, num_parts, ignore_index)
    c = conf.double()
    inter = c.diagonal()
    union = c.sum(0) + c.sum(1) - inter
    per_class = torch.where(union > 0, inter / union.clamp_min(1), torch.nan)
    return PartIoU(per_class=per_class.cpu(), confusion=conf.cpu())
