"""Vectorised procedural pedestrian renderer behind :mod:`semparts_reid.data.synthetic`.

Every function works on a whole batch at once: per-image parameters are arrays of
shape (N,), shapes are evaluated on an (N, H, W) grid. No Python loop over images or
pixels. This module samples appearance and scenes, draws backgrounds, clutter and the
camera; the people are drawn by :mod:`.people` (re-exported here) and the domain
statistics live in :mod:`.styles` (re-exported here).
"""

from __future__ import annotations

import numpy as np

from .people import NUM_MATERIALS, body_rows, render_people, sample_body
from .people import bcast as _bcast
from .styles import BG_KINDS, DOMAINS, DomainStyle

__all__ = [
    "BG_KINDS",
    "DOMAINS",
    "NUM_MATERIALS",
    "DomainStyle",
    "add_clutter",
    "body_rows",
    "camera_and_capture",
    "hsv_to_rgb",
    "render_background",
    "render_people",
    "sample_body",
    "sample_colours",
    "sample_identities",
    "sample_scenes",
]


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
        "up_pattern": (  # styles.UPPER_PATTERNS; a and b: the first four, uniformly
            rng.integers(0, 4, n)
            if st.pattern_probs is None
            else rng.choice(len(st.pattern_probs), n, p=np.asarray(st.pattern_probs))
        ),
        "stripe_f": rng.uniform(14, 30, n).astype(np.float32),
        "long_sleeve": rng.random(n) < st.long_sleeve_p,
        "low_type": rng.choice(len(st.lower_probs), n, p=np.asarray(st.lower_probs)),
        "width": rng.uniform(*st.body_width, n).astype(np.float32),
        "height": rng.uniform(*st.body_height, n).astype(np.float32),
    }


def sample_scenes(rng: np.random.Generator, n: int, st: DomainStyle) -> dict[str, np.ndarray]:
    """Background scene parameters for ``n`` scenes."""
    hue = rng.uniform(*st.bg_hue, (n, 2))
    return {
        "kind": rng.choice(len(st.bg_kind_probs), n, p=np.asarray(st.bg_kind_probs)),
        "col_a": hsv_to_rgb(hue[:, 0], rng.uniform(*st.bg_sat, n), rng.uniform(*st.bg_value, n)),
        "col_b": hsv_to_rgb(hue[:, 1], rng.uniform(*st.bg_sat, n), rng.uniform(*st.bg_value, n)),
        "freq": rng.uniform(4, 16, n).astype(np.float32),
        "angle": rng.uniform(0, np.pi, n).astype(np.float32),
        "horizon": rng.uniform(0.25, 0.6, n).astype(np.float32),
    }


def render_background(sc: dict[str, np.ndarray], h: int, w: int) -> np.ndarray:
    """Scene parameters (leading dim N) -> background images (N, H, W, 3) float32 in [0, 1].

    Texture kinds (:data:`~.styles.BG_KINDS`): 0 sky above a horizon and a striped
    ground, 1 tiles, 2 oriented waves, 3 shelves, 4 foliage (warped sinusoids), 5 a
    station: banded wall above a perspective checkerboard floor, 6 a facade of lit
    windows. Each image evaluates only its own kind.
    """
    n = len(sc["kind"])
    mix = np.empty((n, h, w), np.float32)
    y = (np.arange(h, dtype=np.float32)[None, :, None] + 0.5) / h
    x = (np.arange(w, dtype=np.float32)[None, None, :] + 0.5) / h  # height units
    for kind in range(len(BG_KINDS)):  # a handful of kinds, each over its own images
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
        elif kind == 3:  # shelves / doors: vertical bars with horizontal breaks
            m = (np.sin(x * f * 6.28) > 0.3) * (0.6 + 0.4 * (np.sin(y * f * 2) > 0))
        else:
            m = _new_texture(kind, sc, sel, f, x, y)
        mix[sel] = m
    a = sc["col_a"].astype(np.float32)[:, None, None, :]
    b = sc["col_b"].astype(np.float32)[:, None, None, :]
    return b + (a - b) * mix[..., None]


def _new_texture(
    kind: int,
    sc: dict[str, np.ndarray],
    sel: np.ndarray,
    f: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """Mix maps (len(sel), H, W) of the kinds added with domain ``c`` (4, 5, 6)."""
    if kind == 4:  # foliage / marble: sinusoids warped by each other
        ang = sc["angle"][sel]
        cx, cy = _bcast(np.cos(ang) * 6.28), _bcast(np.sin(ang) * 6.28)
        warp = 1.5 * np.sin(f * 4.0 * y) + np.sin(f * 3.0 * x)
        return 0.5 + 0.5 * np.sin(f * (x * cx + y * cy) + warp) * np.cos(f * 3.0 * y + warp)
    if kind == 5:  # station: banded wall, checkerboard floor in perspective below a horizon
        hor = _bcast(sc["horizon"][sel])
        depth = 1.0 / np.maximum(y - hor + 0.08, 0.08)
        checker = (np.floor(f * 0.4 * (x - 0.25) * depth) + np.floor(f * 0.2 * depth)) % 2
        wall = 0.25 + 0.15 * (np.sin(y * f * 3.0) > 0.6)
        return np.where(y > hor, 0.35 + 0.6 * checker, wall)
    if kind == 6:  # facade: a grid of lit windows on a dark wall
        wx, wy = (x * f * 0.7) % 1.0, (y * f * 0.5) % 1.0
        window = (wx > 0.25) & (wx < 0.75) & (wy > 0.2) & (wy < 0.7)
        return np.where(window, 0.95, 0.12 + 0.05 * np.sin(x * f * 20.0))
    raise ValueError(f"background kind {kind}: expected 0..{len(BG_KINDS) - 1}")


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
    gamma: np.ndarray | None = None,
) -> np.ndarray:
    """Per-image channel gains (N, 3), optional 3x3 blur (N,) bool, Gaussian noise std (N,).

    ``gamma`` (N,), optional: a tone curve ``images ** gamma`` before the gains (skipped
    when every value is 1, so images without one are unchanged bit for bit).

    Returns uint8 images (N, H, W, 3).
    """
    if gamma is not None and np.any(gamma != 1):
        images = np.clip(images, 0, 1) ** gamma.astype(np.float32).reshape(-1, 1, 1, 1)
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
