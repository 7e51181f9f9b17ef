"""Image file reading: any PIL mode in, RGB out; truncated or corrupt files named in errors."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError

__all__ = ["CorruptImageError", "check_image", "load_rgb", "load_rgb_array"]


class CorruptImageError(OSError, InputError):
    """An image file could not be decoded (truncated, corrupt, missing or not an image).

    An ``OSError`` and an :class:`~semparts_reid.errors.InputError`.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot decode image {os.fspath(path)}: {reason}")
        self.path = os.fspath(path)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale to 8 bit before converting
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() if arr.size and arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    return img.convert("RGB")


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file as an RGB PIL image (grayscale, RGBA, palette, CMYK converted).

    Raises:
        CorruptImageError: the file is missing, truncated or not a decodable image.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return _to_rgb(img)
    except FileNotFoundError:
        raise CorruptImageError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptImageError(path, str(err) or type(err).__name__) from err


def load_rgb_array(path: str | os.PathLike[str]) -> np.ndarray:
    """:func:`load_rgb` as a uint8 array of shape (H, W, 3)."""
    return np.asarray(load_rgb(path))


def check_image(path: str | os.PathLike[str]) -> None:
    """Fully decode ``path`` once; raise :class:`CorruptImageError` if that fails."""
    load_rgb(path)
