"""Key maps from torchreid and fast-reid ResNet-50 checkpoints onto ``SemPartsNet``.

Users of `torchreid <https://github.com/KaiyangZhou/deep-person-reid>`_ and
`fast-reid <https://github.com/JDAI-CV/fast-reid>`_ already hold re-ID ResNet-50 weights;
this module renames their keys to ours so :func:`semparts_reid.hub.load_matching_weights`
can copy what fits and report the rest. Key work, plus :func:`torch_load_weights_only`,
which also reads the numpy scalars torchreid's checkpoints hold.

=====================================  ==========================================
their key                              our key
=====================================  ==========================================
torchreid ``conv1``, ``bn1``,          ``backbone.conv1`` ... ``backbone.layer4``
``layer1`` ... ``layer4``
torchreid ``classifier.weight``        ``id_classifier.weight[0]`` (global head),
                                       only when classes and width match
torchreid ``fc.*`` (``resnet50_fc512``) not mapped (we have no embedding layer)
fast-reid ``backbone.*``               ``backbone.*`` (same names)
fast-reid ``heads.bottleneck.0.*``     ``global_neck.*`` (the BNNeck)
(``heads.bnneck.*`` before v0.2)
fast-reid ``heads.weight``             ``id_classifier.weight[0]``, as above
(``heads.classifier.weight`` < v1.2)
fast-reid ``heads.pool_layer.p``       ``global_pool.p`` (models built with ``pooling="gem"``)
fast-reid ``backbone.NL_*``,           not mapped (non-local, IBN-a and SE blocks have
``*.bn1.IN/BN.*``, ``*.se.*``          no place in our ResNet)
=====================================  ==========================================

Keys that have no place keep their own names, so the load report lists them as
"unexpected in weights"; model tensors nothing filled are "missing in weights".
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import InputError

__all__ = ["PEER_FORMATS", "WEIGHT_FORMATS", "PeerState", "detect_weights_format",
           "map_peer_state", "numpy_scalar_globals", "torch_load_weights_only"]

PEER_FORMATS = ("torchreid", "fastreid")
"""Layouts of other re-ID libraries that :func:`map_peer_state` renames."""
WEIGHT_FORMATS = ("auto", "semparts", *PEER_FORMATS)
"""Values of the ``format`` argument: ``"semparts"`` is our own layout (and torchvision's
ImageNet ResNets, whose keys are our backbone's)."""

_TRUNK = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


@dataclass
class PeerState:
    """A peer state dict renamed to our keys.

    Attributes:
        format: the layout it was read as (``"torchreid"`` or ``"fastreid"``).
        state: tensors under our names where they have a place, else under theirs.
        notes: one line per decision the report should explain (a classifier skipped,
            blocks with no counterpart, GeM pooling ...).
    """

    format: str
    state: dict[str, torch.Tensor]
    notes: list[str] = field(default_factory=list)


def torch_load_weights_only(path: str | os.PathLike[str],
                            map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, retried with numpy scalars allowed.

    The retry happens only when the first load failed on a numpy global; if it fails too,
    the first error is raised.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as first:
        if "numpy" not in str(first):
            raise
        try:
            with torch.serialization.safe_globals(numpy_scalar_globals()):
                return torch.load(path, map_location=map_location, weights_only=True)
        except Exception:
            raise first from None


def numpy_scalar_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` must allow to read numpy scalars.

    torchreid's engine saves ``rank1`` as a numpy float in its checkpoints. Rebuilding
    a numpy scalar or dtype runs no user code, so these globals are safe to allow; files
    pickled under numpy 1 name the rebuilder ``numpy.core.multiarray.scalar``.
    """
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    allowed: list[Any] = [scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: one dtype class per type
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    if scalar.__module__ != "numpy.core.multiarray":
        allowed.append((scalar, "numpy.core.multiarray.scalar"))
    return allowed


def detect_weights_format(keys: Mapping[str, object] | list[str]) -> str:
    """The layout of a state dict, from its (prefix-stripped) key names.

    * ``"fastreid"``: a ``heads.*`` key, or non-local blocks ``backbone.NL_*``;
    * ``"torchreid"``: torchvision ResNet keys (``conv1.weight``, ``layer1.*``) with a
      ``classifier.weight`` (every torchreid ResNet has one);
    * ``"semparts"``: anything else: our checkpoints, and torchvision ImageNet ResNets
      (``fc.*`` instead of ``classifier.*``), which load into the backbone as before.
    """
    names = list(keys)
    if any(k.startswith("heads.") or k.startswith("backbone.NL_") for k in names):
        return "fastreid"
    has_trunk = "conv1.weight" in names and any(k.startswith("layer1.") for k in names)
    if has_trunk and "classifier.weight" in names:
        return "torchreid"
    return "semparts"


def _first(keys: list[str], n: int = 5) -> str:
    more = f", ... (+{len(keys) - n})" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _check_layout(state: Mapping[str, torch.Tensor], fmt: str, source: str) -> None:
    """Raise when an explicitly named layout does not fit the keys at all."""
    if fmt == "torchreid":
        anchor, expected = "conv1.weight", "torchvision-style ResNet keys (conv1.*, layer1.*, ...)"
        fits = [k for k in state if k.split(".")[0] in (*_TRUNK, "fc", "classifier")]
    else:
        anchor, expected = "backbone.conv1.weight", "backbone.* and heads.* keys"
        fits = [k for k in state if k.startswith(("backbone.", "heads.", "pixel_"))]
    if anchor not in state:
        misfits = [k for k in state if k not in set(fits)] or list(state)
        raise InputError(
            f"{source}: format={fmt!r} expects {expected} (no {anchor!r}); these keys do not "
            f"fit ({len(misfits)}): {_first(misfits)}. Use format='auto' to detect the layout."
        )


def _map_classifier(
    own: Mapping[str, torch.Tensor], key: str, peer: Mapping[str, torch.Tensor],
    out: dict[str, torch.Tensor], notes: list[str],
) -> None:
    """Their ``(N, D)`` classifier into the global slice of our ``(1+K, N, D)`` one."""
    weight = peer[key]
    bias_key = key[: -len("weight")] + "bias"
    ours = own.get("id_classifier.weight")
    if ours is None or ours.dim() != 3 or tuple(ours.shape[1:]) != tuple(weight.shape):
        have = "none (built with num_classes=0)" if ours is None else \
            f"{ours.shape[1]} classes x {ours.shape[2]}"
        notes.append(f"classifier {key} ({weight.shape[0]} classes x {weight.shape[1]}) not "
                     f"mapped: the model's global classifier is {have}")
        out[key] = weight
        if bias_key in peer:
            out[bias_key] = peer[bias_key]
        return
    merged = ours.detach().clone()
    merged[0] = weight.to(merged.dtype)
    out["id_classifier.weight"] = merged
    notes.append(f"classifier {key} -> id_classifier.weight[0] (the global head; the "
                 f"{ours.shape[0] - 1} part heads keep their initialisation)")
    if bias_key in peer:
        if "id_classifier.bias" in own:
            bias = own["id_classifier.bias"].detach().clone()
            bias[0] = peer[bias_key].to(bias.dtype)
            out["id_classifier.bias"] = bias
        else:
            out[bias_key] = peer[bias_key]
            notes.append(f"{bias_key} not mapped: our classifiers have no bias")


def _map_torchreid(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor],
                   out: dict[str, torch.Tensor], notes: list[str]) -> None:
    for key, value in state.items():
        head = key.split(".")[0]
        if head in _TRUNK and "backbone." + key in own:
            out["backbone." + key] = value
        elif key == "classifier.weight":
            _map_classifier(own, key, state, out, notes)
        elif key != "classifier.bias" or "classifier.weight" not in state:
            out[key] = value
    if any(k.startswith("fc.") for k in state):
        notes.append("fc.* (torchreid's embedding layer after pooling) not mapped: our "
                     "feature is the pooled backbone map")


def _map_fastreid(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor],
                  out: dict[str, torch.Tensor], notes: list[str]) -> None:
    neck = "heads.bnneck."
    reduction = state.get("heads.bottleneck.0.weight")
    if reduction is not None and reduction.dim() == 1:
        neck = "heads.bottleneck.0."
    elif reduction is not None:
        notes.append(f"heads.bottleneck.* (a {reduction.shape[1]}->{reduction.shape[0]} "
                     "embedding reduction, then its BNNeck) not mapped: our feature is not "
                     "reduced")
    cls_key = "heads.weight" if "heads.weight" in state else "heads.classifier.weight"
    bias_key = cls_key[: -len("weight")] + "bias"
    for key, value in state.items():
        if key.startswith("backbone.") and key in own:
            out[key] = value
        elif key.startswith(neck) and "global_neck." + key[len(neck):] in own:
            out["global_neck." + key[len(neck):]] = value
        elif key == cls_key:
            _map_classifier(own, key, state, out, notes)
        elif key == "heads.pool_layer.p" and "global_pool.p" in own and value.numel() == 1:
            out["global_pool.p"] = value.reshape(own["global_pool.p"].shape)
        elif key == "heads.pool_layer.p":
            out[key] = value
            notes.append(f"heads.pool_layer.p (GeM, p={float(value.flatten()[0]):.2f}) not "
                         "mapped: build the model with pooling='gem' to use it")
        elif key != bias_key:  # the bias goes with its weight
            out[key] = value
    blocks = {
        "non-local blocks (backbone.NL_*)": [k for k in state if k.startswith("backbone.NL_")],
        "IBN-a norms (*.bn1.IN/BN)": [k for k in state if ".bn1.IN." in k or ".bn1.BN." in k],
        "squeeze-excitation blocks (*.se.*)": [k for k in state if ".se." in k],
    }
    for what, keys in blocks.items():
        if keys:
            notes.append(f"{what}, {len(keys)} tensors, not mapped: our ResNet has no such "
                         "blocks, so the backbone differs from the one trained; fine-tune it")


def map_peer_state(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    format: str = "auto",
    *,
    source: str = "<state dict>",
) -> PeerState:
    """Rename a torchreid or fast-reid state dict to ``model``'s keys.

    Args:
        model: a ``SemPartsNet`` (its ``state_dict`` names the targets).
        state: a prefix-stripped state dict (``module.`` removed).
        format: ``"auto"`` (:func:`detect_weights_format`), ``"torchreid"`` or
            ``"fastreid"``; ``"semparts"`` returns the state unchanged.
        source: how to name the weights in messages.

    Returns:
        A :class:`PeerState`: renamed tensors (shapes unchecked: the loader reports
        mismatches) and notes for the report.

    Raises:
        InputError: ``format`` is unknown, or an explicit peer format whose anchor key
            (``conv1.weight`` / ``backbone.conv1.weight``) is absent; the message names
            the first keys that do not fit.
    """
    if format not in WEIGHT_FORMATS:
        raise InputError(f"format={format!r}: expected one of {WEIGHT_FORMATS}")
    fmt = detect_weights_format(state) if format == "auto" else format
    if fmt == "semparts":
        return PeerState("semparts", dict(state))
    if format != "auto":
        _check_layout(state, fmt, source)
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    (_map_torchreid if fmt == "torchreid" else _map_fastreid)(state, own, out, notes)
    return PeerState(fmt, out, notes)
