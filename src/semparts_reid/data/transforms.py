"""Joint image + part-map transforms, built from a model's ``data_config``.

Every geometric operation (resize, pad + random crop, horizontal flip) is applied to the
image and to its part map with the same parameters (the map with nearest-neighbour
resizing), so labels stay on the pixels they describe. Photometric operations (colour
jitter, normalisation) touch only the image. Random erasing replaces a rectangle of the
image with noise; by default the part map marks that rectangle 255 (ignore), because
what lies under the noise is unknown (``erase_parts="keep"`` or ``"background"``
change that).

Normalisation constants come from the model's ``data_config``
(``{"input_size": (H, W), "mean": (...), "std": (...), "interpolation": "bilinear"}``)::

    >>> t = build_transforms(model.data_config, train=True)  # doctest: +SKIP
    >>> image, parts = t(pil_image, part_map)                # (3, H, W) float, (H, W) int64
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..layers.parts import BACKGROUND, IGNORE_INDEX

__all__ = ["JointTransform", "build_transforms", "check_data_config"]

_INTERP = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


def check_data_config(data_config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a data config and return a normalised copy."""
    if not isinstance(data_config, Mapping):
        raise TypeError(f"data_config must be a dict, got {type(data_config).__name__}")
    missing = {"input_size", "mean", "std"} - set(data_config)
    if missing:
        raise ValueError(
            f"data_config lacks {sorted(missing)}: expected keys input_size (H, W), mean, std"
        )
    size = tuple(int(s) for s in data_config["input_size"])
    if len(size) == 3:  # timm-style (C, H, W)
        size = size[1:]
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"data_config['input_size']={data_config['input_size']}: expected (H, W)")
    mean, std = tuple(map(float, data_config["mean"])), tuple(map(float, data_config["std"]))
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean={mean}, std={std}: expected 3 values each, std > 0")
    interp = str(data_config.get("interpolation", "bilinear"))
    if interp not in _INTERP:
        raise ValueError(f"interpolation={interp!r}: expected one of {sorted(_INTERP)}")
    return {"input_size": size, "mean": mean, "std": std, "interpolation": interp}


def _rand(generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=generator)


class JointTransform:
    """Resize (+ pad/crop, flip, jitter, erasing when training) an image and its part map.

    Args:
        input_size: output ``(H, W)``.
        mean, std: per-channel normalisation (RGB, images in [0, 1]).
        train: enable the random augmentations below.
        interpolation: image resize filter; part maps always use nearest.
        pad: zero padding before the random crop (pixels, each side).
        flip_p: probability of a horizontal flip.
        erasing_p: probability of random erasing (after normalisation).
        erase_parts: what the part map holds under an erased box: ``"ignore"`` (255),
            ``"keep"`` or ``"background"``.
        color_jitter: strength ``s``: brightness, contrast and saturation factors drawn
            from ``[1 - s, 1 + s]``; 0 disables.
        label_dtype: dtype of the returned part map: ``torch.int64`` (default) or
            ``torch.uint8`` (an eighth of the memory and host-to-GPU traffic; the
            trainer's loaders use it and convert on the device where the loss needs it).

    Call: ``(image, parts=None, *, geometry=None, generator=None, labels=True) ->
    (image, parts)`` with ``image`` a PIL image or uint8 array (H0, W0, 3), ``parts`` a
    uint8/int array (H0, W0) or None; returns float32 (3, H, W) and a ``label_dtype``
    (H, W) map (255 where unknown), or None for the map with ``labels=False`` (no map
    given and none wanted: the same image and random draws, without the map's work).
    Pass the same ``geometry`` (from :meth:`sample_geometry`) to transform a second view
    of the image with identical crop and flip.
    """

    def __init__(
        self,
        input_size: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        *,
        train: bool = False,
        interpolation: str = "bilinear",
        pad: int = 10,
        flip_p: float = 0.5,
        erasing_p: float = 0.5,
        erase_parts: str = "ignore",
        color_jitter: float = 0.0,
        label_dtype: torch.dtype = torch.int64,
    ) -> None:
        cfg = check_data_config(
            {"input_size": input_size, "mean": mean, "std": std, "interpolation": interpolation}
        )
        if erase_parts not in ("ignore", "keep", "background"):
            raise ValueError(f"erase_parts={erase_parts!r}: expected ignore, keep or background")
        for name, p in (("flip_p", flip_p), ("erasing_p", erasing_p)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}={p}: expected a probability in [0, 1]")
        if pad < 0 or not 0.0 <= color_jitter < 1.0:
            raise ValueError(f"pad={pad}, color_jitter={color_jitter}: expected pad >= 0, 0<=s<1")
        self.size: tuple[int, int] = cfg["input_size"]
        self.mean = torch.tensor(cfg["mean"]).view(3, 1, 1)
        self.std = torch.tensor(cfg["std"]).view(3, 1, 1)
        self.interpolation = cfg["interpolation"]
        self.train, self.pad, self.flip_p = train, int(pad), float(flip_p)
        self.erasing_p, self.erase_parts = float(erasing_p), erase_parts
        self.color_jitter = float(color_jitter)
        if label_dtype not in (torch.int64, torch.uint8):
            raise ValueError(f"label_dtype={label_dtype}: expected torch.int64 or torch.uint8")
        self.label_dtype = label_dtype

    def __repr__(self) -> str:
        return (
            f"JointTransform(size={self.size}, train={self.train}, pad={self.pad}, "
            f"flip_p={self.flip_p}, erasing_p={self.erasing_p}, erase_parts={self.erase_parts!r}"
            f", color_jitter={self.color_jitter})"
        )

    def sample_geometry(self, generator: torch.Generator | None = None) -> dict[str, int | bool]:
        """Draw crop offsets and flip for one sample (identity when not training)."""
        if not self.train:
            return {"top": self.pad, "left": self.pad, "flip": False}
        r = _rand(generator, 3)
        span = 2 * self.pad + 1
        return {
            "top": int(r[0] * span),
            "left": int(r[1] * span),
            "flip": bool(r[2] < self.flip_p),
        }

    def __call__(
        self,
        image: Image.Image | np.ndarray,
        parts: np.ndarray | None = None,
        *,
        geometry: Mapping[str, int | bool] | None = None,
        generator: torch.Generator | None = None,
        labels: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, w = self.size
        pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image
        if pil.mode != "RGB":
            pil = pil.convert("RGB")
        if parts is not None:
            parts = np.asarray(parts)
            if parts.shape != (pil.size[1], pil.size[0]):
                raise ValueError(
                    f"parts shape {parts.shape} differs from image size (H, W)="
                    f"{(pil.size[1], pil.size[0])}: expected the same"
                )
        if pil.size != (w, h):
            pil = pil.resize((w, h), _INTERP[self.interpolation])
        img = torch.from_numpy(np.array(pil, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
        lab: torch.Tensor | None = None
        if parts is not None:
            pm = Image.fromarray(parts.astype(np.uint8))
            if pm.size != (w, h):
                pm = pm.resize((w, h), Image.Resampling.NEAREST)
            lab = torch.from_numpy(np.array(pm, dtype=np.uint8))
        elif labels:
            lab = torch.full((h, w), IGNORE_INDEX, dtype=torch.uint8)
        if self.train:
            geo = geometry if geometry is not None else self.sample_geometry(generator)
            img, lab = self._crop_flip(img, lab, geo)
            if self.color_jitter > 0:
                img = self._jitter(img, generator)
        img = (img - self.mean) / self.std
        if self.train and self.erasing_p > 0:
            img, lab = self._erase(img, lab, generator)
        return img, (lab.to(self.label_dtype) if lab is not None else None)

    def _crop_flip(
        self, img: torch.Tensor, lab: torch.Tensor | None, geo: Mapping[str, int | bool]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        p = self.pad
        if p:
            h, w = self.size
            t, l = int(geo["top"]), int(geo["left"])
            if not (0 <= t <= 2 * p and 0 <= l <= 2 * p):
                raise ValueError(f"geometry {dict(geo)}: offsets must lie in [0, {2 * p}]")
            img = torch.nn.functional.pad(img, (p, p, p, p))[:, t : t + h, l : l + w]
            if lab is not None:
                fill = BACKGROUND if bool((lab != IGNORE_INDEX).any()) else IGNORE_INDEX
                lab = torch.nn.functional.pad(lab, (p, p, p, p), value=fill)[t : t + h, l : l + w]
        if geo["flip"]:
            img = img.flip(-1)
            lab = lab.flip(-1) if lab is not None else None
        return img.contiguous(), (lab.contiguous() if lab is not None else None)

    def _jitter(self, img: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        s = self.color_jitter
        b, c, sat = (1.0 - s + 2.0 * s * _rand(generator, 3)).tolist()
        img = img * b
        mean = img.mean()
        img = (img - mean) * c + mean
        gray = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).unsqueeze(0)
        img = (img - gray) * sat + gray
        return img.clamp(0.0, 1.0)

    def _erase(
        self, img: torch.Tensor, lab: torch.Tensor | None, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        r = _rand(generator, 5)
        if r[0] >= self.erasing_p:
            return img, lab
        h, w = self.size
        area = h * w * (0.02 + 0.38 * float(r[1]))
        ratio = math.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * float(r[2]))
        eh = min(h, max(1, int(round(math.sqrt(area * ratio)))))
        ew = min(w, max(1, int(round(math.sqrt(area / ratio)))))
        top, left = int(float(r[3]) * (h - eh + 1)), int(float(r[4]) * (w - ew + 1))
        img = img.clone()
        img[:, top : top + eh, left : left + ew] = torch.randn((3, eh, ew), generator=generator)
        if lab is not None and self.erase_parts != "keep":
            lab = lab.clone()
            value = IGNORE_INDEX if self.erase_parts == "ignore" else BACKGROUND
            lab[top : top + eh, left : left + ew] = value
        return img, lab


def build_transforms(
    data_config: Mapping[str, Any], *, train: bool = False, **kwargs: Any
) -> JointTransform:
    """A :class:`JointTransform` from a model's ``data_config`` (train or test).

    ``kwargs`` (``pad``, ``flip_p``, ``erasing_p``, ``erase_parts``, ``color_jitter``)
    tune the training augmentations; ``label_dtype`` sets the part map's dtype.
    """
    cfg = check_data_config(data_config)
    return JointTransform(
        cfg["input_size"],
        cfg["mean"],
        cfg["std"],
        train=train,
        interpolation=cfg["interpolation"],
        **kwargs,
    )
