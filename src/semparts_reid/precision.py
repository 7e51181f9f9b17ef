"""The one precision policy shared by the trainer and the feature extractor.

A :class:`PrecisionPolicy` says, for one device, which autocast dtype to run under
(``None`` for plain fp32), whether to use the ``channels_last`` memory format and
whether training needs a gradient scaler. :func:`resolve_precision` picks it:

* CUDA: bf16 autocast where the GPU runs bf16 natively (Ampere and newer), else fp16
  autocast with a gradient scaler; ``channels_last`` always.
* CPU: bf16 autocast where the CPU has native bf16 instructions (AVX512-BF16 or AMX,
  detected at run time), else fp32; ``channels_last`` always (oneDNN convolutions are
  much faster in NHWC).
* ``precision="fp32"`` forces fp32 everywhere.

The environment variable ``SEMPARTS_REID_PRECISION`` (``auto``/``fp32``/``bf16``/``fp16``)
overrides ``precision="auto"``, so CI or a user can pin the policy without code changes;
``SEMPARTS_REID_NATIVE_BF16=0|1`` overrides the hardware probe (for tests).

Example:
    >>> import torch
    >>> policy = resolve_precision("cpu", "fp32")
    >>> policy.amp_dtype is None, policy.channels_last
    (True, True)
    >>> model = policy.prepare_module(torch.nn.Conv2d(3, 4, 3))
    >>> with torch.inference_mode(), policy.autocast():
    ...     y = model(policy.prepare_input(torch.randn(2, 3, 8, 8)))
    >>> y.dtype
    torch.float32
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from .cpu_convs import OneDNNSafeConv2d, SmallMapConv2d, guard_cpu_bf16_convs
from .errors import InputError

__all__ = [
    "PrecisionPolicy",
    "Precision",
    "NonFiniteFeatureError",
    "OneDNNSafeConv2d",
    "SmallMapConv2d",
    "bad_feature_rows",
    "forward_with_fp32_fallback",
    "guard_cpu_bf16_convs",
    "has_native_bf16",
    "resolve_device",
    "resolve_precision",
    "to_memory_format",
]

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16"]
_PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
ENV_PRECISION = "SEMPARTS_REID_PRECISION"
ENV_NATIVE_BF16 = "SEMPARTS_REID_NATIVE_BF16"

_T = TypeVar("_T", nn.Module, torch.Tensor)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"`` / ``"cpu"`` / ``"cuda:N"`` / a :class:`torch.device` into a device.

    ``"auto"`` (or ``None``) picks ``cuda`` when a CUDA device is available, else ``cpu``.

    Raises:
        ValueError: if the string is not a device, or names a CUDA device that is absent.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"device={device!r} is not a device; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device={device!r} asks for CUDA but no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
    return dev


@functools.cache
def _cpu_native_bf16() -> bool:
    """Probe the CPU for AVX512-BF16 or AMX (both run bf16 matmuls/convs natively)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    cpu_mod = getattr(torch, "cpu", None)
    for name in probes:
        probe = getattr(cpu_mod, name, None) or getattr(
            getattr(torch._C, "_cpu", None), name, None
        )
        if probe is None:
            continue
        try:
            if bool(probe()):
                return True
        except Exception:  # pragma: no cover - defensive: private API may change
            logger.debug("CPU probe %s failed", name, exc_info=True)
    # fallback for torch builds without the private probes: read the CPU flags on Linux
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def has_native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` runs bf16 natively (fast), detected at run time.

    CUDA: :func:`torch.cuda.is_bf16_supported` without emulation (compute capability
    >= 8.0). CPU: AVX512-BF16 or AMX. The environment variable
    ``SEMPARTS_REID_NATIVE_BF16=0|1`` overrides the probe.
    """
    env = os.environ.get(ENV_NATIVE_BF16)
    if env is not None and env.strip() != "":
        return env.strip().lower() in ("1", "true", "yes", "on")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # older torch without the keyword
            major, _ = torch.cuda.get_device_capability(dev)
            return major >= 8
    if dev.type == "cpu":
        return _cpu_native_bf16()
    return False


def to_memory_format(obj: _T, channels_last: bool) -> _T:
    """Put a module or a 4-D tensor into ``channels_last`` (or leave it contiguous).

    Tensors that are not 4-D are returned unchanged (``channels_last`` is only
    defined for (B, C, H, W)). Modules are converted in place and returned.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if isinstance(obj, torch.Tensor):
        if obj.dim() != 4:
            return obj
        return obj.contiguous(memory_format=fmt)
    if isinstance(obj, nn.Module):
        return obj.to(memory_format=fmt)  # type: ignore[call-overload]
    raise TypeError(f"to_memory_format expects an nn.Module or a Tensor, got {type(obj)!r}")


@dataclass(frozen=True)
class PrecisionPolicy:
    """How to run a model on one device.

    Attributes:
        device: the device the policy is for.
        amp_dtype: autocast dtype (``torch.bfloat16`` / ``torch.float16``) or ``None``
            for plain fp32.
        channels_last: whether 4-D inputs and models use the NHWC memory format.
        needs_grad_scaler: whether training should scale the loss (fp16 autocast only).
    """

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    needs_grad_scaler: bool

    @property
    def name(self) -> str:
        """``"fp32"``, ``"bf16"`` or ``"fp16"``."""
        if self.amp_dtype is None:
            return "fp32"
        return "bf16" if self.amp_dtype == torch.bfloat16 else "fp16"

    @property
    def enabled(self) -> bool:
        """Whether autocast is on."""
        return self.amp_dtype is not None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Context manager: autocast to :attr:`amp_dtype` on :attr:`device` (no-op in fp32)."""
        if self.amp_dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype):
            yield

    def prepare_module(self, module: nn.Module) -> nn.Module:
        """Move ``module`` to :attr:`device` and the policy's memory format (in place).

        Under CPU bf16 autocast the module's convolutions are also routed around
        oneDNN's weak spots: a kernel defect on strided one-column outputs and a slow
        weight gradient on small maps (see :func:`guard_cpu_bf16_convs`).
        """
        module = module.to(self.device)
        if self.device.type == "cpu" and self.amp_dtype == torch.bfloat16:
            guard_cpu_bf16_convs(module)
        return to_memory_format(module, self.channels_last)

    def prepare_input(self, x: torch.Tensor, non_blocking: bool = False) -> torch.Tensor:
        """Move an image batch ``x`` (B, C, H, W) to :attr:`device` and memory format."""
        x = x.to(self.device, non_blocking=non_blocking)
        return to_memory_format(x, self.channels_last)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A :class:`torch.amp.GradScaler`, enabled only when :attr:`needs_grad_scaler`."""
        return torch.amp.GradScaler(self.device.type, enabled=self.needs_grad_scaler)

    def __str__(self) -> str:
        fmt = "channels_last" if self.channels_last else "contiguous"
        return f"PrecisionPolicy({self.device}, {self.name}, {fmt})"


def resolve_precision(
    device: str | torch.device | None = "auto",
    precision: str = "auto",
    *,
    channels_last: bool | None = None,
) -> PrecisionPolicy:
    """Pick the precision policy for ``device``.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a :class:`torch.device`.
        precision: ``"auto"`` (bf16 where native, fp16 on CUDA without bf16, else fp32),
            or ``"fp32"`` / ``"bf16"`` / ``"fp16"`` to force one. ``"auto"`` can be
            overridden with ``$SEMPARTS_REID_PRECISION``.
        channels_last: force the memory format; default ``True`` on CPU and CUDA.

    Returns:
        A :class:`PrecisionPolicy`.

    Raises:
        ValueError: for an unknown ``precision`` or device.
    """
    if not isinstance(precision, str) or precision.lower() not in _PRECISIONS:
        raise InputError(f"precision={precision!r} is not one of {list(_PRECISIONS)}")
    precision = precision.lower()
    if precision == "auto":
        env = os.environ.get(ENV_PRECISION, "").strip().lower()
        if env:
            if env not in _PRECISIONS:
                raise InputError(
                    f"${ENV_PRECISION}={env!r} is not one of {list(_PRECISIONS)}"
                )
            precision = env
    dev = resolve_device(device)
    if precision == "auto":
        if dev.type == "cuda":
            precision = "bf16" if has_native_bf16(dev) else "fp16"
        elif dev.type == "cpu":
            precision = "bf16" if has_native_bf16(dev) else "fp32"
        else:
            precision = "fp32"
    elif precision in ("bf16", "fp16") and dev.type == "cpu" and not (
        precision == "bf16" and has_native_bf16(dev)
    ):
        logger.warning(
            "precision=%r on a CPU without native support is emulated and may be slower "
            "than fp32", precision,
        )
    amp_dtype = _DTYPES[precision]
    if channels_last is None:
        channels_last = dev.type in ("cpu", "cuda")
    return PrecisionPolicy(
        device=dev,
        amp_dtype=amp_dtype,
        channels_last=bool(channels_last),
        needs_grad_scaler=amp_dtype == torch.float16,
    )


# --------------------------------------------------------------------------- output guard


class NonFiniteFeatureError(FloatingPointError):
    """A model produced non-finite or all-zero features even in fp32."""


def bad_feature_rows(features: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: rows of ``features (B, ...)`` that hold a NaN/inf or are all zero."""
    flat = features.reshape(features.shape[0], -1)
    return ~torch.isfinite(flat).all(dim=1) | (flat == 0).all(dim=1)


def forward_with_fp32_fallback(
    policy: PrecisionPolicy,
    forward: Callable[[torch.Tensor], Any],
    x: torch.Tensor,
    features_of: Callable[[Any], torch.Tensor],
    *,
    label: str,
) -> Any:
    """Run ``forward(x)`` under ``policy``'s autocast and check the features it returns.

    A row of ``features_of(output)`` that is non-finite or all zero is never passed on
    silently: under autocast the whole batch is recomputed in fp32 with a
    ``RuntimeWarning``; if fp32 still gives a bad row (or there was no autocast to
    leave), :class:`NonFiniteFeatureError` names ``label`` and the rows.

    Costs one host synchronisation per call (the check's result).
    """
    with policy.autocast():
        out = forward(x)
    bad = bad_feature_rows(features_of(out))
    if not bool(bad.any()):
        return out
    if policy.enabled:
        warnings.warn(
            f"{label}: {int(bad.sum())} of {len(bad)} feature(s) were non-finite or all zero "
            f"under {policy.name} autocast; recomputed this batch in fp32",
            RuntimeWarning, stacklevel=2,
        )
        out = forward(x.float())
        bad = bad_feature_rows(features_of(out))
        if not bool(bad.any()):
            return out
    rows = torch.nonzero(bad).flatten().tolist()
    raise NonFiniteFeatureError(
        f"{label}: the model returned non-finite or all-zero features for row(s) "
        f"{rows[:10]}{' ...' if len(rows) > 10 else ''} of {len(bad)} (precision fp32); "
        "check the inputs and the weights"
    )
