"""Vectorised procedural pedestrian renderer behind :mod:`semparts_reid.data.synthetic`.

Every function works on a whole batch at once: per-image parameters are arrays of
shape (N,), shapes are evaluated on an (N, H, W) grid in *person coordinates*
``(u, v)`` (``v`` = 0 at the top of the head, 1 at the soles; ``u`` horizontal, in
units of the person's height, 0 on the body axis). No Python loop over images or pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...layers.parts import BACKGROUND, HEAD, LOWER, UPPER

# materials: index into a per-image palette (N, NUM_MATERIALS, 3)
SKIN, HAIR, HAT, UP1, UP2, LOW, SHOE, BAG, OCC = range(1, 10)
NUM_MATERIALS = 10


@dataclass(frozen=True)
class DomainStyle:
    """Statistics of one synthetic domain (cameras, clothing, backgrounds, capture noise)."""

    name: str
    num_cams: int
    lower_probs: tuple[float, float, float]  # shorts, trousers, skirt
    neutral_p: float  # probability that a garment is grey/black/white
    cloth_value: tuple[float, float]  # HSV value range of coloured garments
    cloth_sat: tuple[float, float]
    bg_kind_probs: tuple[float, float, float, float]  # ground/sky, tiles, waves, shelves
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


# fmt: off
DOMAINS: dict[str, DomainStyle] = {
    # "a": bright, outdoor-like, summery clothes, mild detector noise (Market-like)
    "a": DomainStyle(
        "a", 6, (0.55, 0.3, 0.15), 0.3, (0.45, 1.0), (0.45, 1.0),
        (0.5, 0.3, 0.2, 0.0), (0.45, 0.95), (0.05, 0.45), (0.15, 0.45),
        0.06, (0.9, 1.15), 0.025, (0.9, 1.0), 0.1, 0.1, 3.0, 2, 0.75, 0.15, 0.3, 0.3,
    ),
    # "b": darker indoor/winter scenes, trousers, strong casts, more misalignment (Duke-like)
    "b": DomainStyle(
        "b", 8, (0.1, 0.7, 0.2), 0.55, (0.15, 0.75), (0.2, 0.8),
        (0.1, 0.2, 0.3, 0.4), (0.2, 0.7), (0.1, 0.6), (0.0, 0.15),
        0.12, (0.6, 1.0), 0.06, (0.8, 1.05), 0.3, 0.3, 5.0, 3, 0.75, 0.3, 0.45, 0.75,
    ),
}
# fmt: on


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV in [0, 1] (any equal shapes) -> RGB float array (..., 3) in [0, 1]."""
    h6 = (h % 1.0) * 6.0
    i = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def sample_colours(rng: np.random.Generator, n: int, st: DomainStyle) -> np.ndarray:
    """Garment colours (n, 3): neutral greys or saturated colours with domain statistics."""
    neutral = rng.random(n) < st.neutral_p
    h = rng.random(n)
    s = np.where(neutral, rng.uniform(0, 0.1, n), rng.uniform(*st.cloth_sat, n))
    v = np.where(neutral, rng.uniform(0.08, 0.95, n), rng.uniform(*st.cloth_value, n))
    return hsv_to_rgb(h, s, v)


def sample_identities(rng: np.random.Generator, n: int, st: DomainStyle) -> dict[str, np.ndarray]:
    """Appearance attributes of ``n`` identities; each value has leading dimension n."""
    u = rng.uniform
    skin = hsv_to_rgb(u(0.02, 0.1, n), u(0.25, 0.6, n), u(0.35, 0.95, n))
    hair = hsv_to_rgb(u(0.0, 0.12, n), u(0.2, 0.8, n), u(0.05, 0.6, n))
    return {
        "skin": skin,
        "hair": hair,
        "hat_col": sample_colours(rng, n, st),
        "up1": sample_colours(rng, n, st),
        "up2": sample_colours(rng, n, st),
        "low": sample_colours(rng, n, st),
        "shoe": sample_colours(rng, n, st) * 0.6,
        "bag_col": sample_colours(rng, n, st),
        "hair_long": rng.random(n) < 0.35,
        "hat": rng.random(n) < st.hat_p,
        "bag": rng.random(n) < st.bag_p,
        "up_pattern": rng.integers(0, 4, n),  # solid, stripes, yoke, logo
        "stripe_f": rng.uniform(14, 30, n).astype(np.float32),
        "long_sleeve": rng.random(n) < st.long_sleeve_p,
        "low_type": rng.choice(3, n, p=np.asarray(st.lower_probs)),
        "width": rng.uniform(0.85, 1.18, n).astype(np.float32),
        "height": rng.uniform(0.93, 1.04, n).astype(np.float32),
    }


def sample_scenes(rng: np.random.Generator, n: int, st: DomainStyle) -> dict[str, np.ndarray]:
    """Background scene parameters for ``n`` scenes."""
    hue = rng.uniform(*st.bg_hue, (n, 2))
    return {
        "kind": rng.choice(4, n, p=np.asarray(st.bg_kind_probs)),
        "col_a": hsv_to_rgb(hue[:, 0], rng.uniform(*st.bg_sat, n), rng.uniform(*st.bg_value, n)),
        "col_b": hsv_to_rgb(hue[:, 1], rng.uniform(*st.bg_sat, n), rng.uniform(*st.bg_value, n)),
        "freq": rng.uniform(4, 16, n).astype(np.float32),
        "angle": rng.uniform(0, np.pi, n).astype(np.float32),
        "horizon": rng.uniform(0.25, 0.6, n).astype(np.float32),
    }


def _bcast(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1, 1, 1).astype(np.float32)


def render_background(sc: dict[str, np.ndarray], h: int, w: int) -> np.ndarray:
    """Scene parameters (leading dim N) -> background images (N, H, W, 3) float32 in [0, 1]."""
    n = len(sc["kind"])
    mix = np.empty((n, h, w), np.float32)
    y = (np.arange(h, dtype=np.float32)[None, :, None] + 0.5) / h
    x = (np.arange(w, dtype=np.float32)[None, None, :] + 0.5) / h  # height units
    for kind in range(4):  # each image evaluates only its own texture kind
        sel = np.flatnonzero(sc["kind"] == kind)
        if sel.size == 0:
            continue
        f = _bcast(sc["freq"][sel])
        if kind == 0:  # sky above a horizon, ground with perspective stripes below
            hor = _bcast(sc["horizon"][sel])
            below = y > hor
            ground = np.sin(f * 0.7 * x / np.maximum(y - hor + 0.1, 0.1))
            m = np.where(below, 0.85 + 0.075 * ground, 0.05 + 0.6 * y)
        elif kind == 1:  # tiles / bricks
            row = np.floor(y * f)
            m = ((np.floor(x * f + 0.5 * (row % 2)) + row) % 2) * 0.8 + 0.1
        elif kind == 2:  # oriented waves
            ang = sc["angle"][sel]
            cx, cy = _bcast(np.cos(ang) * 6.28), _bcast(np.sin(ang) * 6.28)
            m = 0.5 + 0.5 * np.sin(f * (x * cx + y * cy))
        else:  # shelves / doors: vertical bars with horizontal breaks
            m = (np.sin(x * f * 6.28) > 0.3) * (0.6 + 0.4 * (np.sin(y * f * 2) > 0))
        mix[sel] = m
    a = sc["col_a"].astype(np.float32)[:, None, None, :]
    b = sc["col_b"].astype(np.float32)[:, None, None, :]
    return b + (a - b) * mix[..., None]


def render_people(
    attrs: dict[str, np.ndarray], img: dict[str, np.ndarray], background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one person per image over ``background`` (N, H, W, 3).

    ``attrs`` holds identity attributes already gathered per image (leading dim N);
    ``img`` holds per-image geometry: ``cx``, ``top``, ``scale``, ``mirror`` (+-1),
    ``back`` (bool, seen from behind), ``stride`` (leg spread), ``occ`` (occluder kind
    0 none / 1 bottom / 2 side), ``occ_size``, ``occ_col`` (N, 3).

    Returns:
        ``(image (N, H, W, 3) float in [0, 1], parts (N, H, W) uint8)``.
    """
    n, h, w, _ = background.shape
    y = (np.arange(h, dtype=np.float32)[None, :, None] + 0.5) / h
    x = (np.arange(w, dtype=np.float32)[None, None, :] + 0.5 - w / 2) / h
    s = _bcast(img["scale"])
    v = (y - _bcast(img["top"])) / (s * _bcast(attrs["height"]) * 0.92)
    u = (x - _bcast(img["cx"])) / (s * _bcast(attrs["width"])) * _bcast(img["mirror"])
    au = np.abs(u)
    mat = np.zeros((n, h, w), np.uint8)
    part = np.full((n, h, w), BACKGROUND, np.uint8)

    def paint(mask: np.ndarray, material: np.ndarray | int, label: int) -> None:
        np.copyto(mat, material, where=mask, casting="unsafe")
        np.copyto(part, label, where=mask, casting="unsafe")

    def flag(key: str, src: dict[str, np.ndarray] = attrs) -> np.ndarray:
        return src[key].reshape(-1, 1, 1)

    # long hair falls behind the shoulders
    paint(flag("hair_long") & (au < 0.075) & (v > 0.07) & (v < 0.26), HAIR, HEAD)
    # bag at the hip on the mirrored side
    bag_body = flag("bag") & (u > 0.135) & (u < 0.2) & (v > 0.38) & (v < 0.56)
    paint(bag_body, BAG, UPPER)
    # legs, with a walking stride
    stride = _bcast(img["stride"]) * np.clip(v - 0.52, 0, None)
    leg_l = (u > -0.085 - stride) & (u < -0.008 - stride * 0.5)
    leg_r = (u < 0.085 + stride) & (u > 0.008 + stride * 0.5)
    legs = (leg_l | leg_r) & (v >= 0.52) & (v < 0.95)
    hips = (au < 0.09) & (v >= 0.5) & (v < 0.6)
    low_type = flag("low_type")
    cloth_end = np.where(low_type == 0, 0.69, np.where(low_type == 1, 0.94, 0.0))
    paint(legs, SKIN, LOWER)
    paint((legs | hips) & (v < cloth_end), LOW, LOWER)
    skirt = (low_type == 2) & (v >= 0.5) & (v < 0.73) & (au < 0.09 + 0.35 * (v - 0.5))
    paint(skirt | ((low_type == 2) & hips), LOW, LOWER)
    feet = (v >= 0.93) & (v < 0.985) & (leg_l | leg_r)
    paint(feet, SHOE, LOWER)
    # torso with stripe/yoke/logo patterns
    half = 0.115 - 0.03 * np.clip((v - 0.16) / 0.36, 0, 1)
    torso = (v >= 0.155) & (v < 0.53) & (au < half)
    pat = flag("up_pattern")
    stripes = np.sin(v * _bcast(attrs["stripe_f"]) * 6.28) > 0
    yoke = v < 0.27
    logo = (au < 0.04) & (v > 0.24) & (v < 0.32) & ~flag("back", img)
    second = ((pat == 1) & stripes) | ((pat == 2) & yoke) | ((pat == 3) & logo)
    paint(torso, np.where(second, UP2, UP1), UPPER)
    # arms (sleeves then skin) and hands
    swing = 0.04 * _bcast(img["stride"])
    arms = (au >= half - 0.005) & (au < half + 0.042) & (v >= 0.17 + swing) & (v < 0.52 + swing)
    sleeve_end = np.where(flag("long_sleeve"), 0.47, 0.29) + swing
    paint(arms, np.where(v < sleeve_end, UP1, SKIN), UPPER)
    strap = flag("bag") & torso & (np.abs(u - (v - 0.17) * 0.3 + 0.06) < 0.014) & (v < 0.45)
    paint(strap, BAG, UPPER)
    # neck, head, hair, hat
    paint((au < 0.03) & (v >= 0.12) & (v < 0.17), SKIN, HEAD)
    head = (u / 0.056) ** 2 + ((v - 0.078) / 0.07) ** 2 < 1.0
    paint(head, SKIN, HEAD)
    hair_top = head & ((v < 0.055) | flag("back", img) | (flag("hair_long") & (au > 0.035)))
    paint(hair_top, HAIR, HEAD)
    hat = flag("hat") & (((u / 0.062) ** 2 + ((v - 0.06) / 0.062) ** 2 < 1.0) & (v < 0.05))
    brim = flag("hat") & (au < 0.085) & (v >= 0.04) & (v < 0.055)
    paint(hat | brim, HAT, HEAD)

    # occluders (benches, cars, passers-by) hide the person: labelled background
    occ = flag("occ", img)
    size = _bcast(img["occ_size"])
    occ_mask = ((occ == 1) & (y > 1.0 - size)) | ((occ == 2) & (x > 0.25 - size * 0.5))
    np.copyto(mat, OCC, where=occ_mask, casting="unsafe")
    np.copyto(part, BACKGROUND, where=occ_mask, casting="unsafe")

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
    return colour, part


def add_clutter(images: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Paint coloured rectangles/ellipses (clothing-like colours) on backgrounds (N, H, W, 3).

    ``params`` holds arrays (N, C): ``cx``, ``cy``, ``rw``, ``rh``, ``ellipse`` and
    ``col`` (N, C, 3); positions in image-height units from the top-left corner.
    """
    n, h, w, _ = images.shape
    y = (np.arange(h, dtype=np.float32)[None, :, None] + 0.5) / h
    x = (np.arange(w, dtype=np.float32)[None, None, :] + 0.5) / h
    images = images.copy()
    for c in range(params["cx"].shape[1]):  # a handful of objects per image
        dx = (x - _bcast(params["cx"][:, c])) / _bcast(params["rw"][:, c])  # (N, 1, W)
        dy = (y - _bcast(params["cy"][:, c])) / _bcast(params["rh"][:, c])  # (N, H, 1)
        ell = params["ellipse"][:, c] > 0.5
        inside = (np.abs(dx) < 1) & (np.abs(dy) < 1)
        inside[ell] &= dx[ell] ** 2 + dy[ell] ** 2 < 1
        col = params["col"][:, c, None, None, :].astype(np.float32)
        np.copyto(images, col, where=inside[..., None])
    return images


def camera_and_capture(
    images: np.ndarray,
    gain: np.ndarray,
    blur: np.ndarray,
    noise: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Per-image channel gains (N, 3), optional 3x3 blur (N,) bool, Gaussian noise std (N,).

    Returns uint8 images (N, H, W, 3).
    """
    out = images * (gain.astype(np.float32) * 255.0)[:, None, None, :]
    sel = np.flatnonzero(blur)
    if sel.size:  # separable [1, 2, 1] / 4 blur on the selected images only
        pad = np.pad(out[sel], ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        tmp = (pad[:, :-2] + 2 * pad[:, 1:-1] + pad[:, 2:]) * 0.25
        out[sel] = (tmp[:, :, :-2] + 2 * tmp[:, :, 1:-1] + tmp[:, :, 2:]) * 0.25
    # sensor noise: a small bank of Gaussian fields, one picked and flipped per image
    bank = rng.standard_normal((8,) + out.shape[1:], dtype=np.float32)
    pick = rng.integers(0, 8, len(out))
    flip = rng.random(len(out)) < 0.5
    fields = np.where(flip[:, None, None, None], bank[pick][:, ::-1], bank[pick])
    out += fields * noise.astype(np.float32).reshape(-1, 1, 1, 1)
    np.clip(out + 0.5, 0, 255, out=out)
    return out.astype(np.uint8)
