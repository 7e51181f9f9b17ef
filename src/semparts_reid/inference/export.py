"""ONNX export with a numerical check against PyTorch (needs the ``onnx`` extra).

Example:
    >>> from semparts_reid import build_model, export_onnx
    >>> path = export_onnx(build_model("semparts_resnet18"), "reid.onnx")  # doctest: +SKIP

The graph takes ``images`` ``(B, 3, H, W)`` float32, normalised with the model's
``data_config`` (stored in the file's metadata), and returns ``global_feat`` ``(B, D)``,
``part_feats`` ``(B, K, D)`` and ``visibility`` ``(B, K)`` (not L2-normalised, as in
PyTorch).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._io import atomic_path

__all__ = ["export_onnx"]

logger = logging.getLogger(__name__)

OUTPUT_NAMES = ("global_feat", "part_feats", "visibility")


class _ExportWrapper(nn.Module):
    """``ReIDOutput`` -> plain tuple of tensors (ONNX graphs return tensors only)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        out = self.model(images)
        if isinstance(out, Tensor):
            return (out,)
        return tuple(getattr(out, name) for name in OUTPUT_NAMES)


def _require_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - exercised where the extra is absent
        raise ImportError(
            "ONNX export needs the 'onnx' extra: pip install 'semparts-reid[onnx]' "
            f"(missing: {exc.name})"
        ) from exc
    return onnx, onnxruntime


# Warnings the legacy exporter is known to give for our models, and nothing else: a
# warning from the model itself, or a tracer warning about data-dependent control flow
# anywhere else, stays visible. Each entry: (category, message regex, module regex).
_KNOWN_EXPORT_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    # torch >= 2.9 announces that dynamo=False (the TorchScript exporter) is legacy
    (DeprecationWarning, r"You are using the legacy TorchScript-based ONNX export",
     r"semparts_reid\.inference\.export"),
    (DeprecationWarning, r"The feature will be removed\. Please remove usage of this function",
     r"torch\.onnx\."),
    # shape checks (``x.ndim != 4 or x.shape[1] != C``), the ``float(h * w)`` of part
    # pooling and the decoder maps' pooling ratio read static sizes: constant in the
    # trace (the export fixes the input size), which is what we want
    (torch.jit.TracerWarning, r"Converting a tensor to a Python (boolean|float|integer)",
     r"semparts_reid\.(models|layers)\."),
)


def _ignore_known_export_warnings() -> None:
    """Install the filters of :data:`_KNOWN_EXPORT_WARNINGS` (inside ``catch_warnings``)."""
    for category, message, module in _KNOWN_EXPORT_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    dynamic_batch: bool = True,
    input_size: tuple[int, int] | None = None,
    opset: int = 17,
    check: bool = True,
    atol: float = 1e-4,
) -> Path:
    """Export ``model`` to ONNX and check it with onnxruntime.

    The model is copied to CPU in fp32 and eval mode, so the caller's module is left as is.
    The file is written atomically (temporary file + ``os.replace``).

    Args:
        model: a ``SemPartsNet`` (outputs ``global_feat``, ``part_feats``, ``visibility``)
            or a module returning ``(B, D)`` features (output ``global_feat``).
        path: the ``.onnx`` file to write.
        dynamic_batch: a symbolic batch dimension (else the batch is fixed to 1).
        input_size: ``(H, W)``; default ``model.data_config["input_size"]``.
        opset: ONNX opset version.
        check: run ``onnx.checker`` and compare onnxruntime with PyTorch on random input
            (batches 1 and 3 when ``dynamic_batch``).
        atol: largest absolute difference allowed by the check.

    Returns:
        The written path.

    Raises:
        ImportError: ``onnx`` / ``onnxruntime`` are not installed.
        RuntimeError: the exported graph's outputs differ from PyTorch by more than ``atol``.
    """
    onnx, ort = _require_onnx()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    config = dict(getattr(model, "data_config", None) or {})
    size = input_size or config.get("input_size")
    if size is None or len(size) != 2 or min(size) < 1:
        raise ValueError(f"input_size must be (H, W) (or come from model.data_config), got {size}")
    height, width = int(size[0]), int(size[1])
    cpu_model = copy.deepcopy(model).float().cpu().eval()
    cpu_model = cpu_model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    wrapper = _ExportWrapper(cpu_model).eval()
    example = torch.randn(1, 3, height, width)
    with torch.inference_mode():
        n_out = len(wrapper(example))
    names = list(OUTPUT_NAMES[:n_out])
    dynamic_axes = (
        {"images": {0: "batch"}, **{n: {0: "batch"} for n in names}} if dynamic_batch else None
    )
    target = Path(path)
    with atomic_path(target) as tmp:
        with warnings.catch_warnings():
            _ignore_known_export_warnings()
            torch.onnx.export(
                wrapper, (example,), tmp, input_names=["images"], output_names=names,
                dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False,
            )
        proto = onnx.load(tmp)
        meta = {
            "arch": str(getattr(model, "arch", type(model).__name__)),
            "data_config": json.dumps({**config, "input_size": [height, width]}),
            "producer": "semparts-reid",
        }
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, tmp)
        if check:
            onnx.checker.check_model(tmp)
            _compare(wrapper, tmp, names, (height, width), dynamic_batch, atol, ort)
    logger.info("exported %s to %s", meta["arch"], target)
    return target


def _compare(wrapper: nn.Module, onnx_path: str, names: list[str], size: tuple[int, int],
             dynamic_batch: bool, atol: float, ort: Any) -> None:
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    for batch in (1, 3) if dynamic_batch else (1,):
        x = torch.randn(batch, 3, *size, generator=gen)
        with torch.inference_mode():
            expected = [t.float().numpy() for t in wrapper(x)]
        got = session.run(names, {"images": x.numpy()})
        for name, a, b in zip(names, got, expected, strict=True):
            if a.shape != b.shape:
                raise RuntimeError(f"ONNX output {name} has shape {a.shape}, PyTorch {b.shape}")
            diff = float(np.abs(a - b).max()) if a.size else 0.0
            if diff > atol:
                raise RuntimeError(
                    f"ONNX output {name} differs from PyTorch by {diff:.3g} > atol={atol} "
                    f"(batch {batch})"
                )
