"""Tiny hand-written MOTChallenge sequences for the mot: tests.

Frame ``f`` of a sequence is a PNG whose pixel ``(y, x)`` is ``(f, x, y)``, so a crop
shows which frame and where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def frame_image(f: int, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 with pixel (y, x) = (f, x, y)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([np.full_like(x, f), x, y], axis=-1).astype(np.uint8)


def write_sequence(
    root: Path,
    gt_rows: Sequence[str],
    *,
    length: int,
    width: int = 64,
    height: int = 48,
    det_rows: Sequence[str] | None = None,
    name: str | None = None,
) -> Path:
    """A sequence folder with PNG frames and the given gt/det lines."""
    (root / "img1").mkdir(parents=True)
    for f in range(1, length + 1):
        Image.fromarray(frame_image(f, width, height)).save(root / "img1" / f"{f:06d}.png")
    (root / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name or root.name}\nimDir=img1\nframeRate=10\nseqLength={length}\n"
        f"imWidth={width}\nimHeight={height}\nimExt=.png\n"
    )
    (root / "gt").mkdir()
    (root / "gt" / "gt.txt").write_text("\n".join(gt_rows) + "\n")
    if det_rows is not None:
        (root / "det").mkdir()
        (root / "det" / "det.txt").write_text("\n".join(det_rows) + "\n")
    return root


def walking_gt(length: int, ids: Sequence[int], *, mot15: bool = True) -> list[str]:
    """Every id in every frame, side by side, boxes 8x16 (MOT15 layout or MOT17's)."""
    rows = []
    for f in range(1, length + 1):
        for k, i in enumerate(ids):
            tail = "1,-1,-1,-1" if mot15 else "1,1,1.0"
            rows.append(f"{f},{i},{2 + 10 * k},{3},8,16,{tail}")
    return rows
