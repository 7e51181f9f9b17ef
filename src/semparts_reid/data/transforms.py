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

    >>> import numpy as np
    >>> from PIL import Image
    >>> t = build_transforms({"input_size": (32, 16), "mean": (0.5,) * 3, "std": (0.5,) * 3},
    ...                      train=True)  # usually model.data_config
    >>> image, parts = t(Image.new("RGB", (16, 32)), Image.fromarray(np.zeros((32, 16), np.uint8)))
    >>> tuple(image.shape), image.dtype, tuple(parts.shape), parts.dtype
    ((3, 32, 16), torch.float32, (32, 16), torch.int64)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..layers.parts import BACKGROUND, IGNORE_INDEX

__all__ = ["EraseBox", "JointTransform", "build_transforms", "check_data_config", "finish_images"]

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
        self.mean_std: tuple[tuple[float, ...], tuple[float, ...]] = (cfg["mean"], cfg["std"])
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
        top, left = (r[:2] * (2 * self.pad + 1)).tolist()  # float32 products, as before
        return {"top": int(top), "left": int(left), "flip": bool(r[2] < self.flip_p)}

    def __call__(
        self,
        image: Image.Image | np.ndarray,
        parts: np.ndarray | None = None,
        *,
        geometry: Mapping[str, int | bool] | None = None,
        generator: torch.Generator | None = None,
        labels: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        pixels, lab = self._geometry(image, parts, geometry, generator, labels)
        img = pixels.float()
        img.div_(255.0)  # in place: the values of (x / 255 - mean) / std, fewer passes
        if self.train and self.color_jitter > 0:
            img = self._jitter(img, generator)
        img.sub_(self.mean).div_(self.std)
        box = self._draw_erase(generator) if self.train and self.erasing_p > 0 else None
        if box is not None:
            top, left, noise = box
            img[:, top : top + noise.shape[1], left : left + noise.shape[2]] = noise
            lab = self._erase_labels(lab, top, left, noise.shape[1:])
        return img, (lab.to(self.label_dtype) if lab is not None else None)

    def staged(
        self,
        image: Image.Image | np.ndarray,
        parts: np.ndarray | None = None,
        *,
        geometry: Mapping[str, int | bool] | None = None,
        generator: torch.Generator | None = None,
        labels: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, EraseBox | None]:
        """:meth:`__call__` without the float work: ``(pixels, parts, erase)``.

        ``pixels`` (3, H, W) uint8 after resize, crop and flip; ``parts`` final (erased
        too); ``erase`` ``(top, left, noise (3, eh, ew))`` or None. :func:`finish_images`
        turns a batch of them into exactly the images :meth:`__call__` returns (the same
        random draws in the same order), after collation and on any device: a quarter
        of the bytes to collate and copy, and one batched normalisation. Not available
        with ``color_jitter`` (a per-image float operation before normalisation).
        """
        if self.train and self.color_jitter > 0:
            raise ValueError("staged(): color_jitter needs the float image; call the transform")
        pixels, lab = self._geometry(image, parts, geometry, generator, labels)
        box = self._draw_erase(generator) if self.train and self.erasing_p > 0 else None
        if box is not None:
            lab = self._erase_labels(lab, box[0], box[1], box[2].shape[1:])
        return pixels, (lab.to(self.label_dtype) if lab is not None else None), box

    def _geometry(
        self,
        image: Image.Image | np.ndarray,
        parts: np.ndarray | None,
        geometry: Mapping[str, int | bool] | None,
        generator: torch.Generator | None,
        labels: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Resize (+ crop and flip when training) on uint8: (3, H, W) pixels, uint8 map."""
        h, w = self.size
        arr = _rgb_array(image)
        if parts is not None:
            parts = np.asarray(parts)
            if parts.shape != arr.shape[:2]:
                raise ValueError(
                    f"parts shape {parts.shape} differs from image size (H, W)="
                    f"{arr.shape[:2]}: expected the same"
                )
        if not arr.flags.writeable:  # torch wants a writable buffer (never written here)
            arr = arr.copy()
        pixels = torch.from_numpy(arr).permute(2, 0, 1)  # (3, h0, w0) view
        if arr.shape[:2] != (h, w):
            pixels = _resize(pixels, (h, w), self.interpolation)
        lab: torch.Tensor | None = None
        if parts is not None:
            lab = _resize_labels(parts.astype(np.uint8, copy=False), (h, w))
        elif labels:
            lab = torch.full((h, w), IGNORE_INDEX, dtype=torch.uint8)
        if self.train:
            geo = geometry if geometry is not None else self.sample_geometry(generator)
            pixels, lab = self._crop_flip(pixels, lab, geo)
        return pixels.contiguous(), lab

    def _crop_flip(
        self, img: torch.Tensor, lab: torch.Tensor | None, geo: Mapping[str, int | bool]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Zero-pad by ``pad``, crop at ``(top, left)``, flip: one window copy each."""
        p = self.pad
        if p:
            t, l = int(geo["top"]), int(geo["left"])
            if not (0 <= t <= 2 * p and 0 <= l <= 2 * p):
                raise ValueError(f"geometry {dict(geo)}: offsets must lie in [0, {2 * p}]")
            img = _shift(img, t - p, l - p, 0)
        if geo["flip"]:
            img = img.flip(-1)
        return img.contiguous(), (self._crop_flip_labels(lab, geo) if lab is not None else None)

    def _crop_flip_labels(self, lab: torch.Tensor, geo: Mapping[str, int | bool]) -> torch.Tensor:
        """:meth:`_crop_flip` of a label map (padding: background, or 255 for a map
        without a labelled pixel)."""
        p = self.pad
        if p:
            t, l = int(geo["top"]), int(geo["left"])
            fill = BACKGROUND if bool((lab != IGNORE_INDEX).any()) else IGNORE_INDEX
            lab = _shift(lab, t - p, l - p, fill)
        if geo["flip"]:
            lab = lab.flip(-1)
        return lab.contiguous()

    def labels_only(
        self, parts: np.ndarray | None, geometry: Mapping[str, int | bool] | None = None
    ) -> torch.Tensor:
        """A second label map of an image through the image's geometry alone: resized
        (nearest), and when training cropped and flipped by ``geometry`` (the one the
        image was transformed with, from :meth:`sample_geometry`); never erased, no
        random draw. ``None``: all 255. Returns a ``label_dtype`` (H, W) map.

        What the pooling masks of a batch need: the same pixels as the image, whatever
        random erasing hid from the part-map loss.
        """
        h, w = self.size
        if parts is None:
            return torch.full((h, w), IGNORE_INDEX, dtype=self.label_dtype)
        lab = _resize_labels(np.asarray(parts).astype(np.uint8, copy=False), (h, w))
        if self.train:
            if geometry is None:
                raise ValueError("labels_only() of a training transform needs the geometry")
            lab = self._crop_flip_labels(lab, geometry)
        return lab.to(self.label_dtype)

    def _jitter(self, img: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        s = self.color_jitter
        b, c, sat = (1.0 - s + 2.0 * s * _rand(generator, 3)).tolist()
        img = img * b
        mean = img.mean()
        img = (img - mean) * c + mean
        gray = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).unsqueeze(0)
        img = (img - gray) * sat + gray
        return img.clamp(0.0, 1.0)

    def _draw_erase(self, generator: torch.Generator | None) -> EraseBox | None:
        """Random erasing's draws: ``(top, left, noise (3, eh, ew))``, or None."""
        r = _rand(generator, 5)
        if r[0] >= self.erasing_p:
            return None
        h, w = self.size
        r1, r2, r3, r4 = r[1:].tolist()
        area = h * w * (0.02 + 0.38 * r1)
        ratio = math.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * r2)
        eh = min(h, max(1, int(round(math.sqrt(area * ratio)))))
        ew = min(w, max(1, int(round(math.sqrt(area / ratio)))))
        top, left = int(r3 * (h - eh + 1)), int(r4 * (w - ew + 1))
        return top, left, torch.randn((3, eh, ew), generator=generator)

    def _erase_labels(
        self, lab: torch.Tensor | None, top: int, left: int, size: Sequence[int]
    ) -> torch.Tensor | None:
        """The part map under an erased box: 255 ("ignore"), background, or kept."""
        if lab is None or self.erase_parts == "keep":
            return lab
        lab = lab.clone()
        value = IGNORE_INDEX if self.erase_parts == "ignore" else BACKGROUND
        lab[top : top + int(size[0]), left : left + int(size[1])] = value
        return lab


EraseBox = tuple[int, int, torch.Tensor]
"""A random-erasing box: ``(top, left, noise)``, ``noise`` (3, eh, ew) float32."""


def finish_images(
    pixels: torch.Tensor | Sequence[torch.Tensor],
    mean: Sequence[float],
    std: Sequence[float],
    erase: Sequence[EraseBox | None] = (),
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Batched end of :class:`JointTransform`: normalise uint8 images, then erase.

    Args:
        pixels: (B, 3, H, W) uint8 from :meth:`JointTransform.staged`, on any device,
            or a list of B (3, H, W) uint8 tensors on the CPU (read once, not stacked).
        mean, std: the transform's normalisation.
        erase: per image, its :meth:`~JointTransform.staged` box (noise on any device)
            or None; empty: no erasing.
        out: optional (B, 3, H, W) float32 buffer to write into (e.g. shared memory).

    Returns:
        (B, 3, H, W) float32: exactly what :meth:`JointTransform.__call__` gives per
        image (the same float operations, element by element).
    """
    if isinstance(pixels, torch.Tensor):
        shape, device, dtype = tuple(pixels.shape), pixels.device, pixels.dtype
    else:
        if not pixels or len({tuple(p.shape) for p in pixels}) != 1:
            raise ValueError("pixels: expected a non-empty list of (3, H, W) of one size")
        shape, device = (len(pixels), *pixels[0].shape), pixels[0].device
        dtype = pixels[0].dtype
    if dtype != torch.uint8 or len(shape) != 4 or shape[1] != 3:
        raise ValueError(f"pixels of dtype {dtype} and shape {shape}: expected uint8 (B, 3, H, W)")
    if erase and len(erase) != shape[0]:
        raise ValueError(f"{len(erase)} erase entries for {shape[0]} images")
    img = out if out is not None else torch.empty(shape, device=device)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1).to(img.device, non_blocking=True)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1).to(img.device, non_blocking=True)
    # on a CPU image by image (each pass stays in the cache), on a GPU the whole batch
    pairs: list[tuple[torch.Tensor, torch.Tensor]]
    if img.device.type == "cpu":
        pairs = list(zip(img, pixels))
    else:
        whole = pixels if isinstance(pixels, torch.Tensor) else torch.stack(list(pixels))
        pairs = [(img, whole)]
    for dst, src in pairs:
        torch.div(src, 255.0, out=dst)  # = dst.copy_(src).div_(255.0), one pass
        dst.sub_(m).div_(s)
    for i, box in enumerate(erase):
        if box is not None:
            top, left, noise = box
            img[i, :, top : top + noise.shape[1], left : left + noise.shape[2]] = noise
    return img


def _rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array of a PIL image or an array (other modes converted)."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 \
            and image.dtype == np.uint8:
        return image
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    if pil.mode != "RGB":
        pil = pil.convert("RGB")
    return np.array(pil)


def _resize(pixels: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    """Resize (3, h0, w0) uint8 to ``size`` as PIL does.

    Bilinear up-sampling by whole factors (128×64 -> 256×128, Market-1501's and the
    synthetic domains' case) runs torch's uint8 antialiased kernel, which gives PIL's
    pixels exactly there (tested) at about half the cost; every other case runs PIL.
    """
    h0, w0 = pixels.shape[-2:]
    h, w = size
    if interpolation == "bilinear" and h % h0 == 0 and w % w0 == 0:
        x = pixels[None].contiguous(memory_format=torch.channels_last)
        return torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True)[0]
    pil = Image.fromarray(pixels.permute(1, 2, 0).numpy())
    return torch.from_numpy(np.array(pil.resize((w, h), _INTERP[interpolation]))).permute(2, 0, 1)


def _resize_labels(parts: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of an (h0, w0) uint8 map, as PIL's ``NEAREST`` does
    (whole up-sampling factors repeat rows and columns: the same map, without PIL)."""
    h0, w0 = parts.shape
    h, w = size
    if (h0, w0) == (h, w):
        return torch.from_numpy(parts.copy())
    if h % h0 == 0 and w % w0 == 0:
        return torch.from_numpy(np.repeat(np.repeat(parts, h // h0, 0), w // w0, 1))
    pm = Image.fromarray(parts).resize((w, h), Image.Resampling.NEAREST)
    return torch.from_numpy(np.array(pm, dtype=np.uint8))


def _shift(x: torch.Tensor, dy: int, dx: int, fill: int) -> torch.Tensor:
    """``out[..., i, j] = x[..., i + dy, j + dx]``, ``fill`` outside ``x``: the crop at
    ``(dy + pad, dx + pad)`` of ``x`` padded by ``pad`` with ``fill``."""
    h, w = x.shape[-2:]
    out = torch.full_like(x, fill, memory_format=torch.contiguous_format)
    y0, y1 = max(0, -dy), min(h, h - dy)
    x0, x1 = max(0, -dx), min(w, w - dx)
    if y0 < y1 and x0 < x1:
        out[..., y0:y1, x0:x1] = x[..., y0 + dy : y1 + dy, x0 + dx : x1 + dx]
    return out


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
