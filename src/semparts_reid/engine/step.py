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
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import torch
from torch import Tensor, nn

from .config import TrainConfig
from .losses import identity_loss, part_map_term, reduce_heads, triplet_loss
from .objectives import TargetObjective

__all__ = [
    "NonFiniteLossError",
    "StepNet",
    "camstyle_swap",
    "FiniteGuard",
    "check_finite_losses",
    "source_triplet_term",
    "step_losses",
    "wrap_step_net",
]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or inf; training stopped before the optimiser step."""


class StepNet(nn.Module):
    """One forward call per step (what DDP needs) running the model on several batches.

    ``forward(*images)`` returns, per image batch, a dict of the ``ReIDOutput`` fields
    plus ``feature_map`` (B, C, h, w) (for pseudo part labels). ``pool_masks``: per
    image batch, ``(label maps (B, H, W), known (B,) bool)`` to pool its part features
    with (``SemPartsNet.forward_head``'s ``part_labels`` and ``known``: a parser's maps
    where it has them, the predicted maps elsewhere), or None for the predicted maps.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, *images: Tensor, pool_masks: Sequence[tuple[Tensor, Tensor] | None] = ()
    ) -> list[dict[str, Any]]:
        outs = []
        model: Any = self.model
        for i, x in enumerate(images):
            given = pool_masks[i] if i < len(pool_masks) else None
            if given is not None and not hasattr(model, "forward_stages"):
                raise ValueError(f"{type(model).__name__} cannot pool with given masks")
            if hasattr(model, "forward_stages"):  # SemPartsNet: the decoder's skips too
                fmap, skips = model.forward_stages(x)
                if given is None:
                    out = model.forward_head(fmap, skips=skips)
                else:
                    out = model.forward_head(fmap, given[0], skips=skips, known=given[1])
            else:
                fmap = model.forward_features(x)
                out = model.forward_head(fmap)
            d = {f.name: getattr(out, f.name) for f in fields(out)}
            d["feature_map"] = fmap
            outs.append(d)
        return outs


def _non_finite(where: str, name: str, value: float, seen: str = "") -> NonFiniteLossError:
    late = f" (found at the check of {seen})" if seen and seen != where else ""
    return NonFiniteLossError(
        f"non-finite loss at {where}: term '{name}' = {value}{late}; training stopped, the "
        "last good checkpoint is kept (lower the learning rate or use precision='fp32')"
    )


def check_finite_losses(terms: dict[str, Tensor], where: str) -> None:
    """Raise :class:`NonFiniteLossError` naming ``where`` and the first non-finite term.

    Reads every term back to the host: one GPU synchronisation per term. The trainer's
    loop uses a :class:`FiniteGuard` instead, which synchronises once per check interval.
    """
    for name, value in terms.items():
        v = float(value.detach())
        if not math.isfinite(v):
            raise _non_finite(where, name, v)


class FiniteGuard:
    """Watch loss terms for NaN / inf on the device; read the verdict back on a schedule.

    :meth:`observe` costs a few small device operations and no host synchronisation: it
    records, per term, the first observed step at which the term was not finite and its
    value. :meth:`check` reads that record back (one synchronisation), raises
    :class:`NonFiniteLossError` naming the first offending step and term, and forgets
    the steps it has cleared. Any non-finite term between two checks is caught, not only
    one at the checked step; the optimiser steps in between have run, which is why the
    trainer checks at least at the end of every epoch, before it writes a checkpoint.

    Example:
        >>> guard = FiniteGuard()
        >>> guard.observe({"loss": torch.tensor(1.0)}, "step 1")
        >>> guard.observe({"loss": torch.tensor(float("nan"))}, "step 2")
        >>> guard.check()  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        NonFiniteLossError: non-finite loss at step 2: term 'loss' = nan ...
    """

    def __init__(self) -> None:
        self._wheres: list[str] = []
        # term names -> ((T,) first bad step or -1, (T,) the value at that step)
        self._seen: dict[tuple[str, ...], tuple[Tensor, Tensor]] = {}

    def observe(self, terms: dict[str, Tensor], where: str) -> None:
        """Record this step's terms (0-d tensors); no host synchronisation."""
        step = len(self._wheres)
        self._wheres.append(where)
        names = tuple(terms)
        if not names:
            return
        values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        bad = ~torch.isfinite(values)
        if names not in self._seen:
            self._seen[names] = (torch.full_like(values, -1.0), torch.zeros_like(values))
        first, value = self._seen[names]
        new = bad & (first < 0)
        self._seen[names] = (torch.where(new, float(step), first), torch.where(new, values, value))

    def check(self, read: dict[str, Tensor] | None = None) -> dict[str, float]:
        """Raise for a non-finite term seen since the last check; else forget those steps.

        Args:
            read: more 0-d tensors to bring to the host in the same synchronisation
                (e.g. running sums for a progress bar).

        Returns:
            ``read`` as floats.
        """
        read = read or {}
        parts = [t for pair in self._seen.values() for t in pair]
        parts += [v.detach().double().reshape(1).to(parts[0].device if parts else v.device)
                  for v in read.values()]
        flat = torch.cat([p.double().reshape(-1) for p in parts]).tolist() if parts else []
        pos, worst = 0, None
        for names in self._seen:
            n = len(names)
            steps, vals = flat[pos:pos + n], flat[pos + n:pos + 2 * n]
            pos += 2 * n
            for name, st, v in zip(names, steps, vals):
                if st >= 0 and (worst is None or st < worst[0]):
                    worst = (int(st), name, v)
        if worst is not None:
            raise _non_finite(self._wheres[worst[0]], worst[1], worst[2],
                              self._wheres[-1] if self._wheres else "")
        self._wheres, self._seen = [], {}
        return dict(zip(read, flat[pos:]))


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


def source_triplet_term(
    out_s: dict[str, Any], batch_s: dict[str, Any], config: TrainConfig, use_parts: bool
) -> Tensor:
    """Batch-hard triplet loss of the source batch (:func:`~.losses.triplet_loss`).

    On the features before the BNNeck (``global_raw``; with ``config.parts.triplet_parts`` and
    ``use_parts`` also ``part_raw``, invisible parts masked), with
    ``config.optim.triplet_margin`` (None: soft margin).
    """
    feats = out_s["global_raw"]
    part_raw = out_s.get("part_raw")
    if config.parts.triplet_parts and use_parts and part_raw is not None and part_raw.shape[1] > 0:
        feats = torch.cat([feats.unsqueeze(1), part_raw.to(feats.dtype)], dim=1)
        vis = out_s["visibility"]
        visibility = torch.cat([vis.new_ones(vis.shape[0], 1), vis], dim=1)
        return triplet_loss(feats, batch_s["pid"], margin=config.optim.triplet_margin,
                            visibility=visibility)
    return triplet_loss(feats, batch_s["pid"], margin=config.optim.triplet_margin)


def step_losses(
    out_s: dict[str, Any],
    batch_s: dict[str, Any],
    out_t: dict[str, Any] | None,
    batch_t: dict[str, Any] | None,
    *,
    objective: TargetObjective | None,
    config: TrainConfig,
    use_parts: bool,
    check_labels: bool = True,
) -> dict[str, Tensor]:
    """Loss terms of one step.

    ``check_labels``: check the range of pids and part labels (host synchronisations);
    the trainer checks its data once and passes ``False``.

    Returns:
        ``source_id``, ``triplet`` (with ``config.optim.triplet_weight > 0``),
        ``target_memory`` (the objective's loss, with a target batch), ``part_map``
        (where labels exist) and the weighted total ``loss``.
    """
    if out_s["id_logits"] is None:
        raise ValueError("model returned no id_logits: build it with num_classes > 0")
    has_parts = out_s["part_feats"] is not None and out_s["part_feats"].shape[1] > 0
    terms: dict[str, Tensor] = {}
    _, per_head = identity_loss(
        out_s["id_logits"], batch_s["pid"],
        visibility=out_s["visibility"] if has_parts else None,
        use_parts=use_parts, label_smoothing=config.optim.label_smoothing,
        check_labels=check_labels,
    )
    n_heads = 1 + (per_head.numel() - 1 if use_parts else 0)
    terms["source_id"] = reduce_heads(per_head[:n_heads], part_weight=config.parts.part_head_weight,
                                      reduction=config.parts.head_reduction)
    if config.optim.triplet_weight > 0:
        terms["triplet"] = source_triplet_term(out_s, batch_s, config, use_parts)
    part_terms = [part_map_term(out_s, batch_s, config, check_labels=check_labels)]
    if out_t is not None and batch_t is not None:
        if objective is None:
            raise ValueError("a target batch needs a target objective")
        terms["target_memory"] = objective.loss(out_t, batch_t)
        if config.parts.target_part_loss:
            part_terms.append(
                part_map_term(out_t, batch_t, config, check_labels=check_labels)
            )
    valid = [p for p in part_terms if p is not None]
    if valid:
        terms["part_map"] = torch.stack(valid).mean()
    ws, wt = config.loss_weights() if "target_memory" in terms else (1.0, 0.0)
    loss = ws * terms["source_id"]
    if "target_memory" in terms:
        loss = loss + wt * terms["target_memory"]
    if "part_map" in terms:
        loss = loss + config.parts.part_loss_weight * terms["part_map"]
    if "triplet" in terms:
        loss = loss + config.optim.triplet_weight * terms["triplet"]
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
