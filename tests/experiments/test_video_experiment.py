"""The real-camera experiment: paired differences, re-association rows, one seed's runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semparts_reid.data import build_dataset
from semparts_reid.data.synthetic.walkers import write_walkers_sequence
from semparts_reid.experiments import DemoSettings
from semparts_reid.experiments.video import (
    CAMERA_METHODS,
    PairedDifference,
    baseline_rows,
    camera_method,
    paired_difference,
    reassociation_rows,
    run_camera_seed,
)


@pytest.fixture(scope="module")
def walkers(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("walkers")
    seq = write_walkers_sequence(root / "seq", num_frames=30, num_people=4, seed=1)
    return build_dataset(f"mot:{seq}?source=gt&gap=5&stride=2&cache={root / 'cache'}")


def test_paired_difference_is_per_seed() -> None:
    d = paired_difference({0: 0.5, 1: 0.4, 2: 0.3, 3: 0.9}, {0: 0.2, 1: 0.45, 2: 0.1})
    assert d == PairedDifference(median=20.0, low=-5.0, high=30.0, positive=2, count=3)
    assert str(d) == "+20.0 (-5.0 … +30.0), 2 of 3 positive"
    with pytest.raises(ValueError, match="no seed"):
        paired_difference({0: 1.0}, {1: 1.0})


def test_camera_method_adds_video_constraints_and_overrides() -> None:
    m = camera_method("x", [("part_head_weight", 0.5)])
    assert m.objective == "cluster" and m.parts
    assert dict(m.overrides) == {"video_constraints": True, "part_head_weight": 0.5}
    assert "video_constraints" not in dict(camera_method("y", [], video=False).overrides)
    names = [m.name for m in CAMERA_METHODS]
    assert len(set(names)) == len(names)


def test_baseline_rows_score_any_embedder(walkers) -> None:  # type: ignore[no-untyped-def]
    # mean colour of each crop: a weak but honest embedder
    rows = baseline_rows(walkers, {"mean colour": lambda crops: np.stack(
        [c.reshape(-1, 3).mean(0) for c in crops])})
    row = rows["mean colour"]["global"]
    assert 0 < row["valid_queries"] and 0.0 <= row["mAP"] <= 1.0 and 0.0 <= row["R1"] <= 1.0


def test_one_seed_trains_once_and_adapts_every_method(walkers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    source = build_dataset("synthetic:a?size=tiny")
    methods = [CAMERA_METHODS[0], CAMERA_METHODS[2]]
    results = run_camera_seed(source, walkers, tmp_path, 0, methods,
                              settings=DemoSettings.quick(), on_row=lambda n, _: seen.append(n))
    assert list(results) == seen == ["Direct transfer", *(m.name for m in methods)]
    # every method is scored with the same two retrieval features (the part branch is
    # there even where its losses are off, as in the demo's baselines)
    assert all(set(rows) == {"global", "global + parts"} for rows in results.values())
    assert (tmp_path / "source" / "source_final.pt").is_file()
    for rows in results.values():
        assert all(0.0 <= r["mAP"] <= 1.0 for r in rows.values())
    # the same model scored again gives the same row (the evaluation is deterministic)
    from semparts_reid.inference import load_model_from_checkpoint

    model = load_model_from_checkpoint(tmp_path / "source" / "source_final.pt")
    again = reassociation_rows(model, walkers)
    assert again["global"]["mAP"] == pytest.approx(results["Direct transfer"]["global"]["mAP"],
                                                   abs=1e-6)
