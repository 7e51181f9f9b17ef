"""Helpers for the data tests: small dataset trees with generated images."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(
    path: Path, seed: int = 0, size: tuple[int, int] = (16, 8), mode: str = "RGB"
) -> Path:
    """Write a small random image (size = (H, W)) in the given PIL mode."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    if mode == "L":
        img = img.convert("L")
    elif mode == "RGBA":
        img = img.convert("RGBA")
    elif mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def make_tree(root: Path, layout: dict[str, Iterable[str]]) -> Path:
    """``{"bounding_box_train": ["0002_c1s1_000001_00.jpg", ...], ...}`` -> files under root."""
    for i, (folder, names) in enumerate(layout.items()):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for j, name in enumerate(names):
            write_image(root / folder / name, seed=100 * i + j)
    return root


MARKET = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000301_01.jpg",
        "0007_c3s3_077419_03.jpg",
        "0007_c6s3_085567_02.jpg",
        "0010_c1s1_002301_01.jpg",
    ],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c2s1_000100_00.jpg"],
    "bounding_box_test": [
        "0001_c2s1_000301_01.jpg",
        "0003_c5s1_000101_02.jpg",
        "0000_c1s1_000001_00.jpg",
        "-1_c3s1_000002_00.jpg",
        "-1_c4s1_000003_00.jpg",
    ],
}
