"""The pretrained-weight registry: name -> URL, sha256, architecture, data config, licence.

It holds torchvision's ImageNet ResNet-18/34/50 weights and has room for re-ID
checkpoints (:func:`register_pretrained`, which asks them for the full sha256).

Example:
    >>> sorted(list_pretrained(kind="backbone"))[:2]
    ['resnet18.tv_in1k', 'resnet34.tv_in1k']
    >>> resolve_pretrained_name("imagenet", "semparts_resnet50")
    'resnet50.tv_in1k'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InputError
from .constants import IMAGENET_MEAN, IMAGENET_STD
from .download import HASH_IN_NAME, SHA256_HEX, filename_from_url

__all__ = [
    "PretrainedCfg",
    "get_pretrained_cfg",
    "list_pretrained",
    "register_pretrained",
    "resolve_pretrained_name",
]


@dataclass(frozen=True)
class PretrainedCfg:
    """One registry entry.

    Attributes:
        name: registry name, e.g. ``"resnet50.tv_in1k"``.
        url: where the file is downloaded from.
        sha256: full sha256 (64 hex digits) or, for torchvision files, the hex prefix the
            file name carries (``resnet18-f37072fd.pth`` -> ``"f37072fd"``).
        arch: ``"resnet50"`` for a backbone, a ``build_model`` name for a re-ID model.
        kind: ``"backbone"`` (loaded leniently into ``model.backbone``) or ``"reid"``
            (a full checkpoint, loaded strictly).
        data_config: preprocessing the weights were trained with (input size, mean, std).
        licence: licence / terms of the weights.
        description: one line for humans.
        model_kwargs: keyword arguments for ``build_model`` (re-ID checkpoints).
    """

    name: str
    url: str
    sha256: str
    arch: str
    kind: Literal["backbone", "reid"]
    data_config: Mapping[str, Any]
    licence: str
    description: str = ""
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        """File name in the cache (the last component of the URL path)."""
        return filename_from_url(self.url)


_REGISTRY: dict[str, PretrainedCfg] = {}
_TV_LICENCE = (
    "BSD-3-Clause (torchvision); trained on ImageNet-1k, whose terms allow "
    "non-commercial research and educational use"
)
_IN1K_224 = {
    "input_size": (224, 224),
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
    "interpolation": "bilinear",
}


def register_pretrained(cfg: PretrainedCfg, *, overwrite: bool = False) -> PretrainedCfg:
    """Add ``cfg`` to the registry and return it.

    Re-ID checkpoints (``kind="reid"``) must carry the full 64-digit sha256; backbone
    entries may carry a hex prefix (the torchvision convention).

    Raises:
        ValueError: on a duplicate name (unless ``overwrite``), a bad hash or kind.
    """
    if cfg.name in _REGISTRY and not overwrite:
        raise ValueError(f"pretrained name {cfg.name!r} is already registered")
    if cfg.kind not in ("backbone", "reid"):
        raise ValueError(f"kind={cfg.kind!r}; expected 'backbone' or 'reid'")
    if not SHA256_HEX.match(cfg.sha256):
        raise ValueError(f"{cfg.name}: sha256={cfg.sha256!r} is not 6-64 lowercase hex digits")
    if cfg.kind == "reid" and len(cfg.sha256) != 64:
        raise ValueError(f"{cfg.name}: re-ID checkpoints need the full 64-digit sha256")
    _REGISTRY[cfg.name] = cfg
    return cfg


for _arch, _url in (
    ("resnet18", "https://download.pytorch.org/models/resnet18-f37072fd.pth"),
    ("resnet34", "https://download.pytorch.org/models/resnet34-b627a593.pth"),
    ("resnet50", "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
):
    register_pretrained(
        PretrainedCfg(
            name=f"{_arch}.tv_in1k",
            url=_url,
            sha256=HASH_IN_NAME.search(_url).group(1),  # type: ignore[union-attr]
            arch=_arch,
            kind="backbone",
            data_config=_IN1K_224,
            licence=_TV_LICENCE,
            description=f"torchvision {_arch} IMAGENET1K_V1 (the classic re-ID initialisation)",
        )
    )
register_pretrained(
    PretrainedCfg(
        name="resnet50.tv2_in1k",
        url="https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        sha256="11ad3fa6",
        arch="resnet50",
        kind="backbone",
        data_config={**_IN1K_224, "input_size": (232, 232)},
        licence=_TV_LICENCE,
        description="torchvision resnet50 IMAGENET1K_V2 (longer training recipe)",
    )
)


def list_pretrained(kind: str | None = None) -> list[str]:
    """Registry names, sorted; ``kind="backbone"`` or ``"reid"`` filters."""
    if kind not in (None, "backbone", "reid"):
        raise ValueError(f"kind={kind!r}; expected None, 'backbone' or 'reid'")
    return sorted(n for n, c in _REGISTRY.items() if kind is None or c.kind == kind)


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """The registry entry called ``name``.

    Raises:
        KeyError: naming the known entries.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        known = list_pretrained()
        raise KeyError(f"no pretrained weights named {name!r}; known: {known}") from None


def resolve_pretrained_name(source: str, arch: str | None = None) -> str | None:
    """Turn ``"imagenet"`` (+ a model arch such as ``"semparts_resnet50"``) into a name.

    Returns the registry name, ``source`` itself when it is a registry name, else ``None``.

    Raises:
        InputError: ``"imagenet"`` without an ``arch``, or for an arch with no ImageNet
            weights in the registry.
    """
    if source in _REGISTRY:
        return source
    if source.lower() == "imagenet":
        if arch is None:
            raise InputError("pretrained='imagenet' needs the model's arch to pick the weights")
        match = re.search(r"resnet(18|34|50)", arch)
        if match is None:
            raise InputError(f"no ImageNet weights registered for arch {arch!r}")
        return f"resnet{match.group(1)}.tv_in1k"
    return None
