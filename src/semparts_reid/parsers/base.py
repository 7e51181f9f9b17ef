"""The :class:`PartParser` protocol and its result, :class:`ParseResult` (numpy only).

A *part parser* turns person crops into label maps in the library's part classes
(:mod:`semparts_reid.layers.parts`): 0 background, 1 head, 2 upper body, 3 lower body.
It needs no identity label, so its maps may be used on a target domain (they are not an
oracle; tables say where part labels came from).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import InputError

__all__ = ["ParseResult", "PartParser", "check_crops"]


@dataclass
class ParseResult:
    """What a parser returns for N crops.

    Attributes:
        labels: N uint8 arrays, each (H_i, W_i) like its crop: 0 background, 1 head,
            2 upper, 3 lower. A crop without a pose gets an all-zero map (``found`` False);
            callers keep their own labels for it.
        confidence: float32 (N,) in [0, 1]; 0 where no pose was found.
        found: bool (N,): a pose (and a person mask) was found.
    """

    labels: list[np.ndarray]
    confidence: np.ndarray
    found: np.ndarray
    info: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.confidence = np.asarray(self.confidence, np.float32).reshape(-1)
        self.found = np.asarray(self.found, bool).reshape(-1)
        n = len(self.labels)
        if self.confidence.shape != (n,) or self.found.shape != (n,):
            raise ValueError(
                f"ParseResult: {n} label maps but confidence {self.confidence.shape} and "
                f"found {self.found.shape}: expected ({n},) each"
            )
        self.confidence = np.where(self.found, self.confidence, 0.0).astype(np.float32)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_found(self) -> int:
        """Crops with a pose."""
        return int(self.found.sum())

    @classmethod
    def concat(cls, results: Sequence[ParseResult]) -> ParseResult:
        """The results of consecutive batches as one result."""
        if not results:
            return cls([], np.zeros(0, np.float32), np.zeros(0, bool))
        return cls(
            [m for r in results for m in r.labels],
            np.concatenate([r.confidence for r in results]),
            np.concatenate([r.found for r in results]),
        )


@runtime_checkable
class PartParser(Protocol):
    """Anything with ``parse(crops) -> ParseResult``.

    ``crops`` are RGB uint8 arrays (H, W, 3), any size each; the result holds one
    (H, W) uint8 map per crop in the same order. A backend may hold worker processes:
    if it has a ``close()`` method, callers that own it call it when done.

    Example:
        >>> import numpy as np
        >>> class Everything:
        ...     def parse(self, crops):
        ...         maps = [np.full(c.shape[:2], 2, np.uint8) for c in crops]
        ...         return ParseResult(maps, np.ones(len(crops)), np.ones(len(crops), bool))
        >>> isinstance(Everything(), PartParser)
        True
    """

    def parse(self, crops: Sequence[np.ndarray]) -> ParseResult: ...


def check_crops(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The crops as C-contiguous uint8 (H, W, 3) arrays; an :class:`InputError` naming
    the first crop that is not one (wrong rank, channels, dtype, or empty)."""
    out = []
    for i, crop in enumerate(crops):
        arr = np.asarray(crop)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise InputError(f"crops[{i}] has shape {arr.shape}: expected (H, W, 3) RGB")
        if arr.dtype != np.uint8:
            raise InputError(f"crops[{i}] has dtype {arr.dtype}: expected uint8 RGB")
        out.append(np.ascontiguousarray(arr))
    return out
