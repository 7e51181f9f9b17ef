"""benchmarks/bench_camera_pipeline.py: every step of the camera pipeline runs (quick, no
parser), and a missing source checkpoint is a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from bench_loading import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("bench_camera_pipeline")


def test_a_missing_source_checkpoint_names_the_file(bench: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no source checkpoint at .*nope.pt"):
        bench.main(["--quick", "--source-checkpoint", str(tmp_path / "nope.pt")])


def test_quick_run_times_each_step(bench: ModuleType, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from semparts_reid.data import build_dataset
    from semparts_reid.experiments import DemoSettings, train_source_model

    source = build_dataset("synthetic:a?size=tiny")
    train_source_model(DemoSettings.quick(), source, source, tmp_path / "src", 0, "cpu")
    monkeypatch.setattr(bench, "has_parser", lambda python: False)  # no MediaPipe here
    out = tmp_path / "out.json"
    code = bench.main(["--quick", "--people", "4", "--size", "120", "200",
                       "--source-checkpoint", str(tmp_path / "src/source/source_final.pt"),
                       "--work-dir", str(tmp_path / "work"), "--output", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "parse: skipped" in text and "[not checked]" in text
    result = json.loads(out.read_text())
    assert set(result["seconds"]) == {"read", "adapt", "evaluate"}
    assert result["frames"] == 60 and result["train_crops"] > 0
