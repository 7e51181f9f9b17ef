"""Figures: CMC curves and part-map grids (the demo without matplotlib: tests/cli)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semparts_reid import viz


def test_cmc_and_part_map_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cmc = np.linspace(0.3, 1.0, 50)
    out = viz.plot_cmc_curves(
        {"ECN": cmc, "ECN + parts": np.minimum(cmc + 0.05, 1)}, tmp_path / "cmc.png"
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (3, 40, 20, 3), dtype=np.uint8)
    probs = rng.random((3, 4, 40, 20))
    probs /= probs.sum(1, keepdims=True)
    out = viz.plot_part_maps(images, probs, tmp_path / "parts.png")
    assert out.stat().st_size > 1000
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no leftovers


def test_bad_shapes_name_the_argument(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="images"):
        viz.plot_part_maps(np.zeros((2, 8, 4)), np.zeros((2, 4, 8, 4)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="part_probs"):
        viz.plot_part_maps(np.zeros((2, 8, 4, 3)), np.zeros((2, 3, 8, 4)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="curves"):
        viz.plot_cmc_curves({}, tmp_path / "x.png")
