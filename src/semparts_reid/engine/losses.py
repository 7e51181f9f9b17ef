"""Training losses of the two stages, as plain functions the trainer (or a user) calls.

* :func:`identity_loss`: source cross-entropy over the global feature and the
  head / upper / lower features (never the background), per head averaged over the
  images where that part is visible, summed over heads.
* :func:`part_targets`: the label maps the pixel-wise part loss is trained against
  ("auto": maps from disk where an image has one, pseudo labels for the others; "gt":
  maps from disk; "pseudo": self-supervised clustering of the current feature map;
  "band": fixed horizontal bands; "none").
* :func:`triplet_loss`: batch-hard triplet loss (hardest positive, hardest negative per
  anchor) with a fixed or a soft margin, on global or per-part features.
* :func:`stack_heads`: ``(B, 1+K, D)`` features (global first) for the exemplar memory.
* :func:`part_map_term`: the part-map loss of one batch as the config asks (labels by
  :func:`part_targets`'s rule, then the pixel-wise loss): the step's one entry point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..layers.part_classifier import confident_part_labels, part_map_loss
from ..layers.part_clustering import band_labels, pseudo_part_labels
from ..layers.parts import IGNORE_INDEX
from .config import TrainConfig

__all__ = [
    "identity_loss",
    "part_map_term",
    "part_targets",
    "reduce_heads",
    "stack_heads",
    "triplet_loss",
]


def identity_loss(
    id_logits: Tensor,
    pids: Tensor,
    *,
    visibility: Tensor | None = None,
    use_parts: bool = True,
    label_smoothing: float = 0.0,
    check_labels: bool = True,
) -> tuple[Tensor, Tensor]:
    """Cross-entropy over identity logits of the global head and the part heads.

    Args:
        id_logits: (B, 1+K, C) logits of global, head, upper, lower (``ReIDOutput.id_logits``).
        pids: (B,) int64 identity labels in ``[0, C)``.
        visibility: optional (B, K) part visibility; a part head averages its loss over
            the images where the part is visible (the global head over all images).
        use_parts: False: only the global head contributes.
        label_smoothing: as in :func:`torch.nn.functional.cross_entropy`.
        check_labels: raise ``ValueError`` for a pid outside ``[0, C)``. The check reads
            the pids back to the host (a GPU synchronisation); the trainer checks its
            dataset's pids once instead and passes ``False``.

    Returns:
        ``(total, per_head)``: the scalar sum over heads and the (1+K,) per-head losses
        (the part entries are zero when ``use_parts`` is False).
    """
    if id_logits.dim() != 3:
        raise ValueError(
            f"id_logits of shape {tuple(id_logits.shape)}: expected (B, 1+K, num_classes)"
        )
    b, h, c = id_logits.shape
    if pids.shape != (b,):
        raise ValueError(f"pids of shape {tuple(pids.shape)}: expected ({b},)")
    if check_labels and b and (int(pids.min()) < 0 or int(pids.max()) >= c):
        raise ValueError(
            f"pids in [{int(pids.min())}, {int(pids.max())}]: expected labels in [0, {c - 1}]"
        )
    heads = h if use_parts else 1
    logits = id_logits[:, :heads].float()
    ce = F.cross_entropy(
        logits.reshape(b * heads, c),
        pids[:, None].expand(b, heads).reshape(-1),  # repeat_interleave, no size read-back
        reduction="none",
        label_smoothing=label_smoothing,
    ).view(b, heads)
    w = torch.ones_like(ce)
    if visibility is not None and heads > 1:
        if visibility.shape != (b, h - 1):
            raise ValueError(
                f"visibility of shape {tuple(visibility.shape)}: expected ({b}, {h - 1})"
            )
        w[:, 1:] = (visibility[:, : heads - 1] > 0.5).to(w.dtype)
    per_head = (ce * w).sum(0) / w.sum(0).clamp_min(1.0)
    if heads < h:
        per_head = torch.cat([per_head, per_head.new_zeros(h - heads)])
    return per_head.sum(), per_head


def reduce_heads(
    per_head: Tensor, *, part_weight: float = 1.0, reduction: str = "sum"
) -> Tensor:
    """Combine per-head losses ``(1+K,)`` (global first) into one scalar.

    The global head has weight 1 and each of the K part heads ``part_weight``.
    ``reduction="sum"`` returns the weighted sum; ``"mean"`` divides it by the sum of
    the weights (``1 + K * part_weight``), so a global-only model keeps its scale.

    Example:
        >>> reduce_heads(torch.tensor([1.0, 3.0, 3.0, 3.0]), part_weight=1 / 3)
        tensor(4.)
    """
    if per_head.dim() != 1 or per_head.numel() == 0:
        raise ValueError(f"per_head of shape {tuple(per_head.shape)}: expected (1+K,)")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction={reduction!r}: expected 'sum' or 'mean'")
    if not (math.isfinite(part_weight) and part_weight >= 0):
        raise ValueError(f"part_weight={part_weight!r}: expected a finite value >= 0")
    k = per_head.numel() - 1
    if part_weight == 1.0 or k == 0:  # the plain sum, summed as before the weight existed
        total = per_head.sum()
    else:
        total = per_head[0] + part_weight * per_head[1:].sum()
    if reduction == "mean":
        total = total / (1.0 + k * part_weight)
    return total


def triplet_loss(
    features: Tensor,
    pids: Tensor,
    *,
    margin: float | None = 0.3,
    visibility: Tensor | None = None,
    normalize: bool = False,
) -> Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017), vectorised over anchors and heads.

    For each anchor: the hardest positive (the farthest image with the same identity,
    not the anchor itself) and the hardest negative (the closest image of another
    identity), by Euclidean distance. The loss of an anchor is
    ``relu(d_ap - d_an + margin)`` (fixed margin) or ``softplus(d_ap - d_an)``
    (``margin=None``: soft margin). Anchors without a positive or a negative in the batch
    are skipped; P×K batches (``num_instances`` K >= 2) give every anchor both.

    Distances are computed in float32 with autocast off, so the loss is the same under
    bf16 / fp16 autocast. The trainer passes the features *before* the BNNeck
    (``global_raw`` / ``part_raw``), as BoT, torchreid and fast-reid do.

    Args:
        features: (B, D) features, or (B, H, D) for H heads (e.g. global + parts): each
            head is a separate metric space with its own hardest pairs.
        pids: (B,) int identity labels.
        margin: the fixed margin (> 0), or None for the soft margin.
        visibility: optional (B, H) visibility of the heads (only with (B, H, D)
            features): an image whose head is invisible (<= 0.5) is neither an anchor,
            nor a positive, nor a negative for that head.
        normalize: L2-normalise the features first (default: raw features).

    Returns:
        The scalar loss: per head the mean over its valid anchors, averaged over the
        heads that have one (zero, still attached to the graph, when none has).
    """
    if features.dim() not in (2, 3):
        raise ValueError(
            f"features of shape {tuple(features.shape)}: expected (B, D) or (B, H, D)"
        )
    b = features.shape[0]
    if pids.shape != (b,):
        raise ValueError(f"pids of shape {tuple(pids.shape)}: expected ({b},)")
    if margin is not None and not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin={margin!r}: expected a value > 0, or None for the soft margin")
    x = features if features.dim() == 3 else features.unsqueeze(1)
    h = x.shape[1]
    if visibility is not None and visibility.shape != (b, h):
        raise ValueError(
            f"visibility of shape {tuple(visibility.shape)}: expected ({b}, {h})"
        )
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float().transpose(0, 1)  # (H, B, D)
        if normalize:
            x = F.normalize(x, dim=-1)
        sq = x.pow(2).sum(-1)  # (H, B)
        d2 = sq.unsqueeze(2) + sq.unsqueeze(1) - 2.0 * torch.bmm(x, x.transpose(1, 2))
        dist = d2.clamp_min(1e-12).sqrt()  # (H, B, B)
        same = pids.unsqueeze(0) == pids.unsqueeze(1)  # (B, B)
        eye = torch.eye(b, dtype=torch.bool, device=x.device)
        pos = (same & ~eye).unsqueeze(0).expand(h, b, b)
        neg = (~same).unsqueeze(0).expand(h, b, b)
        if visibility is not None:
            vis = (visibility > 0.5).t()  # (H, B)
            pair = vis.unsqueeze(2) & vis.unsqueeze(1)  # anchor and other both visible
            pos, neg = pos & pair, neg & pair
        d_ap = torch.where(pos, dist, dist.new_tensor(-math.inf)).amax(2)  # (H, B)
        d_an = torch.where(neg, dist, dist.new_tensor(math.inf)).amin(2)
        valid = pos.any(2) & neg.any(2)
        gap = torch.where(valid, d_ap - d_an, torch.zeros_like(d_ap))
        per = F.softplus(gap) if margin is None else F.relu(gap + margin)
        per = per * valid
        counts = valid.sum(1)  # (H,)
        per_head = per.sum(1) / counts.clamp_min(1)
        heads = (counts > 0).sum().clamp_min(1)
        return per_head.sum() / heads


def part_targets(
    source: str,
    *,
    parts: Tensor | None,
    feature_map: Tensor | None,
    image_size: tuple[int, int],
    part_logits: Tensor | None = None,
    unlabeled: str = "pseudo",
    threshold: float = 0.9,
    class_portion: float = 0.0,
) -> Tensor | None:
    """Label maps (B, H, W) int64 for the part-map loss, or None when there is none.

    Args:
        source: ``"auto"`` (``parts`` for the images that have any labelled pixel,
            the ``unlabeled`` labels for the others: real data without a parser gets
            them with no setting),
            ``"gt"`` (``parts`` from the batch; all-255 maps simply give no loss),
            ``"pseudo"`` (ISP-style clustering of ``feature_map``, re-estimated at every
            step from the current network, so it follows the features as they train),
            ``"self"`` (the part classifier's own confident predictions, see
            :func:`~semparts_reid.layers.part_classifier.confident_part_labels`),
            ``"band"`` (horizontal head / upper / lower bands, no background) or
            ``"none"``.
        parts: (B, H, W) int64 labels from the data (255 = unknown), for ``"gt"``.
        feature_map: (B, C, h, w) backbone features, for ``"pseudo"``.
        image_size: (H, W) of the input images.
        part_logits: (B, K+1, h', w') part logits, for ``"self"``.
        unlabeled: what ``"auto"`` uses for images without maps: ``"self"``,
            ``"pseudo"`` or ``"none"`` (no labels: all ``IGNORE_INDEX``).
        threshold: confidence threshold of ``"self"``.
        class_portion: class-balanced selection of ``"self"`` (see
            :func:`~semparts_reid.layers.part_classifier.confident_part_labels`).
    """
    if source == "none":
        return None
    if source == "auto":
        known = None if parts is None else (parts != IGNORE_INDEX).flatten(1).any(1)
        if known is not None and bool(known.all()):
            return parts.long()  # type: ignore[union-attr]
        return _auto_part_targets(parts, known, unlabeled=unlabeled, feature_map=feature_map,
                                  image_size=image_size, part_logits=part_logits,
                                  threshold=threshold, class_portion=class_portion)
    if source == "gt":
        if parts is None:
            return None
        return parts.long()
    if source == "band":
        if parts is None and feature_map is None:
            return None
        ref = parts if parts is not None else feature_map
        assert ref is not None
        lab = band_labels(image_size[0], image_size[1], device=ref.device)
        return lab.unsqueeze(0).expand(ref.shape[0], -1, -1).contiguous()
    if source == "pseudo":
        if feature_map is None:
            raise ValueError("part_labels='pseudo' needs the feature map of the batch")
        return pseudo_part_labels(feature_map.detach(), output_size=image_size)
    if source == "self":
        if part_logits is None:
            raise ValueError("part labels 'self' need the part logits of the batch")
        return confident_part_labels(part_logits, threshold=threshold, size=image_size,
                                     class_portion=class_portion)
    raise ValueError(
        f"part label source {source!r}: expected 'auto', 'gt', 'pseudo', 'self', 'band' "
        "or 'none'"
    )


def _auto_part_targets(
    parts: Tensor | None,
    known: Tensor | None,
    *,
    unlabeled: str,
    feature_map: Tensor | None,
    image_size: tuple[int, int],
    part_logits: Tensor | None,
    threshold: float,
    class_portion: float = 0.0,
) -> Tensor | None:
    """``"auto"``'s labels once ``known`` is settled: ``parts`` for the images that have
    maps, the ``unlabeled`` fallback labels (``"self"``, ``"pseudo"`` or ``"none"``) for
    the others.

    The one statement of that rule: :func:`part_targets` calls it with ``known`` computed
    on the device, :func:`part_map_term` with the mask its loader summarised on
    the host (no GPU synchronisation).

    Args:
        parts: (B, H, W) label maps of the batch, or None when no image has any.
        known: (B,) bool, which images have maps (None: none, with ``parts`` None).
        unlabeled, feature_map, image_size, part_logits, threshold, class_portion: as
            in :func:`part_targets`.

    Returns:
        ``torch.where(known, parts, fallback)``; ``parts`` (int64) alone without a
        fallback (``"none"``), the fallback alone without ``parts`` or ``known``, None
        when there is neither.
    """
    fallback = part_targets(unlabeled, parts=parts, feature_map=feature_map,
                            image_size=image_size, part_logits=part_logits,
                            threshold=threshold, class_portion=class_portion,
                            ) if unlabeled != "none" else None
    if fallback is None:
        return None if parts is None else parts.long()
    if known is None or parts is None:
        return fallback
    return torch.where(known[:, None, None], parts.long(), fallback)


def has_labels(labels: Tensor | None) -> bool:
    """Whether a label batch has at least one pixel that is not ``IGNORE_INDEX``."""
    return labels is not None and bool((labels != IGNORE_INDEX).any())


def stack_heads(global_feat: Tensor, part_feats: Tensor | None, use_parts: bool) -> Tensor:
    """(B, 1+K, D) memory features: the global feature then the K part features."""
    g = global_feat.unsqueeze(1)
    if not use_parts or part_feats is None or part_feats.shape[1] == 0:
        return g
    return torch.cat([g, part_feats.to(g.dtype)], dim=1)


def memory_heads(
    outputs: Mapping[str, Any], num_heads: int, use_parts: bool
) -> tuple[Tensor, Tensor | None]:
    """``(features (B, H, D) float32, visibility (B, K) or None)`` for a memory of
    ``num_heads`` heads (the global feature, then the K part features with ``use_parts``).

    Raises:
        ValueError: the model gives another number of heads than the memory holds.
    """
    feats = stack_heads(outputs["global_feat"], outputs.get("part_feats"), use_parts)
    if feats.shape[1] != num_heads:
        raise ValueError(
            f"the model gives {feats.shape[1]} head(s) but the memory has {num_heads}: "
            "build the objective with num_heads = 1 + K parts (or 1 for the global feature "
            "only)"
        )
    vis = outputs["visibility"].float() if feats.shape[1] > 1 else None
    return feats.float(), vis


def part_map_term(
    out: dict[str, Any], batch: dict[str, Any], config: TrainConfig, *, check_labels: bool = True
) -> Tensor | None:
    """Pixel-wise part loss of one batch (None without part logits or labels): the
    training's one entry point to the part-map loss (labels by :func:`part_targets`'s
    rule, loss by :func:`~semparts_reid.layers.part_classifier.part_map_loss`).

    ``config`` (a :class:`~.config.TrainConfig`) gives the label source
    (``part_labels``; ``"parser"`` is ``"auto"`` over the parser's maps, which the
    loader ships as ``parts``), what ``"auto"`` uses for images without maps
    (``unlabeled_part_labels``, ``self_label_threshold``) and the loss
    (``part_dice_weight``, ``part_class_balance``).

    A batch of the trainer's loader carries ``parts_known`` (``"all"``, ``"some"`` or
    ``"none"``: which images have a labelled pixel, summarised on the host when the
    batch was collated) and ``has_parts`` (B,) bool: with them the choice between label
    maps and the fallback labels needs no GPU synchronisation. Other batches (no
    ``parts_known``) are inspected on the device, as :func:`part_targets` does.
    The loss is the same either way.
    """
    source = config.parts.part_labels
    if source == "parser":  # "auto" over the parser's maps: the loader put them in "parts"
        source = "auto"
    if source == "none" or out.get("part_logits") is None:
        return None
    size = tuple(batch["image"].shape[-2:])
    parts, fmap = batch.get("parts"), out["feature_map"]
    known = batch.get("parts_known")
    labels: Tensor | None
    if isinstance(known, str) and parts is not None and source in ("auto", "gt"):
        if source == "gt" and known == "none":
            return None
        if known == "all" or source == "gt":
            labels = parts.long()
        else:  # "auto" over a batch with images without maps: the fallback for those
            some = known != "none"
            labels = _auto_part_targets(
                parts if some else None, batch["has_parts"] if some else None,
                unlabeled=config.parts.unlabeled_part_labels, feature_map=fmap,
                image_size=(int(size[0]), int(size[1])), part_logits=out.get("part_logits"),
                threshold=config.parts.self_label_threshold,
                class_portion=config.parts.self_label_class_portion)
            if labels is None:
                return None
    else:
        labels = part_targets(source, parts=parts, feature_map=fmap, image_size=size,
                              part_logits=out.get("part_logits"),
                              unlabeled=config.parts.unlabeled_part_labels,
                              threshold=config.parts.self_label_threshold,
                              class_portion=config.parts.self_label_class_portion)
        # only maps alone ("gt") can leave a whole batch unknown often enough to matter
        # (checked on the host); confident self labels rarely do, and an all-ignored
        # batch gives an exact zero loss without a GPU synchronisation
        maps_only = source == "gt" or (
            source == "auto" and config.parts.unlabeled_part_labels == "none")
        if labels is None or ((maps_only or fmap is None) and not has_labels(labels)):
            return None
    return part_map_loss(out["part_logits"].float(), labels, check_labels=check_labels,
                         dice_weight=config.parts.part_dice_weight,
                         class_balance=config.parts.part_class_balance)
