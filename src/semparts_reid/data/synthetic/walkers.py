"""A small generated MOTChallenge sequence: people walking across a scene, with known ids.

:func:`render_walkers` draws ``num_people`` synthetic pedestrians (the renderer of
:mod:`.people`, domain ``a``'s appearance statistics) walking left-to-right or
right-to-left in front of one background. People enter and leave through the frame
edges (their boxes are cut by the edge there), walk at different depths (nearer is
lower and larger, and drawn over farther people), and cross each other, so boxes overlap
and people are partly or wholly occluded. Each row of the ground truth has the person's
full box and its visible fraction.

:func:`write_walkers_sequence` writes it as a MOT sequence folder: ``seqinfo.ini``,
``img1/000001.jpg ...``, ``gt/gt.txt`` (MOT17 layout: ``frame, id, left, top, w, h, 1,
1, visibility``, 1-based pixels) and ``det/det.txt`` (the ground-truth boxes with a
fixed share dropped and jittered, id ``-1``, a confidence). Deterministic from the seed;
well under a second at the test sizes.

Example:
    >>> root = write_walkers_sequence("/tmp/walkers", num_frames=30, seed=0)  # doctest: +SKIP
    >>> ds = build_dataset(f"mot:{root}?source=det")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import InputError
from ...layers.parts import BACKGROUND
from .people import render_people
from .render import render_background, sample_identities, sample_scenes
from .styles import DOMAINS

__all__ = ["WalkerSequence", "render_walkers", "write_walkers_sequence"]

_HALF_WIDTH = 0.2  # half the body's width (arms, bag) in units of scale * width
_CHUNK = 32  # person renders per batch


@dataclass(frozen=True)
class WalkerSequence:
    """A rendered sequence.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB images; frame ``t`` (1-based) is ``frames[t-1]``.
        frame: ``(N,)`` int64 1-based frame of each ground-truth row.
        pid: ``(N,)`` int64 person id (1-based).
        ltwh: ``(N, 4)`` float64 full box ``left, top, width, height``, 0-based pixels
            (may extend past the frame edge).
        visibility: ``(N,)`` float64 share of the person's in-frame pixels that are not
            hidden by a nearer person.
        fps: frame rate written to ``seqinfo.ini``.
    """

    frames: np.ndarray
    frame: np.ndarray
    pid: np.ndarray
    ltwh: np.ndarray
    visibility: np.ndarray
    fps: int


def _check(name: str, value: int, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise InputError(f"{name}={value!r}: expected an integer >= {lo}")
    return int(value)


def render_walkers(
    num_frames: int = 40,
    num_people: int = 6,
    *,
    height: int = 120,
    width: int = 200,
    seed: int = 0,
    fps: int = 10,
) -> WalkerSequence:
    """Render people walking across one scene (see the module docstring).

    Args:
        num_frames: sequence length ``T``.
        num_people: identities; their entry frames spread over the first half of the
            sequence, so several are in the frame at once.
        height, width: frame size in pixels.
        seed: every random choice comes from it.
        fps: frame rate (only written to ``seqinfo.ini``).

    Returns:
        :class:`WalkerSequence`.
    """
    t_n = _check("num_frames", num_frames, 2)
    p_n = _check("num_people", num_people, 1)
    h, w = _check("height", height, 32), _check("width", width, 32)
    rng = np.random.default_rng(seed)
    st = DOMAINS["a"]
    attrs = sample_identities(rng, p_n, st)
    background = render_background(sample_scenes(rng, 1, st), h, w)[0]
    aspect = w / h
    feet, scale, direction, half, x_left = _trajectories(rng, attrs["width"], t_n, aspect)
    t = np.arange(1, t_n + 1, dtype=np.float64)
    inside = (x_left - half[:, None] < aspect) & (x_left + half[:, None] > 0)
    pi, ti = np.nonzero(inside)  # instances: one person in one frame
    cx = x_left[pi, ti]
    top = feet[pi] - scale[pi] * attrs["height"][pi] * 0.92
    n = len(pi)
    img = {
        "cx": (cx - aspect / 2).astype(np.float32),
        "top": top.astype(np.float32),
        "scale": scale[pi].astype(np.float32),
        "mirror": direction[pi].astype(np.float32),
        "back": np.zeros(n, bool),
        "stride": (0.5 * np.abs(np.sin(t[ti] * 0.9 + pi))).astype(np.float32),
        "occ": np.zeros(n, np.int64),
        "occ_size": np.zeros(n, np.float32),
        "occ_col": np.zeros((n, 3), np.float32),
    }
    person, mask = _render_instances(attrs, img, pi, background)
    canvas, vis, keep = _composite(background, person, mask, feet[pi], ti, t_n)
    left = (cx - half[pi]) * h
    box_h = scale[pi] * attrs["height"][pi] * 0.92 * h
    ltwh = np.stack([left, top * h, 2 * half[pi] * h, box_h], axis=1)
    order = np.lexsort((pi, ti))
    order = order[keep[order]]
    frames8 = np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8)
    return WalkerSequence(
        frames=frames8, frame=ti[order].astype(np.int64) + 1, pid=pi[order].astype(np.int64) + 1,
        ltwh=ltwh[order], visibility=vis[order], fps=fps,
    )  # fmt: skip


def _trajectories(
    rng: np.random.Generator, widths: np.ndarray, t_n: int, aspect: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Straight walks across the frame, in image-height units.

    Returns each person's feet row, scale, direction (+-1) and half width ``(P,)``, and
    the horizontal position ``x_left`` of each person in each frame ``(P, T)``.
    """
    p_n = len(widths)
    # the feet row (depth) sets the scale
    feet = rng.uniform(0.8, 0.98, p_n)
    scale = 0.45 + (feet - 0.8) * 1.5  # nearer (lower) is larger
    direction = np.where(np.arange(p_n) % 2 == 0, 1.0, -1.0)  # alternate: people cross
    half = _HALF_WIDTH * scale * widths
    span = aspect + 2 * half  # from just outside one edge to just outside the other
    duration = rng.uniform(0.6, 1.0, p_n) * t_n
    speed = span / duration
    start = rng.uniform(-0.1, 0.5, p_n) * t_n
    t = np.arange(1, t_n + 1, dtype=np.float64)
    progress = (t[None, :] - start[:, None]) * speed[:, None]  # (P, T)
    x_left = np.where(
        direction[:, None] > 0, -half[:, None] + progress, aspect + half[:, None] - progress
    )
    return feet, scale, direction, half, x_left


def _render_instances(
    attrs: dict[str, np.ndarray], img: dict[str, np.ndarray], pi: np.ndarray, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each instance (person ``pi`` with geometry ``img``) drawn alone over the
    background ``(H, W, 3)``: colours ``(n, H, W, 3)`` and person masks ``(n, H, W)``."""
    n = len(pi)
    h, w = background.shape[:2]
    person = np.empty((n, h, w, 3), np.float32)
    mask = np.empty((n, h, w), bool)
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, min(lo + _CHUNK, n))
        sub_attrs = {k: v[pi[sl]] for k, v in attrs.items()}
        sub_img = {k: v[sl] for k, v in img.items()}
        bg = np.broadcast_to(background, (sl.stop - sl.start, h, w, 3))
        colour, part = render_people(sub_attrs, sub_img, np.ascontiguousarray(bg))
        person[sl], mask[sl] = colour, part != BACKGROUND
    return person, mask


def _composite(
    background: np.ndarray,
    person: np.ndarray,
    mask: np.ndarray,
    depth: np.ndarray,
    ti: np.ndarray,
    t_n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste the instances into their frames ``ti``, far (small ``depth``) to near.

    Returns the frames ``(T, H, W, 3)``, each instance's visible fraction ``(n,)`` and
    whether it has any pixel at all ``(n,)``.
    """
    n = len(ti)
    h, w = background.shape[:2]
    # composite far to near: rank of each instance within its frame by depth
    order = np.lexsort((depth, ti))
    rank = np.empty(n, np.int64)
    firsts = np.searchsorted(ti[order], ti[order], side="left")
    rank[order] = np.arange(n) - firsts
    canvas = np.broadcast_to(background, (t_n, h, w, 3)).copy()
    owner = np.full((t_n, h, w), -1, np.int64)
    for r in range(int(rank.max()) + 1 if n else 0):  # a few depth layers, all frames at once
        sel = np.flatnonzero(rank == r)
        f = ti[sel]
        canvas[f] = np.where(mask[sel][..., None], person[sel], canvas[f])
        owner[f] = np.where(mask[sel], sel[:, None, None], owner[f])
    own_px = mask.reshape(n, -1).sum(axis=1)
    seen_px = np.bincount(owner[owner >= 0], minlength=n)
    vis = seen_px / np.maximum(own_px, 1)
    return canvas, vis, own_px > 0


def write_walkers_sequence(
    root: str | os.PathLike[str],
    *,
    num_frames: int = 40,
    num_people: int = 6,
    height: int = 120,
    width: int = 200,
    seed: int = 0,
    fps: int = 10,
    det_drop: float = 0.1,
    det_jitter: float = 0.05,
    name: str | None = None,
) -> Path:
    """Render a walkers sequence into ``root`` as a MOTChallenge sequence folder.

    Args:
        root: the sequence folder (created; files in it are overwritten).
        num_frames, num_people, height, width, seed, fps: see :func:`render_walkers`.
        det_drop: share of ground-truth boxes left out of ``det/det.txt``.
        det_jitter: detection box jitter, as a share of the box size.
        name: sequence name in ``seqinfo.ini`` (default: the folder name).

    Returns:
        ``root``.
    """
    seq = render_walkers(num_frames, num_people, height=height, width=width, seed=seed, fps=fps)
    out = Path(root).expanduser()
    (out / "img1").mkdir(parents=True, exist_ok=True)
    (out / "gt").mkdir(exist_ok=True)
    (out / "det").mkdir(exist_ok=True)
    for i, frame in enumerate(seq.frames, start=1):
        Image.fromarray(frame).save(out / "img1" / f"{i:06d}.jpg", quality=95)
    (out / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name or out.name}\nimDir=img1\nframeRate={fps}\n"
        f"seqLength={num_frames}\nimWidth={width}\nimHeight={height}\nimExt=.jpg\n",
        encoding="utf-8",
    )
    box = np.round(seq.ltwh, 1)
    gt = [
        f"{f},{p},{b[0] + 1:.1f},{b[1] + 1:.1f},{b[2]:.1f},{b[3]:.1f},1,1,{v:.3f}"
        for f, p, b, v in zip(seq.frame.tolist(), seq.pid.tolist(), box.tolist(), seq.visibility)
    ]
    (out / "gt" / "gt.txt").write_text("\n".join(gt) + "\n", encoding="utf-8")
    rng = np.random.default_rng(seed + 1)
    kept = rng.random(len(box)) >= det_drop
    jitter = rng.normal(0, det_jitter, (len(box), 4)) * box[:, [2, 3, 2, 3]]
    det_box = box + jitter
    conf = rng.uniform(0.5, 1.0, len(box))
    det = [
        f"{f},-1,{b[0] + 1:.1f},{b[1] + 1:.1f},{b[2]:.1f},{b[3]:.1f},{c:.3f},-1,-1,-1"
        for f, b, c in zip(seq.frame[kept].tolist(), det_box[kept].tolist(), conf[kept].tolist())
    ]
    (out / "det" / "det.txt").write_text("\n".join(det) + "\n", encoding="utf-8")
    return out
