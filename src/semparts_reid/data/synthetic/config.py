"""Size and seed of one synthetic domain: :class:`SyntheticConfig`, presets, version.

``GENERATOR_VERSION`` enters every random seed and every cache folder name: it changes
only when the files of an existing configuration would change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ...errors import InputError
from .styles import DOMAINS

__all__ = ["GENERATOR_VERSION", "SIZE_PRESETS", "SyntheticConfig", "make_config"]

GENERATOR_VERSION = 2


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of one synthetic domain.

    Attributes:
        domain: ``"a"``, ``"b"`` or ``"c"`` (see :data:`~.styles.DOMAINS`).
        train_ids / test_ids: identities in the training and in the query/gallery splits.
        max_per_cam: each identity is seen 1..max_per_cam times per camera, by 2-4 cameras.
        height / width: rendered image size in pixels.
        seed: generation seed; the same config always gives the same files.
    """

    domain: str = "a"
    train_ids: int = 100
    test_ids: int = 100
    max_per_cam: int = 4
    height: int = 128
    width: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise InputError(f"domain={self.domain!r}: expected one of {sorted(DOMAINS)}")
        for name in ("train_ids", "test_ids", "max_per_cam"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name}={getattr(self, name)}: expected >= 1")
        if self.height < 32 or self.width < 16:
            raise InputError(f"image size {self.height}x{self.width}: expected >= 32x16")

    @property
    def key(self) -> str:
        """Cache folder name: changes whenever the generated files would change."""
        return (
            f"{self.domain}-{self.train_ids}x{self.test_ids}-m{self.max_per_cam}-"
            f"{self.height}x{self.width}-s{self.seed}-v{GENERATOR_VERSION}"
        )


SIZE_PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"train_ids": 12, "test_ids": 10, "max_per_cam": 3},  # ~150 images, <1 s
    "small": {"train_ids": 50, "test_ids": 50, "max_per_cam": 3},
    "default": {"train_ids": 100, "test_ids": 100, "max_per_cam": 4},  # ~1.5k images
    "large": {"train_ids": 400, "test_ids": 400, "max_per_cam": 6},
}


def make_config(domain: str, *, size: str = "default", **overrides: Any) -> SyntheticConfig:
    """A :class:`SyntheticConfig` from a size preset and explicit overrides."""
    if size not in SIZE_PRESETS:
        raise InputError(f"size={size!r}: expected one of {sorted(SIZE_PRESETS)}")
    fields = set(SyntheticConfig.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(f"unknown synthetic options {sorted(unknown)}; known: {sorted(fields)}")
    return replace(SyntheticConfig(domain=domain, **SIZE_PRESETS[size]), **overrides)
