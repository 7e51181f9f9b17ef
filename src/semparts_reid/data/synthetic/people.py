"""The synthetic pedestrians: body proportions, poses, garments and their part maps.

Every shape is drawn in *canonical body coordinates* ``(u, v)``: ``v`` = 0 at the top of
the head and 1 at the soles, with the ``a``/``b`` layout (the head ends at
:data:`HEAD_END`, the waist at :data:`WAIST`); ``u`` is horizontal, in units of the
person's height times their width factor, 0 on the body axis. An identity's own
proportions enter through :func:`body_rows`, a piecewise-linear map from its image rows
to canonical rows (head, torso and legs each stretched to their own share of the
height), and through a head-width and a shoulder-width factor. With the ``a``/``b``
values (head 1, legs 0.48, shoulders 1) the map is exactly the identity, in float32.

Part labels follow body regions, as in ``a`` and ``b``: head (with hair, hat, neck),
upper (torso, arms, hands, bag, the coat above the waist), lower (everything from the
waist down: skirts and dresses below the waist, the coat's skirt, legs, shoes).
Occluders are background. All functions work on whole batches: no loop over images or
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...layers.parts import BACKGROUND, HEAD, LOWER, UPPER
from .styles import DomainStyle

__all__ = [
    "HEAD_END",
    "LEG_LENGTH",
    "NUM_MATERIALS",
    "WAIST",
    "bcast",
    "body_rows",
    "render_people",
    "sample_body",
]

# materials: index into a per-image palette (N, NUM_MATERIALS, 3)
SKIN, HAIR, HAT, UP1, UP2, LOW, SHOE, BAG, OCC = range(1, 10)
NUM_MATERIALS = 10
# upper-garment patterns and lower garments (styles.UPPER_PATTERNS, styles.LOWER_GARMENTS)
SOLID, STRIPES, YOKE, LOGO, OPEN_FRONT, CHECKS = range(6)
SHORTS, TROUSERS, SKIRT, LONG_SKIRT = range(4)

# canonical layout (float32, so that the a/b proportions map rows onto themselves exactly)
HEAD_END = np.float32(0.15)
LEG_LENGTH = np.float32(0.48)
WAIST = np.float32(1) - LEG_LENGTH


def bcast(a: np.ndarray) -> np.ndarray:
    """(N,) -> float32 (N, 1, 1), to broadcast a per-image value over an (N, H, W) grid."""
    return a.reshape(-1, 1, 1).astype(np.float32)


def body_rows(v: np.ndarray, head: np.ndarray, leg: np.ndarray) -> np.ndarray:
    """Image rows in body units ``v`` -> canonical rows, for per-image proportions.

    Args:
        v: (N, H, 1) float32 rows of each image in units of its person's height.
        head: (N, 1, 1) float32 head scale: the head spans ``[0, head * HEAD_END]``.
        leg: (N, 1, 1) float32 share of the height below the waist.

    Returns:
        (N, H, 1) float32: ``[0, head*HEAD_END] -> [0, HEAD_END]``, the torso onto
        ``[HEAD_END, WAIST]`` and the legs onto ``[WAIST, 1]``, linearly. Written as
        ``v + delta`` with ``delta`` exactly 0 for ``head == 1, leg == LEG_LENGTH``.
    """
    hb = head * HEAD_END
    waist = 1 - leg
    torso_gain = (WAIST - HEAD_END) / (waist - hb) - 1
    leg_gain = (1 - WAIST) / (1 - waist) - 1
    d_head = v * (1 / head - 1)
    d_torso = (HEAD_END - hb) + (v - hb) * torso_gain
    d_legs = (WAIST - waist) + (v - waist) * leg_gain
    return v + np.where(v < hb, d_head, np.where(v < waist, d_torso, d_legs))


def sample_body(
    rng: np.random.Generator, attrs: dict[str, np.ndarray], st: DomainStyle
) -> dict[str, np.ndarray]:
    """Per-identity proportions and outfits, drawn from their own random stream.

    Args:
        rng: a generator used for nothing else, so the draws of ``attrs`` (and of every
            domain rendered before these fields existed) are unchanged.
        attrs: identity attributes from :func:`~.render.sample_identities` (leading dim n).
        st: the domain's statistics.

    Returns:
        New entries ``head``, ``leg``, ``shoulder`` (float32), ``dress``, ``coat`` (bool)
        and the entries they override: ``low_type`` (dresses are skirts or long skirts),
        ``low`` (a dress's skirt has its top's colour), ``long_sleeve`` (coats have long
        sleeves), ``up_pattern`` (coats are open at the front). Under the ``a``/``b``
        defaults every overridden entry keeps its values.
    """
    n = len(attrs["low_type"])
    outfit = rng.random(n)
    dress = outfit < st.dress_p
    coat = (outfit >= st.dress_p) & (outfit < st.dress_p + st.coat_p)
    long_dress = rng.random(n) < 0.5
    return {
        "head": rng.uniform(*st.head_scale, n).astype(np.float32),
        "leg": rng.uniform(*st.leg_length, n).astype(np.float32),
        "shoulder": rng.uniform(*st.shoulder, n).astype(np.float32),
        "dress": dress,
        "coat": coat,
        "low_type": np.where(dress, np.where(long_dress, LONG_SKIRT, SKIRT), attrs["low_type"]),
        "low": np.where(dress[:, None], attrs["up1"], attrs["low"]),
        "long_sleeve": attrs["long_sleeve"] | coat,
        "up_pattern": np.where(coat, OPEN_FRONT, attrs["up_pattern"]),
    }


def _get(src: dict[str, np.ndarray], key: str, default: float | np.floating, n: int
         ) -> np.ndarray:
    """``src[key]``, or ``default`` for every image where the key is absent."""
    return src[key] if key in src else np.full(n, default, np.float32)


@dataclass(frozen=True)
class _Body:
    """Body coordinates of every pixel, ``(N, H, W)``: ``u`` across (mirrored), ``v``
    down the body, their head-scaled ``uh``, absolute values, and ``front`` ``(N, 1, 1)``
    (seen from the front)."""

    u: np.ndarray
    au: np.ndarray
    v: np.ndarray
    uh: np.ndarray
    auh: np.ndarray
    front: np.ndarray


class _Canvas:
    """The material and part-label maps ``(N, H, W)`` that :func:`render_people` paints."""

    def __init__(
        self, attrs: dict[str, np.ndarray], img: dict[str, np.ndarray], n: int, h: int, w: int
    ) -> None:
        self.attrs, self.img, self.n = attrs, img, n
        self.mat = np.zeros((n, h, w), np.uint8)
        self.part = np.full((n, h, w), BACKGROUND, np.uint8)

    def paint(self, mask: np.ndarray, material: np.ndarray | int, label: int) -> None:
        """Set the material and the part label where ``mask`` holds."""
        np.copyto(self.mat, material, where=mask, casting="unsafe")
        np.copyto(self.part, label, where=mask, casting="unsafe")

    def flag(self, key: str, src: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Attribute ``key`` (of ``src``, default the identity attributes) as ``(N, 1, 1)``."""
        return (self.attrs if src is None else src)[key].reshape(-1, 1, 1)

    def has(self, key: str) -> np.ndarray:
        """Attribute ``key`` as ``(N, 1, 1)``, ``False`` where the attributes lack it."""
        return self.flag(key) if key in self.attrs else np.zeros((self.n, 1, 1), bool)


def _paint_lower(cv: _Canvas, g: _Body) -> None:
    """Long hair and bag (behind the body), legs, lower clothes, coat skirt and feet."""
    u, au, v, auh, front = g.u, g.au, g.v, g.auh, g.front
    flag, has, paint = cv.flag, cv.has, cv.paint
    # long hair falls behind the shoulders
    paint(flag("hair_long") & (auh < 0.075) & (v > 0.07) & (v < 0.26), HAIR, HEAD)
    # bag at the hip on the mirrored side
    bag_body = flag("bag") & (u > 0.135) & (u < 0.2) & (v > 0.38) & (v < 0.56)
    paint(bag_body, BAG, UPPER)
    # legs, with a walking stride
    stride = bcast(cv.img["stride"]) * np.clip(v - 0.52, 0, None)
    leg_l = (u > -0.085 - stride) & (u < -0.008 - stride * 0.5)
    leg_r = (u < 0.085 + stride) & (u > 0.008 + stride * 0.5)
    legs = (leg_l | leg_r) & (v >= 0.52) & (v < 0.95)
    hips = (au < 0.09) & (v >= 0.5) & (v < 0.6)
    low_type = flag("low_type")
    cloth_end = np.where(low_type == SHORTS, 0.69, np.where(low_type == TROUSERS, 0.94, 0.0))
    paint(legs, SKIN, LOWER)
    paint((legs | hips) & (v < cloth_end), LOW, LOWER)
    skirt = (low_type == SKIRT) & (v >= 0.5) & (v < 0.73) & (au < 0.09 + 0.35 * (v - 0.5))
    long_skirt = (low_type == LONG_SKIRT) & (v >= 0.5) & (v < 0.9) & (au < 0.09 + 0.3 * (v - 0.5))
    paint(skirt | long_skirt | ((low_type >= SKIRT) & hips), LOW, LOWER)
    # a long coat's skirt, open at the front down to above the knee
    slit = front & (au < 0.012 + 0.06 * (v - 0.5))
    coat_low = has("coat") & (v >= 0.5) & (v < 0.8) & (au < 0.1 + 0.15 * (v - 0.5)) & ~slit
    paint(coat_low, UP1, LOWER)
    feet = (v >= 0.93) & (v < 0.985) & (leg_l | leg_r)
    paint(feet, SHOE, LOWER)


def _paint_upper(cv: _Canvas, g: _Body) -> None:
    """Torso with its pattern, arms and hands, and the bag's strap."""
    u, au, v, front = g.u, g.au, g.v, g.front
    flag, paint, n, img = cv.flag, cv.paint, cv.n, cv.img
    # torso (shoulders broadened by the shoulder factor) with its pattern
    taper = np.clip((v - 0.16) / 0.36, 0, 1)
    half = 0.115 - 0.03 * taper
    half = half + (bcast(_get(cv.attrs, "shoulder", 1.0, n)) - 1) * 0.115 * (1 - taper)
    torso = (v >= 0.155) & (v < 0.53) & (au < half)
    pat = flag("up_pattern")
    stripe_f = bcast(cv.attrs["stripe_f"])
    stripes = np.sin(v * stripe_f * 6.28) > 0
    yoke = v < 0.27
    logo = (au < 0.04) & (v > 0.24) & (v < 0.32) & front
    second = ((pat == STRIPES) & stripes) | ((pat == YOKE) & yoke) | ((pat == LOGO) & logo)
    second |= (pat == OPEN_FRONT) & (au < 0.035) & front
    second |= (pat == CHECKS) & (stripes ^ (np.sin(u * stripe_f * 6.28) > 0))
    paint(torso, np.where(second, UP2, UP1), UPPER)
    # arms (sleeves then skin) and hands, swung down with the stride, spread outwards
    swing = 0.04 * bcast(img["stride"])
    arm_u = au - bcast(_get(img, "arm_spread", 0.0, n)) * np.clip(v - 0.17, 0, None)
    arms = (
        (arm_u >= half - 0.005) & (arm_u < half + 0.042) & (v >= 0.17 + swing) & (v < 0.52 + swing)
    )
    sleeve_end = np.where(flag("long_sleeve"), 0.47, 0.29) + swing
    paint(arms, np.where(v < sleeve_end, UP1, SKIN), UPPER)
    strap = flag("bag") & torso & (np.abs(u - (v - 0.17) * 0.3 + 0.06) < 0.014) & (v < 0.45)
    paint(strap, BAG, UPPER)


def _paint_head(cv: _Canvas, g: _Body) -> None:
    """Neck, head, hair and hat."""
    uh, auh, v, front = g.uh, g.auh, g.v, g.front
    flag, paint = cv.flag, cv.paint
    paint((auh < 0.03) & (v >= 0.12) & (v < 0.17), SKIN, HEAD)
    head = (uh / 0.056) ** 2 + ((v - 0.078) / 0.07) ** 2 < 1.0
    paint(head, SKIN, HEAD)
    hair_top = head & ((v < 0.055) | ~front | (flag("hair_long") & (auh > 0.035)))
    paint(hair_top, HAIR, HEAD)
    hat = flag("hat") & (((uh / 0.062) ** 2 + ((v - 0.06) / 0.062) ** 2 < 1.0) & (v < 0.05))
    brim = flag("hat") & (auh < 0.085) & (v >= 0.04) & (v < 0.055)
    paint(hat | brim, HAT, HEAD)


def render_people(
    attrs: dict[str, np.ndarray], img: dict[str, np.ndarray], background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one person per image over ``background`` (N, H, W, 3).

    ``attrs`` holds identity attributes already gathered per image (leading dim N),
    optionally with the :func:`sample_body` entries (absent: the ``a``/``b`` body);
    ``img`` holds per-image geometry: ``cx``, ``top``, ``scale``, ``mirror`` (+-1),
    ``back`` (bool, seen from behind), ``stride`` (leg spread), optional ``arm_spread``
    (arms away from the body), ``occ`` (occluder kind 0 none / 1 bottom / 2 side),
    ``occ_size``, ``occ_col`` (N, 3).

    Returns:
        ``(image (N, H, W, 3) float in [0, 1], parts (N, H, W) uint8)``.
    """
    n, h, w, _ = background.shape
    y = (np.arange(h, dtype=np.float32)[None, :, None] + 0.5) / h
    x = (np.arange(w, dtype=np.float32)[None, None, :] + 0.5 - w / 2) / h
    s = bcast(img["scale"])
    v = (y - bcast(img["top"])) / (s * bcast(attrs["height"]) * 0.92)
    u = (x - bcast(img["cx"])) / (s * bcast(attrs["width"])) * bcast(img["mirror"])
    au = np.abs(u)
    head_scale = bcast(_get(attrs, "head", 1.0, n))
    v = body_rows(v, head_scale, bcast(_get(attrs, "leg", LEG_LENGTH, n)))
    uh = u / head_scale  # head shapes: wider with a bigger head
    cv = _Canvas(attrs, img, n, h, w)
    front = ~cv.flag("back", img)
    g = _Body(u=u, au=au, v=v, uh=uh, auh=np.abs(uh), front=front)
    _paint_lower(cv, g)
    _paint_upper(cv, g)
    _paint_head(cv, g)

    # occluders (benches, cars, passers-by) hide the person: labelled background
    occ = cv.flag("occ", img)
    size = bcast(img["occ_size"])
    occ_mask = ((occ == 1) & (y > 1.0 - size)) | ((occ == 2) & (x > 0.25 - size * 0.5))
    np.copyto(cv.mat, OCC, where=occ_mask, casting="unsafe")
    np.copyto(cv.part, BACKGROUND, where=occ_mask, casting="unsafe")
    return _colour(attrs, img, cv.mat, au, background), cv.part


def _colour(
    attrs: dict[str, np.ndarray],
    img: dict[str, np.ndarray],
    mat: np.ndarray,
    au: np.ndarray,
    background: np.ndarray,
) -> np.ndarray:
    """Materials (N, H, W) -> colours (N, H, W, 3): shaded palette, background where 0."""
    n, h, w = mat.shape
    palette = np.zeros((n, NUM_MATERIALS, 3), np.float32)
    for key, idx in (
        ("skin", SKIN),
        ("hair", HAIR),
        ("hat_col", HAT),
        ("up1", UP1),
        ("up2", UP2),
        ("low", LOW),
        ("shoe", SHOE),
        ("bag_col", BAG),
    ):
        palette[:, idx] = attrs[key]
    palette[:, OCC] = img["occ_col"]
    # round bodies are darker at the edges (shade per column); occluders are flat
    shade = (1.0 - 0.25 * np.minimum(au * (1 / 0.14), 1.0) ** 2).astype(np.float32)
    shaded = palette[:, None, :, :] * shade.reshape(n, w, 1, 1)  # (N, W, M, 3)
    shaded[:, :, OCC] = palette[:, None, OCC]
    flat = (np.arange(n * w).reshape(n, 1, w) * NUM_MATERIALS + mat).reshape(-1)
    colour = np.take(shaded.reshape(-1, 3), flat, axis=0).reshape(n, h, w, 3)
    np.copyto(colour, background, where=(mat == 0)[..., None])
    return colour
