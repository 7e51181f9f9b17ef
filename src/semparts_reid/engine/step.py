"""The pieces of one training step: the DDP-friendly forward, the loss terms, checks.

:func:`step_losses` computes every loss term of a step from the model outputs, so a
custom loop can reuse it::

    objective.start_epoch(EpochState("adapt", epoch), lambda: None)  # once per epoch
    outs = StepNet(model)(batch_s["image"], batch_t["image"])
    terms = step_losses(outs[0], batch_s, outs[1], batch_t, objective=objective,
                        config=config, use_parts=True)
    terms["loss"].backward(); optimizer.step()
    objective.update(outs[1], batch_t)
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import torch
from torch import Tensor, nn

from ..layers.part_classifier import part_map_loss
from .config import TrainConfig
from .losses import has_labels, identity_loss, part_targets, triplet_loss
from .objectives import TargetObjective

__all__ = [
    "NonFiniteLossError",
    "StepNet",
    "camstyle_swap",
    "check_finite",
    "source_triplet_term",
    "step_losses",
    "wrap_step_net",
]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or inf; training stopped before the optimiser step."""


class StepNet(nn.Module):
    """One forward call per step (what DDP needs) running the model on several batches.

    ``forward(*images)`` returns, per image batch, a dict of the ``ReIDOutput`` fields
    plus ``feature_map`` (B, C, h, w) (for pseudo part labels).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *images: Tensor) -> list[dict[str, Any]]:
        outs = []
        model: Any = self.model
        for x in images:
            fmap = model.forward_features(x)
            out = model.forward_head(fmap)
            d = {f.name: getattr(out, f.name) for f in fields(out)}
            d["feature_map"] = fmap
            outs.append(d)
        return outs


def check_finite(terms: dict[str, Tensor], where: str) -> None:
    """Raise :class:`NonFiniteLossError` naming ``where`` and the first non-finite term."""
    for name, value in terms.items():
        v = float(value.detach())
        if not math.isfinite(v):
            raise NonFiniteLossError(
                f"non-finite loss at {where}: term '{name}' = {v}; training stopped, the last "
                "good checkpoint is kept (lower the learning rate or use precision='fp32')"
            )


def camstyle_swap(batch_t: dict[str, Any], num_cams: int, enabled: bool = True) -> Tensor:
    """ECN's camera invariance input: each image replaced by its camera-style version
    with probability ``(C-1)/C`` (ECN draws one of ``C`` cameras uniformly and keeps the
    original when it draws the image's own). Returns the (B, 3, H, W) images to use."""
    x = batch_t["image"]
    if not enabled or "image_cam" not in batch_t:
        return x
    cams = max(2, int(num_cams))
    swap = torch.rand(x.shape[0], device=x.device) < (cams - 1) / cams
    return torch.where(swap[:, None, None, None], batch_t["image_cam"], x)


def part_map_term(out: dict[str, Any], batch: dict[str, Any], source: str) -> Tensor | None:
    """Pixel-wise part loss of one batch (None without part logits or labels)."""
    if source == "none" or out.get("part_logits") is None:
        return None
    labels = part_targets(
        source, parts=batch.get("parts"), feature_map=out["feature_map"],
        image_size=tuple(batch["image"].shape[-2:]),
    )
    if not has_labels(labels):
        return None
    assert labels is not None
    return part_map_loss(out["part_logits"].float(), labels)


def source_triplet_term(
    out_s: dict[str, Any], batch_s: dict[str, Any], config: TrainConfig, use_parts: bool
) -> Tensor:
    """Batch-hard triplet loss of the source batch (:func:`~.losses.triplet_loss`).

    On the features before the BNNeck (``global_raw``; with ``config.triplet_parts`` and
    ``use_parts`` also ``part_raw``, invisible parts masked), with
    ``config.triplet_margin`` (None: soft margin).
    """
    feats = out_s["global_raw"]
    part_raw = out_s.get("part_raw")
    if config.triplet_parts and use_parts and part_raw is not None and part_raw.shape[1] > 0:
        feats = torch.cat([feats.unsqueeze(1), part_raw.to(feats.dtype)], dim=1)
        vis = out_s["visibility"]
        visibility = torch.cat([vis.new_ones(vis.shape[0], 1), vis], dim=1)
        return triplet_loss(feats, batch_s["pid"], margin=config.triplet_margin,
                            visibility=visibility)
    return triplet_loss(feats, batch_s["pid"], margin=config.triplet_margin)


def step_losses(
    out_s: dict[str, Any],
    batch_s: dict[str, Any],
    out_t: dict[str, Any] | None,
    batch_t: dict[str, Any] | None,
    *,
    objective: TargetObjective | None,
    config: TrainConfig,
    use_parts: bool,
) -> dict[str, Tensor]:
    """Loss terms of one step.

    Returns:
        ``source_id``, ``triplet`` (with ``config.triplet_weight > 0``),
        ``target_memory`` (the objective's loss, with a target batch), ``part_map``
        (where labels exist) and the weighted total ``loss``.
    """
    if out_s["id_logits"] is None:
        raise ValueError("model returned no id_logits: build it with num_classes > 0")
    has_parts = out_s["part_feats"] is not None and out_s["part_feats"].shape[1] > 0
    terms: dict[str, Tensor] = {}
    mean_heads = config.head_reduction == "mean"
    source_sum, per_head = identity_loss(
        out_s["id_logits"], batch_s["pid"],
        visibility=out_s["visibility"] if has_parts else None,
        use_parts=use_parts, label_smoothing=config.label_smoothing,
    )
    n_heads = 1 + (per_head.numel() - 1 if use_parts else 0)
    terms["source_id"] = source_sum / n_heads if mean_heads else source_sum
    if config.triplet_weight > 0:
        terms["triplet"] = source_triplet_term(out_s, batch_s, config, use_parts)
    part_terms = [part_map_term(out_s, batch_s, config.part_labels)]
    if out_t is not None and batch_t is not None:
        if objective is None:
            raise ValueError("a target batch needs a target objective")
        terms["target_memory"] = objective.loss(out_t, batch_t)
        if config.target_part_loss:
            part_terms.append(part_map_term(out_t, batch_t, config.part_labels))
    valid = [p for p in part_terms if p is not None]
    if valid:
        terms["part_map"] = torch.stack(valid).mean()
    ws, wt = config.loss_weights() if "target_memory" in terms else (1.0, 0.0)
    loss = ws * terms["source_id"]
    if "target_memory" in terms:
        loss = loss + wt * terms["target_memory"]
    if "part_map" in terms:
        loss = loss + config.part_loss_weight * terms["part_map"]
    if "triplet" in terms:
        loss = loss + config.triplet_weight * terms["triplet"]
    terms["loss"] = loss
    return terms


def wrap_step_net(
    model: nn.Module, device: torch.device, *, distributed: bool, unused_parameters: bool
) -> nn.Module:
    """A :class:`StepNet` over ``model``, in DDP under ``torch.distributed``.

    ``unused_parameters``: the step leaves some parameters without a gradient (a part
    model trained without its part heads or without the part-map loss), which DDP must
    be told; every other setup uses all of them and skips DDP's extra graph traversal.
    """
    net: nn.Module = StepNet(model)
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=ids, find_unused_parameters=unused_parameters
        )
    return net
