"""The pieces of one training step: the DDP-friendly forward, the loss terms, checks.

:func:`step_losses` computes every loss term of a step from the model outputs, so a
custom loop can reuse it::

    outs = StepNet(model)(batch_s["image"], batch_t["image"])
    terms, feats, vis = step_losses(outs[0], batch_s, outs[1], batch_t, memory=memory,
                                    config=config, use_parts=True, epoch=epoch)
    terms["loss"].backward(); optimizer.step()
    memory.update(feats.detach(), batch_t["index"], epoch=epoch, visibility=vis)
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import torch
from torch import Tensor, nn

from ..layers.part_classifier import part_map_loss
from ..memory import ExemplarMemory
from .config import TrainConfig
from .losses import has_labels, identity_loss, part_targets, stack_heads

__all__ = ["NonFiniteLossError", "StepNet", "camstyle_swap", "check_finite", "step_losses"]


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


def step_losses(
    out_s: dict[str, Any],
    batch_s: dict[str, Any],
    out_t: dict[str, Any] | None,
    batch_t: dict[str, Any] | None,
    *,
    memory: ExemplarMemory | None,
    config: TrainConfig,
    use_parts: bool,
    epoch: int,
) -> tuple[dict[str, Tensor], Tensor | None, Tensor | None]:
    """Loss terms of one step.

    Returns:
        ``(terms, target_feats, target_vis)``: ``terms`` holds ``source_id``,
        ``target_memory`` (with a target batch), ``part_map`` (where labels exist) and
        the weighted total ``loss``; ``target_feats`` (B, heads, D) and ``target_vis``
        (B, heads-1) or None are what the memory update needs.
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
    part_terms = [part_map_term(out_s, batch_s, config.part_labels)]
    feats = vis_t = None
    if out_t is not None and batch_t is not None:
        if memory is None:
            raise ValueError("a target batch needs an ExemplarMemory")
        feats = stack_heads(out_t["global_feat"], out_t["part_feats"], use_parts).float()
        vis_t = out_t["visibility"].float() if feats.shape[1] > 1 else None
        terms["target_memory"] = memory.loss(
            feats, batch_t["index"], neighbours=epoch >= config.neighbour_start_epoch,
            visibility=vis_t, reduction="mean" if mean_heads else "sum",
        )
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
    terms["loss"] = loss
    return terms, feats, vis_t
