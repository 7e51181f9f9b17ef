"""Input handling for :class:`~semparts_reid.inference.FeatureExtractor`.

Every accepted input becomes a list of *crops*: ``(3, h, w)`` tensors that are views of
the caller's memory where possible (a BGR ``numpy`` crop ``(h, w, 3)`` becomes a
``channels_last`` view without a copy). Crops are resized with ``F.interpolate`` (grouped
by shape, so equal-sized crops go through one call; uint8 crops use PyTorch's vectorised
antialiased uint8 kernel on CPU) and normalised on the whole batch on the target device.
No PIL resize per image.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError, InputNotFoundError

__all__ = [
    "FLOAT_RANGE_TOLERANCE",
    "Inputs",
    "PathDataset",
    "check_float_range",
    "classify_inputs",
    "cudnn_benchmark",
    "decode_image",
    "normalize_batch",
    "pil_to_crop",
    "resize_batch",
    "resize_crops",
]

FLOAT_RANGE_TOLERANCE = 1.0 / 255.0
"""How far float inputs may stray outside ``[0, 1]`` (less than one 8-bit grey level)."""

_KIND_NAMES = {
    "path": "file paths",
    "pil": "PIL images",
    "numpy": "numpy arrays",
    "tensor": "torch tensors",
}


@dataclass
class Inputs:
    """Inputs sorted into one kind.

    Attributes:
        kind: ``"path"``, ``"pil"``, ``"numpy"`` or ``"tensor"``.
        items: the individual items (paths as ``str``; crops as ``(3, h, w)`` tensors;
            PIL images) or, for a 4-D batch, ``None``.
        batch: a ``(N, 3, H, W)`` tensor when a batch (tensor or ``(N, H, W, 3)`` array)
            was given, else ``None``.
    """

    kind: str
    items: list[Any] | None
    batch: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.batch) if self.batch is not None else len(self.items or [])


def _from_numpy(arr: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without the read-only warning: crops are only ever read."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


def _kind_of(item: Any) -> str | None:
    if isinstance(item, (str, os.PathLike)):
        return "path"
    if isinstance(item, Image.Image):
        return "pil"
    if isinstance(item, np.ndarray):
        return "numpy"
    if isinstance(item, torch.Tensor):
        return "tensor"
    return None


def _numpy_crop(arr: np.ndarray, where: str) -> torch.Tensor:
    """``(h, w, 3)`` uint8 array -> ``(3, h, w)`` tensor view (channels_last strides)."""
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(
            f"{where}: expected an H x W x 3 image array, got shape {tuple(arr.shape)}"
            + (" (grayscale: convert it to 3 channels)" if arr.ndim == 2 else "")
        )
    if arr.dtype != np.uint8:
        raise TypeError(f"{where}: expected a uint8 image array, got dtype {arr.dtype}")
    if min(arr.shape[:2]) < 1:
        raise ValueError(f"{where}: empty image of shape {tuple(arr.shape)}")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return _from_numpy(arr).permute(2, 0, 1)


def _tensor_crop(t: torch.Tensor, where: str) -> torch.Tensor:
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"{where}: expected a (3, H, W) image tensor, got shape {tuple(t.shape)}")
    if not (t.dtype == torch.uint8 or t.is_floating_point()):
        raise TypeError(f"{where}: expected a uint8 or float tensor, got dtype {t.dtype}")
    return t


def classify_inputs(inputs: Any, name: str = "inputs") -> Inputs:
    """Sort ``inputs`` into one :class:`Inputs` kind and check shapes.

    Accepted: a path, a PIL image, an ``(H, W, 3)`` uint8 array, an ``(N, H, W, 3)`` uint8
    array, a ``(3, H, W)`` / ``(N, 3, H, W)`` uint8 or float tensor (floats in ``[0, 1]``),
    or a list/tuple of paths, PIL images, arrays or 3-D tensors (one kind per call).

    Raises:
        TypeError: an unsupported type, or a list that mixes kinds.
        ValueError: a wrong shape or channel count.
    """
    kind = _kind_of(inputs)
    if isinstance(inputs, np.ndarray) and inputs.ndim == 4:
        if inputs.shape[3] != 3:
            raise ValueError(f"{name}: expected an (N, H, W, 3) array, got {inputs.shape}")
        if inputs.dtype != np.uint8:
            raise TypeError(f"{name}: expected a uint8 image array, got dtype {inputs.dtype}")
        arr = np.ascontiguousarray(inputs)
        return Inputs("numpy", None, _from_numpy(arr).permute(0, 3, 1, 2))
    if isinstance(inputs, torch.Tensor) and inputs.ndim == 4:
        if inputs.shape[1] != 3:
            raise ValueError(f"{name}: expected an (N, 3, H, W) tensor, got {tuple(inputs.shape)}")
        if not (inputs.dtype == torch.uint8 or inputs.is_floating_point()):
            raise TypeError(f"{name}: expected a uint8 or float tensor, got {inputs.dtype}")
        return Inputs("tensor", None, inputs)
    if kind is not None:
        inputs = [inputs]
    elif not isinstance(inputs, (list, tuple)):
        raise TypeError(
            f"{name}: expected a path, PIL image, numpy array, tensor or a list of them, "
            f"got {type(inputs).__name__}"
        )
    kinds = [_kind_of(x) for x in inputs]
    bad = [i for i, k in enumerate(kinds) if k is None]
    if bad:
        raise TypeError(
            f"{name}[{bad[0]}] has unsupported type {type(inputs[bad[0]]).__name__}; expected "
            "a path, PIL image, numpy array or tensor"
        )
    present = sorted(set(kinds), key=list(_KIND_NAMES).index)  # type: ignore[arg-type]
    if len(present) > 1:
        where = "; ".join(
            f"{_KIND_NAMES[k]} at index {kinds.index(k)}" for k in present  # type: ignore[index]
        )
        raise TypeError(f"{name} mixes input kinds ({where}); pass one kind per call")
    if not present:
        return Inputs("empty", [], None)
    kind = present[0]
    if kind == "path":
        return Inputs("path", [os.fspath(x) for x in inputs], None)
    if kind == "pil":
        return Inputs("pil", list(inputs), None)
    if kind == "numpy":
        return Inputs("numpy", [_numpy_crop(x, f"{name}[{i}]") for i, x in enumerate(inputs)],
                      None)
    crops = [_tensor_crop(x, f"{name}[{i}]") for i, x in enumerate(inputs)]
    if len({c.dtype == torch.uint8 for c in crops}) > 1:
        raise TypeError(f"{name} mixes uint8 (0-255) and float (0-1) tensors; use one dtype")
    return Inputs("tensor", crops, None)


def decode_image(path: str) -> torch.Tensor:
    """Read an image file as an RGB ``(3, h, w)`` uint8 tensor (channels_last view).

    Raises:
        InputNotFoundError: the file does not exist (a ``FileNotFoundError`` naming it).
        InputError: the file cannot be decoded (a ``ValueError`` naming it).
    """
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise InputNotFoundError(f"image file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot decode image {path}: {exc}") from exc
    return _from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


def pil_to_crop(img: Image.Image) -> torch.Tensor:
    """A PIL image as an RGB ``(3, h, w)`` uint8 tensor."""
    arr = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    return _from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


def check_float_range(x: torch.Tensor, name: str = "inputs") -> None:
    """Raise unless a float image batch holds finite values in ``[0, 1]``.

    ``[0, 1]`` is widened by :data:`FLOAT_RANGE_TOLERANCE` on both sides for rounding.
    One ``aminmax`` and one device-to-host copy per call; uint8 and empty tensors pass.

    Raises:
        InputError: values outside the range (e.g. 0-255 floats, or images already
            normalised with a mean and std), NaN or infinity; the message gives the
            minimum and maximum seen.
    """
    if not x.is_floating_point() or x.numel() == 0:
        return
    lo, hi = torch.stack(torch.aminmax(x.detach())).float().tolist()
    tol = FLOAT_RANGE_TOLERANCE
    if math.isnan(lo) or math.isnan(hi):
        raise InputError(f"{name}: float images hold NaN values; pass uint8 or float in [0, 1]")
    if lo < -tol or hi > 1.0 + tol:
        hint = ""
        if not (math.isfinite(lo) and math.isfinite(hi)):
            hint = " (infinite values)"
        elif lo >= -tol:
            hint = " (this looks like 0-255 data: pass it as uint8, or divide by 255)"
        else:
            hint = " (already normalised? pass the raw image; the extractor normalises it)"
        raise InputError(
            f"{name}: float images hold values in [{lo:.4g}, {hi:.4g}]; pass uint8 or float "
            f"in [0, 1]{hint}"
        )


def normalize_batch(
    x: torch.Tensor, mean: torch.Tensor, inv_std: torch.Tensor, *, scale: float, bgr: bool
) -> torch.Tensor:
    """``(x[:, rgb] / scale - mean) * inv_std`` as a new float32 ``(N, 3, H, W)`` tensor.

    Args:
        x: uint8 (``scale=255``) or float (``scale=1``) batch, NCHW or channels_last.
            A float batch with ``scale=1`` must hold values in ``[0, 1]``
            (:func:`check_float_range`); float batches with ``scale=255`` are uint8
            images resized in float and are not checked.
        mean, inv_std: ``(3,)`` float32 on ``x``'s device.
        bgr: ``x`` holds BGR channels (they are swapped to RGB).

    The result keeps ``x``'s memory format. The per-channel affine runs on the layout's
    natural view (a trailing ``(3,)`` broadcast for channels_last), which avoids
    PyTorch's slow broadcasting path over NHWC tensors. ``x`` is never modified.

    Raises:
        InputError: a float batch (``scale=1``) outside ``[0, 1]``.
    """
    if scale == 1.0:
        check_float_range(x)
    if x.dtype not in (torch.uint8, torch.float32):
        x = x.to(torch.float32)
    nhwc = x.dim() == 4 and x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last)
    if nhwc:
        view = x.permute(0, 2, 3, 1)
        view = view.flip(-1) if bgr else view
        y = torch.sub(view, mean * scale)  # new float32 tensor (uint8 promotes)
        y.mul_(inv_std / scale)
        return y.permute(0, 3, 1, 2)
    x = x.flip(1) if bgr else x
    y = torch.sub(x, (mean * scale).view(1, 3, 1, 1))
    return y.mul_((inv_std / scale).view(1, 3, 1, 1))


def resize_batch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize an ``(N, 3, h, w)`` batch to ``size`` (bilinear, antialiased); no-op if equal.

    uint8 batches stay uint8 on CPU (PyTorch's vectorised uint8 kernel); elsewhere they are
    converted to float32 first (values keep their 0-255 range).
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.dtype == torch.uint8 and x.device.type != "cpu":
        x = x.float()  # the antialiased uint8 kernel is CPU-only
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def resize_crops(
    crops: Sequence[torch.Tensor], size: tuple[int, int], device: torch.device
) -> torch.Tensor:
    """Resize crops of any size to one batch.

    Crops of equal shape and dtype are stacked and resized by one ``F.interpolate`` call
    (bilinear, antialiased, like PIL's resize). On CUDA the crops are packed into one
    pinned buffer and copied with one non-blocking transfer, then resized on the GPU.

    Args:
        crops: ``(3, h_i, w_i)`` uint8 (0-255) or float tensors.
        size: target ``(H, W)``.
        device: where the batch should end up.

    Returns:
        ``(N, 3, H, W)`` contiguous batch on ``device``, uint8 where every crop was uint8
        and the resize ran on CPU, else float32 (values keep their 0-255 or 0-1 range).
    """
    if not crops:
        raise ValueError("resize_crops needs at least one crop")
    if device.type != "cpu" and all(c.device.type == "cpu" for c in crops):
        crops = _upload(crops, device)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, c in enumerate(crops):
        groups.setdefault((tuple(c.shape), c.dtype, c.device), []).append(i)
    floaty = any(c.is_floating_point() for c in crops) or device.type != "cpu"
    resized: list[torch.Tensor] = [crops[0]] * len(crops)
    for idx in groups.values():
        group = torch.stack([crops[i] for i in idx]) if len(idx) > 1 else crops[idx[0]][None]
        # NCHW out: a single-image interpolate returns NCHW anyway, and stacking mixed
        # layouts (or copying NCHW into an NHWC buffer) is a slow strided copy
        out = resize_batch(group.to(device, non_blocking=True), size).contiguous()
        for j, i in enumerate(idx):
            resized[i] = out[j]
    if device.type == "cpu":  # one single-threaded memcpy; torch.stack/cat of many small
        # tensors opens one OpenMP region each, which stalls on a busy machine
        batch = _from_numpy(np.stack([r.numpy() for r in resized]))
    else:
        batch = torch.stack(resized)
    return batch.float() if floaty and batch.dtype != torch.float32 else batch


def _upload(crops: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Copy many small CPU crops to ``device`` with one pinned, non-blocking transfer."""
    if any(c.dtype != crops[0].dtype for c in crops):
        return [c.to(device) for c in crops]
    hwc = [c.permute(1, 2, 0) for c in crops]  # a free view for channels_last crops
    sizes = [h.numel() for h in hwc]
    staging = torch.empty(sum(sizes), dtype=crops[0].dtype, pin_memory=True)
    torch.cat([h.reshape(-1) for h in hwc], out=staging)
    flat = staging.to(device, non_blocking=True)
    return [
        part.view(h.shape).permute(2, 0, 1)
        for part, h in zip(torch.split(flat, sizes), hwc, strict=True)
    ]


class PathDataset(torch.utils.data.Dataset):
    """Decodes and resizes image files (in DataLoader workers): item ``(3, H, W)`` uint8."""

    def __init__(self, paths: Sequence[str], size: tuple[int, int]) -> None:
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        crop = decode_image(self.paths[index])
        return resize_batch(crop[None], self.size)[0].contiguous()


@contextmanager
def cudnn_benchmark(device: torch.device | str) -> Iterator[bool]:
    """Let cuDNN autotune its convolutions while the block runs on a CUDA ``device``.

    The training loop and the extractor feed inputs of one fixed size (the model's
    ``input_size``; only the last batch of an extraction differs), the case where
    ``torch.backends.cudnn.benchmark`` pays: each shape is timed once, then the fastest
    algorithm runs. The previous setting is restored on exit, so nothing changes for
    code outside the block. Nothing happens on other devices, or when the process asked
    for deterministic algorithms (``torch.use_deterministic_algorithms`` or
    ``cudnn.deterministic``): autotuning may pick non-deterministic kernels.

    Yields:
        Whether autotuning is on inside the block.
    """
    cudnn = torch.backends.cudnn
    on = (
        torch.device(device).type == "cuda"
        and not cudnn.deterministic
        and not torch.are_deterministic_algorithms_enabled()
    )
    before = cudnn.benchmark
    if on:
        cudnn.benchmark = True
    try:
        yield on or before
    finally:
        cudnn.benchmark = before
