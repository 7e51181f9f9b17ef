"""``build_model`` / ``list_models``: one flat dict of builders, no registry machinery."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ..errors import InputError
from .names import MODEL_NAMES
from .sempartsnet import SemPartsNet

__all__ = ["build_model", "list_models"]

# "semparts_resnet50" -> SemPartsNet("resnet50", parts=True); the names live in .names
_MODELS: dict[str, Callable[..., SemPartsNet]] = {
    name: partial(SemPartsNet, name.split("_", 1)[1], parts=name.startswith("semparts_"))
    for name in MODEL_NAMES
}
_FIXED_BY_NAME = ("backbone", "parts")
DEFAULT_PRETRAINED = "imagenet"  # what ``pretrained=True`` means


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted.

    ``semparts_*`` have the semantic part branch; ``ecn_*`` are the global-only
    ECN-style baselines with the same backbone and heads.
    """
    return sorted(_MODELS)


def build_model(
    name: str = "semparts_resnet50",
    *,
    num_classes: int = 0,
    pretrained: bool | str | os.PathLike[str] | Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> SemPartsNet:
    """Build a model by name.

    Args:
        name: one of :func:`list_models`.
        num_classes: source identities (``> 0`` adds the identity classifiers).
        pretrained: ``None`` or ``False`` (random init), ``True`` (the default weights,
            i.e. ``"imagenet"``: torchvision's ImageNet weights for the backbone),
            ``"imagenet"``, a registry name, a local checkpoint / state-dict path, a URL,
            or a loaded state dict; loaded with :func:`semparts_reid.hub.load_pretrained`
            (ImageNet weights go into the backbone, full re-ID checkpoints into the whole
            model).
        **kwargs: further :class:`SemPartsNet` options (``pooling``, ``last_stride``,
            ``frozen_stages``, ``input_size``, ...). ``backbone`` and ``parts`` are fixed
            by the name.

    Returns:
        The :class:`SemPartsNet`, with ``arch == name``.

    Raises:
        InputError: unknown name (a ``ValueError``; the message lists the known ones).
        TypeError: ``backbone`` or ``parts`` passed as keyword arguments, or
            ``pretrained`` of another type (the message lists the accepted ones).

    Example:
        >>> build_model("ecn_resnet18").arch
        'ecn_resnet18'
    """
    if pretrained is True:
        pretrained = DEFAULT_PRETRAINED
    elif pretrained is False:
        pretrained = None
    elif pretrained is not None and not isinstance(pretrained, (str, os.PathLike, Mapping)):
        raise TypeError(
            f"pretrained={pretrained!r} ({type(pretrained).__name__}); expected None/False "
            f"(random init), True or {DEFAULT_PRETRAINED!r} (ImageNet backbone weights), a "
            "registry name (semparts_reid.list_pretrained()), a local path, a URL or a "
            "state dict"
        )
    builder = _MODELS.get(name)
    if builder is None:
        raise InputError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    fixed = [k for k in _FIXED_BY_NAME if k in kwargs]
    if fixed:
        raise TypeError(
            f"{', '.join(fixed)} cannot be passed to build_model: the name {name!r} fixes them "
            f"(choose another name from {list_models()})"
        )
    model = builder(num_classes=num_classes, **kwargs)
    if model.arch != name:  # pragma: no cover - guards the table above
        raise RuntimeError(f"builder for {name!r} produced arch {model.arch!r}")
    if pretrained is not None:
        from ..hub import load_pretrained

        load_pretrained(model, pretrained)
    return model
