"""The statistics of each synthetic domain: :class:`DomainStyle` and :data:`DOMAINS`.

``a`` and ``b`` are the embedded default pair (Market-like and Duke-like). ``c`` is a
third domain that shares no rendering choice with them that could be tuned to: other
body proportions (head size, leg length, shoulder width), other poses (legs apart, arms
away from the body), other clothing (dresses, long coats, long skirts, open fronts and
checks), other background textures and palettes, other cameras (7, with per-camera
tone curves). The fields added for ``c`` default to the values that reproduce ``a`` and
``b`` exactly (their files are byte-identical to the ones rendered before ``c`` existed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InputError

__all__ = ["BG_KINDS", "DOMAINS", "LOWER_GARMENTS", "UPPER_PATTERNS", "DomainStyle"]

# names of the categorical choices, in index order
LOWER_GARMENTS = ("shorts", "trousers", "skirt", "long skirt")
UPPER_PATTERNS = ("solid", "stripes", "yoke", "logo", "open front", "checks")
BG_KINDS = ("ground/sky", "tiles", "waves", "shelves", "foliage", "station floor", "facade")


def _check_probs(name: str, probs: tuple[float, ...], choices: tuple[str, ...]) -> None:
    p = np.asarray(probs, dtype=np.float64)
    if not 1 <= p.size <= len(choices) or (p < 0).any() or abs(p.sum() - 1) > 1e-9:
        raise InputError(
            f"{name}={probs!r}: expected up to {len(choices)} non-negative probabilities "
            f"summing to 1, in the order {choices}"
        )


def _check_range(name: str, rng: tuple[float, float], lo: float, hi: float) -> None:
    if len(rng) != 2 or not lo <= rng[0] <= rng[1] <= hi:
        raise InputError(
            f"{name}={rng!r}: expected a range (low, high) with {lo} <= low <= high <= {hi}"
        )


@dataclass(frozen=True)
class DomainStyle:
    """Statistics of one synthetic domain (people, clothing, backgrounds, cameras, capture).

    Ranges ``(low, high)`` are sampled uniformly, per identity for body and clothing
    fields and per image for pose fields. The fields after ``long_sleeve_p`` were added
    with domain ``c``; their defaults render ``a`` and ``b`` as before.

    Attributes:
        lower_probs: P(shorts, trousers, skirt[, long skirt]) of the lower garment.
        bg_kind_probs: P of each background texture, in the order of :data:`BG_KINDS`
            (a shorter tuple leaves the later kinds out).
        jpeg_quality: JPEG quality of the written images.
        body_width / body_height: per-identity body width and height factors.
        head_scale: head size relative to the ``a``/``b`` body (the head's share of the
            height and its width scale together).
        leg_length: share of the height below the waist (``a``/``b``: 0.48).
        shoulder: shoulder-width factor (the waist keeps its width).
        stride: per-image leg spread (feet apart), in person widths per unit of leg.
        arm_spread: per-image angle of the arms away from the body (0: along it).
        pattern_probs: P of each upper-garment pattern of :data:`UPPER_PATTERNS`;
            ``None`` draws the first four uniformly (``a``/``b``).
        dress_p: P(an identity wears a dress: one colour from shoulders to skirt hem).
        coat_p: P(an identity wears a long open coat over a shirt, hem above the knee).
        cam_gamma: per-camera tone curve ``x ** gamma`` applied before the colour gains.
    """

    name: str
    num_cams: int
    lower_probs: tuple[float, ...]  # shorts, trousers, skirt[, long skirt]
    neutral_p: float  # probability that a garment is grey/black/white
    cloth_value: tuple[float, float]  # HSV value range of coloured garments
    cloth_sat: tuple[float, float]
    bg_kind_probs: tuple[float, ...]  # over BG_KINDS
    bg_value: tuple[float, float]
    bg_sat: tuple[float, float]
    bg_hue: tuple[float, float]  # hue window of the background palette
    cam_cast: float  # std of the per-camera channel gains
    cam_bright: tuple[float, float]
    shift: float  # max detection shift, in person heights
    scale: tuple[float, float]  # detection scale range
    occlusion_p: float
    blur_p: float
    noise: float
    clutter: int  # coloured objects per image (look like clothing)
    scene_reuse: float  # P(image uses its identity's scene at that camera)
    hat_p: float
    bag_p: float
    long_sleeve_p: float
    jpeg_quality: int = 85
    body_width: tuple[float, float] = (0.85, 1.18)
    body_height: tuple[float, float] = (0.93, 1.04)
    head_scale: tuple[float, float] = (1.0, 1.0)
    leg_length: tuple[float, float] = (0.48, 0.48)
    shoulder: tuple[float, float] = (1.0, 1.0)
    stride: tuple[float, float] = (0.0, 0.3)
    arm_spread: tuple[float, float] = (0.0, 0.0)
    pattern_probs: tuple[float, ...] | None = None
    dress_p: float = 0.0
    coat_p: float = 0.0
    cam_gamma: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if self.num_cams < 2:
            raise InputError(f"domain {self.name!r}: num_cams={self.num_cams}, expected >= 2")
        _check_probs("lower_probs", self.lower_probs, LOWER_GARMENTS)
        _check_probs("bg_kind_probs", self.bg_kind_probs, BG_KINDS)
        if self.pattern_probs is not None:
            _check_probs("pattern_probs", self.pattern_probs, UPPER_PATTERNS)
        _check_range("head_scale", self.head_scale, 0.5, 2.0)
        _check_range("leg_length", self.leg_length, 0.3, 0.65)
        _check_range("shoulder", self.shoulder, 0.5, 2.0)
        _check_range("stride", self.stride, 0.0, 1.0)
        _check_range("arm_spread", self.arm_spread, 0.0, 1.0)
        _check_range("cam_gamma", self.cam_gamma, 0.2, 5.0)
        if min(self.dress_p, self.coat_p) < 0 or self.dress_p + self.coat_p > 1:
            raise InputError(
                f"dress_p={self.dress_p}, coat_p={self.coat_p}: expected probabilities "
                "with dress_p + coat_p <= 1"
            )


# fmt: off
DOMAINS: dict[str, DomainStyle] = {
    # "a": bright, outdoor-like, summery clothes, mild detector noise (Market-like)
    "a": DomainStyle(
        "a", 6, (0.55, 0.3, 0.15), 0.3, (0.45, 1.0), (0.45, 1.0),
        (0.5, 0.3, 0.2, 0.0), (0.45, 0.95), (0.05, 0.45), (0.15, 0.45),
        0.06, (0.9, 1.15), 0.025, (0.9, 1.0), 0.1, 0.1, 3.0, 2, 0.75, 0.15, 0.3, 0.3,
        jpeg_quality=92,
    ),
    # "b": darker indoor/winter scenes, trousers, strong casts, more misalignment (Duke-like)
    "b": DomainStyle(
        "b", 8, (0.1, 0.7, 0.2), 0.55, (0.15, 0.75), (0.2, 0.8),
        (0.1, 0.2, 0.3, 0.4), (0.2, 0.7), (0.1, 0.6), (0.0, 0.15),
        0.12, (0.6, 1.0), 0.06, (0.8, 1.05), 0.3, 0.3, 5.0, 3, 0.75, 0.3, 0.45, 0.75,
    ),
    # "c": other bodies (bigger heads on average, longer legs, broader shoulders), legs
    # apart and arms out, dresses / long coats / long skirts, cool blue-violet urban
    # scenes with new textures, 7 cameras with their own tone curves
    "c": DomainStyle(
        "c", 7, (0.15, 0.35, 0.15, 0.35), 0.4, (0.3, 0.9), (0.3, 0.85),
        (0.1, 0.0, 0.1, 0.1, 0.25, 0.25, 0.2), (0.3, 0.9), (0.2, 0.7), (0.5, 0.85),
        0.09, (0.7, 1.1), 0.04, (0.8, 1.0), 0.2, 0.2, 4.0, 2, 0.75, 0.2, 0.4, 0.5,
        jpeg_quality=88, body_width=(0.8, 1.2), body_height=(0.9, 1.06),
        head_scale=(0.9, 1.4), leg_length=(0.46, 0.56), shoulder=(1.0, 1.25),
        stride=(0.12, 0.36), arm_spread=(0.04, 0.18),
        pattern_probs=(0.25, 0.1, 0.1, 0.1, 0.2, 0.25), dress_p=0.2, coat_p=0.25,
        cam_gamma=(0.7, 1.4),
    ),
}
# fmt: on
