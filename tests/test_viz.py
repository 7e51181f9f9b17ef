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


# ---------------------------------------------------------------- ranked results


def _ranked_case(q: int = 3, g: int = 20, k: int = 6) -> dict:
    rng = np.random.default_rng(1)
    return {
        "query_images": rng.integers(0, 255, (q, 64, 32, 3), dtype=np.uint8),
        "gallery_images": [rng.random((64, 32, 3)) for _ in range(g)],  # floats in [0, 1]
        "ranks": np.stack([rng.permutation(g)[:k] for _ in range(q)]),
        "matches": np.array([[True, False, False, False, True, False]] * q),
    }


def _capture(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record the figure each plot function saves, with the window extents of its texts
    and images (drawn before the figure is closed), and still save it."""
    figs: list = []
    real = viz._save

    def save(fig, path):  # type: ignore[no-untyped-def]
        fig.canvas.draw()  # lay out the text, as saving does
        renderer = fig.canvas.get_renderer()
        boxes = [t.get_window_extent(renderer) for t in fig.texts]
        for ax in fig.axes:
            boxes.append(ax.title.get_window_extent(renderer))
            if ax.get_xlabel():
                boxes.append(ax.xaxis.label.get_window_extent(renderer))
            boxes.append(ax.get_window_extent(renderer))  # the image itself
        fig.boxes = boxes
        figs.append(fig)
        return real(fig, path)

    monkeypatch.setattr(viz, "_save", save)
    return figs


def _spine_colour(ax) -> tuple:  # type: ignore[no-untyped-def]
    import matplotlib.colors as mcolors

    return mcolors.to_hex(ax.spines["top"].get_edgecolor())


def test_ranked_results_frames_labels_and_junk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    figs = _capture(monkeypatch)
    case = _ranked_case()
    junk = np.zeros_like(case["matches"])
    junk[:, 1] = True  # the second item of every row is junk (not ranked)
    out = viz.plot_ranked_results(**case, out_path=tmp_path / "r.png", top_k=5, junk=junk,
                                  titles=["id 1 · cam 0", "id 2 · cam 1", "id 3 · cam 2"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))
    axes = figs[0].axes
    assert len(axes) == 3 * (1 + 5)  # query + top 5 per row (top_k < R = 6)
    row = axes[:6]
    assert row[0].get_title() == "query" and row[0].get_xlabel() == "id 1 · cam 0"
    # ranks count only non-junk items: match, junk, miss, miss, match
    assert [a.get_title() for a in row[1:]] == ["1 \u2713", "junk", "2 \u2717", "3 \u2717",
                                                "4 \u2713"]
    assert [_spine_colour(a) for a in row[1:]] == [
        viz.MATCH_COLOUR, viz.JUNK_COLOUR, viz.MISMATCH_COLOUR, viz.MISMATCH_COLOUR,
        viz.MATCH_COLOUR,
    ]
    assert row[2].get_images()[0].get_array().mean() > 0.5  # junk washed out towards grey


def test_ranked_results_labels_do_not_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    figs = _capture(monkeypatch)
    case = _ranked_case(q=4, k=6)
    case["matches"] = np.zeros((4, 6), bool)
    long = [f"id {1000 + i} · cam {10 + i}" for i in range(4)]
    viz.plot_ranked_results(**case, out_path=tmp_path / "r.png", top_k=10, titles=long,
                            part_maps=([None] * 4, [None] * 20))
    boxes = figs[0].boxes
    assert len(boxes) > 40
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a.width and b.width:
                assert not a.overlaps(b), (a, b)


def test_ranked_results_part_overlays_and_lazy_gallery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    figs = _capture(monkeypatch)
    case = _ranked_case(q=2, g=5, k=2)
    case["ranks"] = np.array([[0, 1], [1, 0]])
    case["matches"] = np.zeros((2, 2), bool)
    img = tmp_path / "g.png"
    from PIL import Image

    Image.fromarray(np.full((64, 32, 3), 200, np.uint8)).save(img)
    # only gallery items 0 and 1 are shown: the others are never read
    case["gallery_images"] = [str(img), img, "missing-1.jpg", "missing-2.jpg", "missing-3.jpg"]
    labels = np.zeros((16, 8), np.int64)
    labels[:4], labels[4:10], labels[10:] = 1, 2, 3
    probs = np.zeros((4, 8, 4))
    probs[2] = 1.0  # everywhere "upper"
    viz.plot_ranked_results(**case, out_path=tmp_path / "r.png",
                            part_maps=([labels, None], [probs, None, None, None, None]))
    axes = figs[0].axes
    assert len(axes[0].get_images()) == 2  # query 0: image + overlay
    assert len(axes[3].get_images()) == 1  # query 1: no map
    overlay = axes[1].get_images()[1].get_array()  # gallery 0 (probabilities)
    np.testing.assert_allclose(overlay[..., :3], np.broadcast_to(viz.PART_COLOURS[2], (8, 4, 3)))
    assert np.all(overlay[..., 3] == 0.5)
    q_overlay = axes[0].get_images()[1].get_array()
    assert q_overlay[0, 0, 3] == 0.5 and np.allclose(q_overlay[0, 0, :3], viz.PART_COLOURS[1])
    background = np.zeros((16, 8), np.int64)
    background[0, 0] = 255  # ignore: transparent like the background
    assert not viz._overlay(background, "m")[..., 3].any()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ranks": np.zeros((2, 6), int)}, r"ranks: expected one row per query image \(3\)"),
        ({"ranks": np.full((3, 6), 20)}, r"ranks: gallery indices must lie in \[0, 20\)"),
        ({"ranks": np.zeros((3, 6))}, "ranks: expected integer gallery indices"),
        ({"matches": np.zeros((3, 5), bool)}, r"matches: expected shape \(3, 6\)"),
        ({"junk": np.zeros((3, 2), bool)}, r"junk: expected shape \(3, 6\)"),
        ({"junk": np.ones((3, 6), bool)}, r"matches and junk are both True at \[0, 0\]"),
        ({"top_k": 0}, "top_k: expected an int >= 1"),
        ({"titles": ["a"]}, "titles: expected 3 strings"),
        ({"part_maps": ([None] * 3,)}, "part_maps: expected a pair"),
        ({"part_maps": ([None] * 3, [None] * 19)}, r"part_maps\[1\] \(gallery\): expected"),
        ({"part_maps": ([np.zeros((7, 4, 4))] * 3, [None] * 20)},
         r"part_maps\[0\]\[0\]: expected an \(h, w\) label map"),
        ({"part_maps": ([np.zeros((4, 4))] * 3, [None] * 20)},
         r"part_maps\[0\]\[0\]: a 2-D part map must hold integer labels"),
        ({"query_images": np.zeros((3, 8, 4), np.uint8)}, r"query_images\[0\]: expected"),
    ],
)  # fmt: skip
def test_ranked_results_bad_inputs_name_the_argument(
    tmp_path: Path, change: dict, message: str
) -> None:
    pytest.importorskip("matplotlib")
    case = {**_ranked_case(), **change}
    with pytest.raises(ValueError, match=message):
        viz.plot_ranked_results(**case, out_path=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_many_cmc_curves_get_a_legend_beside_the_axes(tmp_path: Path) -> None:
    """Ten curves (the demo's rows): distinct colours, a wider figure, the legend outside."""
    pytest.importorskip("matplotlib")
    from PIL import Image

    curves = {f"method {i}": [0.1 * (i % 5) + 0.05 * r for r in range(20)] for i in range(10)}
    few = viz.plot_cmc_curves(dict(list(curves.items())[:3]), tmp_path / "few.png")
    many = viz.plot_cmc_curves(curves, tmp_path / "many.png")
    with Image.open(few) as a, Image.open(many) as b:
        assert b.size[0] > 1.5 * a.size[0]  # room for the legend on the right
