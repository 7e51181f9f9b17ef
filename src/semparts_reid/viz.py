"""Figures of the demo: CMC curves and predicted part maps (needs the ``plot`` extra).

Both functions take plain arrays, so they work on results from any pipeline. They raise
:class:`PlotUnavailable` when matplotlib is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
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
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, cmc in curves.items():
        arr = np.asarray(cmc, dtype=float)[:max_rank]
        ax.plot(np.arange(1, len(arr) + 1), 100 * arr, marker=".", label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
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
