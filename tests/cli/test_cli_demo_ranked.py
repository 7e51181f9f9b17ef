"""The demo's ``ranked.png`` (``experiments/ex.py``): 8 target queries and their top 8 under
the a -> b ECN + parts model, drawn through ``inference.rank_gallery`` and
``viz.plot_ranked_results``; ``part_maps.png`` through ``inference.predict_part_maps``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semparts_reid import experiments as ex
from semparts_reid import viz


class _Domain:
    def __init__(self, name: str) -> None:
        self.name = name

    def summary_table(self) -> str:
        return self.name


def test_ranked_figure_uses_the_a_to_b_parts_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semparts_reid.data.datasets as datasets

    monkeypatch.setattr(datasets, "build_dataset", lambda spec: _Domain(spec.split("?")[0]))
    row = {"R1": 0.5, "R5": 0.6, "R10": 0.7, "mAP": 0.4, "cmc": [0.5, 1.0]}

    def run_direction(settings: Any, source: Any, target: Any, *args: Any) -> Any:
        return {"ECN + semantic parts": row}, f"model adapted to {target.name}"

    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr(ex.demo, "run_direction", run_direction)
    monkeypatch.setattr(ex.figures, "write_figures", lambda *a: seen.append(a))
    ex.run_demo(tmp_path, directions="both", device="cpu", workers=1)
    _, _, part_model, ranked, mode, device = seen[0]
    label, (model, target) = ranked
    assert (label, model, target.name) == ("a -> b", "model adapted to synthetic:b",
                                           "synthetic:b")  # fmt: skip
    assert part_model[0] == "model adapted to synthetic:a"  # part_maps.png: last direction
    assert (mode, device) == (ex.DemoSettings().parts_eval_mode, "cpu")


def test_write_figures_draws_ranked_png(
    tiny_pair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("matplotlib")
    from semparts_reid.models.factory import build_model

    calls: list[tuple[Any, ...]] = []
    real = viz.plot_ranked_results
    monkeypatch.setattr(viz, "plot_ranked_results",
                        lambda *a, **k: (calls.append((a, k)), real(*a, **k))[1])
    _, target = tiny_pair
    model = build_model("semparts_resnet18", input_size=(64, 32))
    results = {"a -> b": {"ECN + semantic parts": {"cmc": [0.5, 1.0]}}}
    ex.figures.write_figures(tmp_path, results, (model, target), ("a -> b", (model, target)),
                        "concat", "cpu")
    for name in ("cmc.png", "part_maps.png", "ranked.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    (args, kwargs), = calls
    ranks, matches = args[2], args[3]
    assert ranks.shape == matches.shape == (8, 8) and args[5] == 8
    assert len(args[0]) == 8 and len(args[1]) == len(target.gallery)
    assert kwargs["junk"].shape == (8, 8)
    assert "ranked.png (a -> b, ECN + semantic parts, concat feature)" in capsys.readouterr().out


def test_part_map_examples_come_from_predict_part_maps(tiny_pair: Any) -> None:
    from semparts_reid.inference import predict_part_maps
    from semparts_reid.models.factory import build_model

    _, target = tiny_pair
    model = build_model("semparts_resnet18", input_size=(64, 32))
    images, probs = ex.figures.part_map_examples(model, target.query, "cpu", n=3)
    assert images.shape[0] == probs.shape[0] == 3 and images.shape[-1] == 3
    assert probs.shape[1:] == (4, *images.shape[1:3])  # at image size
    assert 0.0 <= images.min() and images.max() <= 1.0
    picks = np.linspace(0, len(target.query) - 1, 3).astype(int)
    expected = predict_part_maps(model, [target.query[i].path for i in picks],
                                 size=images.shape[1:3], device="cpu")
    np.testing.assert_allclose(probs, expected, atol=1e-5)
