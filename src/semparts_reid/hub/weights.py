"""Weight loading: read a weights file safely, match its keys to a module, report the rest.

* :func:`load_weights_file`: any weights file (registry name, URL or path) read with
  ``torch.load(weights_only=True)``; a training checkpoint is read by
  :func:`semparts_reid.engine.checkpoint.load_training_checkpoint` instead.
* :func:`load_matching_weights`: the one key-matching loader behind :func:`load_pretrained`
  and ``DomainAdaptTrainer.load_weights``: it strips ``module.`` / ``_orig_mod.``
  prefixes, logs a discrepancy at WARNING with counts and the first names, and refuses
  weights that fill less than half of the module's weight kernels (another architecture,
  :class:`WeightsMismatchError`) unless ``strict=False``.
* :func:`load_pretrained`: ``"imagenet"``, a registry name, a URL, a file or a dict into a
  model, strict for our checkpoints, lenient (with that check) for ImageNet backbones and
  for torchreid / fast-reid checkpoints, whose keys :mod:`.peer_formats` renames.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from .peer_formats import (
    WEIGHT_FORMATS,
    detect_weights_format,
    map_peer_state,
    torch_load_weights_only,
)
from .registry import get_pretrained_cfg, resolve_pretrained_name
from .sources import download_weights

__all__ = [
    "MIN_FILL",
    "LoadReport",
    "StrictWeightsError",
    "WeightsMismatchError",
    "load_matching_weights",
    "load_pretrained",
    "load_weights_file",
]

logger = logging.getLogger(__name__)

_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP and torch.compile wrappers


MIN_FILL = 0.5
"""Least fraction of a module's weight kernels that non-strict loading must fill."""


class WeightsMismatchError(InputError):
    """Weights fill too little of a module: they were saved from another architecture.

    An :class:`~semparts_reid.errors.InputError` (so a ``ValueError``): the caller named the
    wrong file, and the command line reports it as bad input.
    """


class StrictWeightsError(InputError, RuntimeError):
    """``strict=True`` and the weights differ from the model (missing, unexpected or
    mis-shaped keys): the file does not belong to this model.

    An :class:`~semparts_reid.errors.InputError`, and a ``RuntimeError`` as
    ``load_state_dict`` raises, for callers that catch that.
    """


def _fill_counted(own: Mapping[str, torch.Tensor]) -> list[str]:
    """The keys the fill rule counts: weight kernels (tensors with >= 2 dims).

    Conv and linear weights decide what a network computes; BatchNorm vectors match
    whenever two networks share a channel width, so counting them would let a ResNet-50
    checkpoint "fill" 77 % of a ResNet-18. A module without kernels counts every tensor
    but the ``num_batches_tracked`` counters.
    """
    kernels = [k for k, v in own.items() if v.dim() >= 2]
    return kernels or [k for k in own if not k.endswith("num_batches_tracked")]


@dataclass
class LoadReport:
    """What :func:`load_pretrained` / :func:`load_matching_weights` did.

    Attributes:
        source: where the weights came from.
        target: ``"model"`` or ``"backbone"`` (the sub-module the keys were matched to).
        loaded: keys copied into the model.
        missing: model keys absent from the weights.
        unexpected: weight keys the model does not have.
        mismatched: ``(key, weights shape, model shape)`` for keys whose shapes differ.
        strict: whether any of the above would have raised.
        counted: weight kernels of the target the fill rule counts (see :attr:`fill`).
        filled: how many of those the weights filled.
        format: the layout the keys were read as (``"semparts"``, ``"torchreid"``,
            ``"fastreid"``).
        notes: what the key mapping decided (a classifier skipped, blocks left out).
    """

    source: str
    target: str
    loaded: list[str]
    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]
    strict: bool
    counted: int = 0
    filled: int = 0
    format: str = "semparts"
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every key matched in name and shape."""
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def fill(self) -> float:
        """Fraction of the target's weight kernels (tensors with >= 2 dims) that were filled.

        ``1.0`` for a target without tensors.
        """
        return self.filled / self.counted if self.counted else 1.0

    def summary(self, max_keys: int = 10) -> str:
        """One human-readable paragraph: counts, then the first ``max_keys`` names of each list."""

        def fmt(keys: list[str]) -> str:
            more = f", ... (+{len(keys) - max_keys})" if len(keys) > max_keys else ""
            return ", ".join(keys[:max_keys]) + more

        layout = "" if self.format == "semparts" else f" ({self.format} layout)"
        lines = [
            f"loaded {len(self.loaded)} tensors from {self.source}{layout} into {self.target} "
            f"(filled {self.filled} of {self.counted} weight kernels, {self.fill:.0%})"
        ]
        lines += [f"  {note}" for note in self.notes]
        if self.missing:
            lines.append(f"  missing in weights ({len(self.missing)}): {fmt(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected in weights ({len(self.unexpected)}): "
                         f"{fmt(self.unexpected)}")
        if self.mismatched:
            shown = [f"{k} {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
            lines.append(f"  shape mismatch ({len(shown)}): {fmt(shown)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def load_weights_file(
    source: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read any weights file (registry name, URL or path) safely: a checkpoint or a state dict.

    Uses ``torch.load(weights_only=True)``: only tensors and plain containers, never
    arbitrary pickled objects.

    Returns:
        The loaded dict: a checkpoint (``{"format", "arch", "model_kwargs",
        "data_config", "model", ...}``) or a plain state dict.

    Raises:
        InputError: the file cannot be read by ``torch.load`` (not a checkpoint,
            truncated, or holding pickled objects), or holds something else than a dict.
    """
    path = download_weights(source, progress=logger.isEnabledFor(logging.INFO))
    try:
        obj = torch_load_weights_only(path, map_location)
    except (MemoryError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as exc:  # not a torch file: pickle/zip/EOF/Index errors, and more
        raise InputError(
            f"{path} is not a readable checkpoint or state dict ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(obj, Mapping):
        raise InputError(f"{path}: expected a state dict or a checkpoint dict, got {type(obj)!r}")
    return dict(obj)


def _extract_state_dict(obj: Mapping[str, Any], source: str) -> dict[str, torch.Tensor]:
    state = obj["model"] if "model" in obj and isinstance(obj["model"], Mapping) else obj
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue  # checkpoint metadata mixed in a state dict
        name = str(key)
        stripped = True
        while stripped:
            stripped = False
            for prefix in _PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix):], True
        out[name] = value
    if not out:
        raise InputError(f"{source}: no tensors found (expected a state dict or a 'model' key)")
    return out


def _pick_target(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """``"backbone"`` when the keys fit ``model.backbone`` better than the model."""
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        return "model"
    keys = set(state)
    hits_model = len(keys & set(model.state_dict()))
    hits_backbone = len(keys & set(backbone.state_dict()))
    return "backbone" if hits_backbone > hits_model else "model"


def load_matching_weights(
    module: nn.Module,
    weights: Mapping[str, Any],
    *,
    source: str = "<state dict>",
    target: str = "model",
    strict: bool | None = None,
    expected_unexpected: tuple[str, ...] = (),
    format: str = "semparts",
) -> LoadReport:
    """Copy the tensors of ``weights`` that match ``module`` in name and shape; report the rest.

    The one loader behind :func:`load_pretrained` and
    ``DomainAdaptTrainer.load_weights``. Any missing, unexpected or shape-mismatched key
    is logged at WARNING with counts and the first five names of each kind.

    **Fill rule.** Unless ``strict=False``, the weights must fill at least
    :data:`MIN_FILL` (half) of ``module``'s *weight kernels*, i.e. its tensors with two
    or more dimensions (conv and linear weights; BatchNorm vectors and counters are not
    counted, because they match whenever two networks share a channel width). Only the
    module the keys were matched to is counted: torchvision ImageNet weights are matched
    to ``model.backbone``, so the re-ID heads they cannot fill do not count against them
    (ResNet-50 into ``semparts_resnet50``: 53 of 53 backbone kernels, 100 %; counted over
    the whole model it would still be 53 of 55). A checkpoint of another depth falls
    below half (ResNet-50 into a ResNet-18 backbone: 9 of 20 kernels, 45 %; ResNet-18
    into ResNet-50: 9 of 53, 17 %), while a checkpoint whose only difference is the
    identity classifier of another source fills all but one kernel.

    Args:
        module: the module to load into (a model or its backbone).
        weights: a state dict or a checkpoint dict with a ``"model"`` (or
            ``"state_dict"``) entry; ``module.`` / ``_orig_mod.`` prefixes are stripped and
            non-tensor entries ignored.
        source: how to name the weights in messages (a file path, a registry name).
        target: how to name ``module`` in messages (``"model"`` or ``"backbone"``).
        strict: ``True``: every key must match, else :class:`StrictWeightsError` and nothing is
            loaded. ``None``: load the matching keys, raise :class:`WeightsMismatchError`
            when they fill less than :data:`MIN_FILL` of the kernels. ``False``: load the
            matching keys whatever they fill.
        expected_unexpected: key prefixes of ``weights`` known to have no counterpart
            (``("fc.",)``, the ImageNet classifier, for a backbone); they stay in
            ``unexpected`` but alone they are logged at INFO, not WARNING.
        format: the layout of ``weights``: ``"semparts"`` (default: names as they are),
            ``"torchreid"``, ``"fastreid"`` (renamed by
            :func:`~semparts_reid.hub.peer_formats.map_peer_state` first; ``module`` must be
            the whole model) or ``"auto"`` (detected from the keys).

    Returns:
        The :class:`LoadReport`.

    Raises:
        StrictWeightsError: ``strict=True`` and some key did not match (nothing is
            loaded); an ``InputError`` and a ``RuntimeError``.
        WeightsMismatchError: ``strict=None`` and less than half of the kernels were
            filled (nothing is loaded); the message names ``source`` and the fraction.
        InputError: ``weights`` holds no tensors, or ``format`` does not fit its keys.
    """
    state = _extract_state_dict(weights, source)
    peer = map_peer_state(module, state, format, source=source)
    state = peer.state
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    bad = {k for k, _, _ in mismatched}
    loadable = {k: v for k, v in state.items() if k in own and k not in bad}
    counted = _fill_counted(own)
    report = LoadReport(
        source, target, sorted(loadable), missing, unexpected, mismatched, strict is True,
        counted=len(counted), filled=sum(k in loadable for k in counted),
        format=peer.format, notes=peer.notes,
    )
    if strict is True and not report.ok:
        raise StrictWeightsError(
            "weights do not match the model (pass strict=False to load what matches):\n"
            + report.summary()
        )
    if strict is None and report.fill < MIN_FILL:
        raise WeightsMismatchError(
            f"{source}: the weights fill only {report.filled} of the {report.counted} weight "
            f"kernels of the {target} ({report.fill:.0%}; at least {MIN_FILL:.0%} expected), "
            "so they were saved from another architecture; nothing was loaded. Pass "
            f"strict=False to load the {len(loadable)} matching tensors anyway.\n"
            + report.summary(max_keys=5)
        )
    module.load_state_dict(loadable, strict=False)
    benign = not (missing or mismatched) and all(
        k.startswith(expected_unexpected) for k in unexpected
    )
    (logger.info if benign else logger.warning)("%s", report.summary(max_keys=5))
    return report


def load_pretrained(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    strict: bool | None = None,
    sha256: str | None = None,
    format: str = "auto",
) -> LoadReport:
    """Load weights into ``model`` and report how the keys matched.

    Args:
        model: the network; a ``SemPartsNet`` exposes ``arch`` and ``backbone``.
        source: ``"imagenet"`` (torchvision weights for ``model.arch``), a registry name, a
            URL, a local file, or an already loaded (state) dict. Checkpoint dicts with a
            ``"model"`` key are unwrapped; ``module.`` / ``_orig_mod.`` prefixes are stripped.
            Weights whose keys match ``model.backbone`` (torchvision ResNet keys) go there.
        strict: ``True``: raise on any missing, unexpected or mismatched key. ``None``
            (default): ``True`` for full-model weights; for backbone weights, load what
            matches (the classifier ``fc`` of an ImageNet model has no counterpart) but
            raise :class:`WeightsMismatchError` when less than half of the backbone's
            weight kernels were filled (see :func:`load_matching_weights` for the rule).
            ``False``: load whatever matches, however little, with a warning.
        sha256: expected sha256 for a URL or local file.
        format: ``"auto"`` (detected from the keys), ``"semparts"`` (ours, torchvision's),
            ``"torchreid"`` or ``"fastreid"``: their backbone, BNNeck and (same classes)
            classifier mapped by :mod:`.peer_formats`, loaded with the fill rule of
            ``strict=None``; the report names what had no place (``docs/weights.md``).

    Returns:
        A :class:`LoadReport`. Only keys that match in name and shape are copied. Missing,
        unexpected and mismatched keys are logged at WARNING with counts and names (the
        ImageNet classifier ``fc.*`` alone, at INFO).

    Raises:
        StrictWeightsError: ``strict`` and some key did not match (nothing is loaded);
            an ``InputError`` and a ``RuntimeError``.
        WeightsMismatchError: weights for another architecture (nothing is loaded).
        InputError: ``format`` is unknown or does not fit the keys (the message names them).
        TypeError: ``source`` is not a string, a path or a mapping.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model)!r}")
    if isinstance(source, Mapping):
        obj: Mapping[str, Any] = source
        label = "<state dict>"
    elif isinstance(source, (str, os.PathLike)):
        label = os.fspath(source)
        name = resolve_pretrained_name(label, getattr(model, "arch", None))
        if name is not None:
            cfg = get_pretrained_cfg(name)
            arch = getattr(model, "arch", None)
            if cfg.kind == "reid" and arch is not None and arch != cfg.arch:
                raise InputError(f"{name} holds weights for {cfg.arch!r}, model is {arch!r}")
            label = name
        obj = load_weights_file(download_weights(name or label, sha256=sha256))
    else:
        raise TypeError(
            f"source={source!r}: expected 'imagenet', a registry name, a path, a URL or a "
            "state dict"
        )
    state = _extract_state_dict(obj, label)
    if format not in WEIGHT_FORMATS:
        raise InputError(f"format={format!r}: expected one of {WEIGHT_FORMATS}")
    layout = detect_weights_format(state) if format == "auto" else format
    if layout != "semparts":
        return load_matching_weights(model, state, source=label, strict=strict, format=layout)
    target_name = _pick_target(model, state)
    target: nn.Module = model.backbone if target_name == "backbone" else model  # type: ignore[assignment]
    if strict is None and target_name == "model":
        strict = True
    return load_matching_weights(
        target, state, source=label, target=target_name, strict=strict,
        expected_unexpected=("fc.",) if target_name == "backbone" else (),
    )
