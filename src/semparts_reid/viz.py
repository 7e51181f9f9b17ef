"""Figures of the demo: CMC curves and predicted part maps (needs the ``plot`` extra).

Both functions take plain arrays, so they work on results from any pipeline. They raise
:class:`PlotUnavailable` when matplotlib is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_open

PART_COLOURS = np.array(
    [[0.15, 0.15, 0.15], [0.95, 0.80, 0.20], [0.85, 0.20, 0.20], [0.20, 0.40, 0.90]]
)  # background, head, upper, lower


class PlotUnavailable(RuntimeError):
    """matplotlib is missing: ``pip install 'semparts-reid[plot]'``."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PlotUnavailable("plots need matplotlib: pip install 'semparts-reid[plot]'") from exc
    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    return Path(path)


def plot_cmc_curves(
    curves: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    max_rank: int = 20,
    title: str = "CMC",
) -> Path:
    """Plot CMC curves (label -> cmc array, rank 1 first) to a PNG file."""
    if not curves:
        raise ValueError("curves: expected at least one (label -> CMC array) entry")
    plt = _pyplot()
    many = len(curves) > 6  # the legend goes beside the axes, where it hides no curve
    fig, ax = plt.subplots(figsize=(10, 4.5) if many else (6, 4))
    colours = plt.get_cmap("tab20" if len(curves) > 10 else "tab10")
    for i, (label, cmc) in enumerate(curves.items()):
        arr = np.asarray(cmc, dtype=float)[:max_rank]
        ax.plot(np.arange(1, len(arr) + 1), 100 * arr, marker=".", label=label,
                color=colours(i % colours.N))
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if many:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
    else:
        ax.legend(fontsize=7, loc="lower right")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_part_maps(
    images: np.ndarray,
    part_probs: np.ndarray,
    path: str | os.PathLike[str],
    *,
    titles: Sequence[str] = ("image", "head", "upper", "lower", "background", "argmax"),
) -> Path:
    """Grid of images with their head / upper / lower / background maps and the argmax.

    Args:
        images: (N, H, W, 3) float in [0, 1] or uint8.
        part_probs: (N, 4, H, W) part probabilities, channel 0 background (the library's
            part convention), already resized to the image size.
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images: expected (N, H, W, 3), got shape {images.shape}")
    n, h, w, _ = images.shape
    if part_probs.shape != (n, 4, h, w):
        raise ValueError(f"part_probs: expected {(n, 4, h, w)}, got shape {part_probs.shape}")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    plt = _pyplot()
    fig, axes = plt.subplots(n, 6, figsize=(6 * 1.1, n * 1.9), squeeze=False)
    order = (1, 2, 3, 0)  # head, upper, lower, background
    argmax = PART_COLOURS[part_probs.argmax(1)]  # (N, H, W, 3)
    for i in range(n):
        panels = [images[i], *[part_probs[i, c] for c in order], argmax[i]]
        for j, panel in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(panel, cmap=None if panel.ndim == 3 else "viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- ranked results

MATCH_COLOUR, MISMATCH_COLOUR, JUNK_COLOUR = "#1a9850", "#d73027", "#9e9e9e"
_TICK, _CROSS = "\u2713", "\u2717"
_CELL_W = 0.9  # inches per image column
_LABEL_H = 0.24  # inches of text band above and below each image
_GAP_W, _COL_GAP, _ROW_GAP = 0.45, 0.08, 0.14  # query|gallery gap, column gap, row gap


def _index_check(name: str, arr: Any, shape: tuple[int, int] | None) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2 or (shape is not None and a.shape != shape) or a.shape[1] < 1:
        want = f"{shape}" if shape is not None else "(Q, R) with R >= 1"
        raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    return a


def _load_image(item: Any, name: str) -> np.ndarray:
    """A path, PIL image or ``(h, w, 3)`` array -> ``(h, w, 3)`` float in ``[0, 1]``."""
    if isinstance(item, (str, os.PathLike)):
        from PIL import Image

        with Image.open(item) as img:
            item = np.asarray(img.convert("RGB"))
    elif hasattr(item, "convert") and hasattr(item, "size"):  # a PIL image
        item = np.asarray(item.convert("RGB"))
    arr = np.asarray(item)
    if arr.ndim != 3 or arr.shape[-1] != 3 or min(arr.shape[:2]) < 1:
        raise ValueError(f"{name}: expected an (h, w, 3) image, a path or a PIL image, "
                         f"got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def _overlay(part_map: Any, name: str) -> np.ndarray:
    """``(h, w)`` label map or ``(C, h, w)`` probabilities -> ``(h, w, 4)`` RGBA overlay.

    Probabilities are reduced to their argmax, so a soft map reads as clearly as a label
    map. Body parts get their colour at 0.5 opacity; background and ignore labels
    (``255``) stay transparent.
    """
    m = np.asarray(part_map)
    n = len(PART_COLOURS)
    if m.ndim == 3 and 2 <= m.shape[0] <= n and np.issubdtype(m.dtype, np.number):
        m = m.argmax(0)
    elif m.ndim != 2:
        raise ValueError(f"{name}: expected an (h, w) label map or (K+1, h, w) probabilities "
                         f"with 2 <= K+1 <= {n}, got shape {m.shape}")
    elif not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"{name}: a 2-D part map must hold integer labels, got {m.dtype}")
    body = (m >= 1) & (m < n)
    rgb = PART_COLOURS[np.where(body, m, 0)]
    return np.concatenate([rgb, 0.5 * body[..., None]], axis=-1)


def _check_part_maps(part_maps: Any, num_q: int, num_g: int) -> tuple[Sequence[Any], ...]:
    if not isinstance(part_maps, (tuple, list)) or len(part_maps) != 2:
        raise ValueError("part_maps: expected a pair (query_maps, gallery_maps), got "
                         f"{type(part_maps).__name__}")
    for name, maps, n in (("part_maps[0] (query)", part_maps[0], num_q),
                          ("part_maps[1] (gallery)", part_maps[1], num_g)):
        if len(maps) != n:
            raise ValueError(f"{name}: expected one map (or None) per image, {n}, "
                             f"got {len(maps)}")
    return part_maps[0], part_maps[1]


def _draw_image(ax: Any, image: np.ndarray, overlay: np.ndarray | None, frame: str | None,
                *, grey: bool = False, width: float = 3.0) -> None:
    h, w = image.shape[:2]
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    if grey:  # junk: washed out towards light grey
        image = 0.3 * image + 0.7 * 0.85
    ax.imshow(image, aspect="auto", extent=extent, interpolation="bilinear")
    if overlay is not None:
        if grey:
            overlay = overlay * np.array([1, 1, 1, 0.3])
        ax.imshow(overlay, aspect="auto", extent=extent, interpolation="nearest")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_edgecolor(frame)
            spine.set_linewidth(width)
            spine.set_linestyle("--" if grey else "-")


def _checked_ranked_inputs(
    num_q: int,
    num_g: int,
    ranks: np.ndarray,
    matches: np.ndarray,
    junk: np.ndarray | None,
    top_k: int,
    titles: Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`plot_ranked_results`'s ``ranks``, ``matches`` and ``junk`` (all-False
    where ``None``) as arrays, checked with its ``top_k`` and ``titles``."""
    ranks_a = _index_check("ranks", ranks, None)
    if ranks_a.shape[0] != num_q:
        raise ValueError(f"ranks: expected one row per query image ({num_q}), "
                         f"got shape {ranks_a.shape}")
    if not np.issubdtype(ranks_a.dtype, np.integer):
        raise ValueError(f"ranks: expected integer gallery indices, got dtype {ranks_a.dtype}")
    if ranks_a.size and (ranks_a.min() < 0 or ranks_a.max() >= num_g):
        raise ValueError(f"ranks: gallery indices must lie in [0, {num_g}) (len(gallery_images)),"
                         f" got [{ranks_a.min()}, {ranks_a.max()}]")
    match_a = _index_check("matches", matches, ranks_a.shape).astype(bool)
    junk_a = (np.zeros_like(match_a) if junk is None
              else _index_check("junk", junk, ranks_a.shape).astype(bool))
    if (match_a & junk_a).any():
        i, j = np.argwhere(match_a & junk_a)[0]
        raise ValueError(f"matches and junk are both True at [{i}, {j}]: an item is one or "
                         "the other")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k: expected an int >= 1, got {top_k!r}")
    if titles is not None and len(titles) != num_q:
        raise ValueError(f"titles: expected {num_q} strings (one per query), got {len(titles)}")
    return ranks_a, match_a, junk_a


def _draw_gallery_row(
    axes_at: Callable[[float], Any],
    gallery_images: Sequence[Any] | np.ndarray,
    g_maps: Sequence[Any],
    row: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Draw one query's ranked gallery images, ``row = (ranks, matches, junk)`` of the
    shown items; ``axes_at(x)`` makes the axes at ``x`` inches on the query's row."""
    ranks_row, match_row, junk_row = row
    valid_rank = 0
    for j in range(len(ranks_row)):
        g = int(ranks_row[j])
        ax = axes_at(_CELL_W + _GAP_W + j * (_CELL_W + _COL_GAP))
        img = _load_image(gallery_images[g], f"gallery_images[{g}]")
        ov = None if g_maps[g] is None else _overlay(g_maps[g], f"part_maps[1][{g}]")
        if junk_row[j]:
            _draw_image(ax, img, ov, JUNK_COLOUR, grey=True)
            ax.set_title("junk", fontsize=8, pad=3, color=JUNK_COLOUR)
            continue
        valid_rank += 1
        ok = bool(match_row[j])
        colour = MATCH_COLOUR if ok else MISMATCH_COLOUR
        _draw_image(ax, img, ov, colour)
        ax.set_title(f"{valid_rank} {_TICK if ok else _CROSS}", fontsize=8, pad=3,
                     color=colour)


def plot_ranked_results(
    query_images: Sequence[Any] | np.ndarray,
    gallery_images: Sequence[Any] | np.ndarray,
    ranks: np.ndarray,
    matches: np.ndarray,
    out_path: str | os.PathLike[str],
    top_k: int = 10,
    *,
    part_maps: tuple[Sequence[Any], Sequence[Any]] | None = None,
    junk: np.ndarray | None = None,
    titles: Sequence[str] | None = None,
) -> Path:
    """One row per query: the query image, then its ``top_k`` ranked gallery images.

    Frames are green for true matches and red for false ones; junk items (same identity
    and same camera, or listed junk) are washed out grey with a dashed grey frame. Above
    each gallery image is its rank among the non-junk items (the position the CMC
    counts, with a tick or cross) or ``junk``; below the query is its title (e.g. its
    identity and camera). Only the shown gallery images are read.

    Args:
        query_images: ``Q`` images: paths, PIL images, ``(h, w, 3)`` uint8 or float
            ``[0, 1]`` arrays, or one ``(Q, H, W, 3)`` array.
        gallery_images: ``G`` images, as above (only those in ``ranks[:, :top_k]`` are
            loaded, so a list of every gallery path is fine).
        ranks: ``(Q, R)`` int gallery indices, best first (``R >= 1``); the first
            ``min(top_k, R)`` are drawn.
        matches: ``(Q, R)`` bool, ``True`` where ``ranks[i, j]`` is a true match.
        out_path: the PNG file, written atomically.
        top_k: gallery images per row.
        part_maps: optional ``(query_maps, gallery_maps)``, one entry per image (``Q``
            and ``G``, ``None`` where there is none): an ``(h, w)`` label map (0
            background, 1 head, 2 upper, 3 lower, 255 ignore) or ``(K+1, h, w)`` part
            probabilities (drawn as their argmax), at any resolution (stretched onto
            the image): a semi-transparent overlay of the body parts.
        junk: optional ``(Q, R)`` bool, ``True`` for junk items (not ranked).
        titles: optional ``Q`` strings below the query images (default ``query i``).

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: a shape or length that does not match, a gallery index out of range,
            an item both a match and junk, ``top_k < 1``.
        PlotUnavailable: matplotlib is not installed.
    """
    num_q, num_g = len(query_images), len(gallery_images)
    ranks_a, match_a, junk_a = _checked_ranked_inputs(
        num_q, num_g, ranks, matches, junk, top_k, titles
    )
    q_maps, g_maps = (_check_part_maps(part_maps, num_q, num_g) if part_maps is not None
                      else ([None] * num_q, [None] * num_g))
    k = min(int(top_k), ranks_a.shape[1])
    queries = [_load_image(query_images[i], f"query_images[{i}]") for i in range(num_q)]
    aspect = float(np.clip(np.median([q.shape[0] / q.shape[1] for q in queries]), 0.5, 3.0))
    img_h = _CELL_W * aspect
    row_h = _LABEL_H + img_h + _LABEL_H + _ROW_GAP
    width = _CELL_W + _GAP_W + k * (_CELL_W + _COL_GAP)
    head = 0.5 if part_maps is None else 0.7
    height = head + num_q * row_h
    plt = _pyplot()
    fig = plt.figure(figsize=(width, height))

    def axes_at(x: float, row: int) -> Any:  # x in inches; rows from the top
        y = height - head - row * row_h - _LABEL_H - img_h
        return fig.add_axes((x / width, y / height, _CELL_W / width, img_h / height))

    try:
        legend = ("frame: green = same identity, red = different identity, "
                  "grey dashed = junk (same identity, same camera)")
        if part_maps is not None:
            legend += "\noverlay: head yellow, upper body red, lower body blue"
        fig.text(0.5 / width, 1 - 0.12 / height, legend, ha="left", va="top", fontsize=8)
        for i in range(num_q):
            ax = axes_at(0.0, i)
            ov = None if q_maps[i] is None else _overlay(q_maps[i], f"part_maps[0][{i}]")
            _draw_image(ax, queries[i], ov, "#333333", width=1.5)
            ax.set_title("query", fontsize=8, pad=3)
            ax.set_xlabel(titles[i] if titles is not None else f"query {i}", fontsize=7,
                          labelpad=3)
            row = (ranks_a[i, :k], match_a[i, :k], junk_a[i, :k])
            _draw_gallery_row(partial(axes_at, row=i), gallery_images, g_maps, row)
        return _save(fig, out_path)
    finally:
        plt.close(fig)
