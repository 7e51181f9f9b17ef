"""benchmarks/bench_tracking.py: its target, its tuning rule and an end-to-end quick run on a
generated MOTChallenge sequence (frames in img1/, no video, no real data)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bench_loading import load_benchmark

pytest.importorskip("deep_sort_realtime")
pytest.importorskip("trackeval")
cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("bench_tracking")


def _result(idf1: dict[str, float]) -> dict:
    emb = {k: {"summary": {"idf1": v}} for k, v in idf1.items()}
    return {"sequence": "S", "detections": {"hog": {"embedders": emb}}}


def test_target_needs_the_adapted_model_five_points_over_the_best_other(bench: ModuleType
                                                                         ) -> None:
    base = {"motion": 0.60, "hsv-histogram": 0.70, "mobilenetv2": 0.72, "ours-source": 0.71}
    [t] = bench.targets([_result({**base, "ours-adapted": 0.775})])
    assert t.met and t.value == pytest.approx(5.5)
    [t] = bench.targets([_result({**base, "ours-adapted": 0.76})])
    assert not t.met
    [t] = bench.targets([_result(base)])  # no adapted checkpoint: missed, never passed
    assert not t.met and np.isnan(t.value)


def test_best_of_grid_prefers_idf1_then_fewer_switches(bench: ModuleType) -> None:
    grid = [{"max_cosine_distance": 0.1, "idf1": 0.8, "idsw": 3},
            {"max_cosine_distance": 0.2, "idf1": 0.8, "idsw": 1},
            {"max_cosine_distance": 0.3, "idf1": 0.7, "idsw": 0}]
    assert bench.best_of(grid)["max_cosine_distance"] == 0.2


def _write_sequence(root: Path, n_frames: int = 8) -> Path:
    seq = root / "GEN-01"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=GEN-01\nimDir=img1\nframeRate=25\n"
        f"seqLength={n_frames}\nimWidth=320\nimHeight=240\nimExt=.jpg\n")
    rows = []
    for f in range(1, n_frames + 1):
        img = np.full((240, 320, 3), 180, np.uint8)
        for pid, x, colour in ((1, 20 + 6 * f, (0, 0, 200)), (2, 250 - 6 * f, (200, 0, 0))):
            y = 40 + 40 * (pid - 1)
            img[y:y + 120, x:x + 48] = colour
            rows.append(f"{f},{pid},{x + 1},{y + 1},48,120,1,-1,-1,-1")
        cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), img)
    (seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    return seq


def test_quick_run_writes_results_and_skips_ours_without_checkpoints(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seq = _write_sequence(tmp_path)
    out = tmp_path / "res.json"
    code = bench.main(["--sequence", str(seq), "--quick", "--output", str(out)])
    text = capsys.readouterr().out
    assert code == 0  # --quick: not checked
    assert "ours-adapted: skipped (no --adapted-checkpoint given for GEN-01)" in text
    assert "[not checked] GEN-01 gt-jitter" in text
    res = json.loads(out.read_text())
    kinds = res["results"][0]["detections"]
    assert set(kinds) == {"gt-jitter", "hog"}
    emb = kinds["gt-jitter"]["embedders"]
    assert set(emb) == {"motion", "hsv-histogram", "mobilenetv2"}
    assert emb["hsv-histogram"]["summary"]["idf1"] > 0.5  # two clean, well-separated people
    assert len(emb["motion"]["per_seed"]["0"]["grid"]) == 2  # quick grid


def test_missing_adapted_checkpoint_is_a_miss_with_exit_3(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seq = _write_sequence(tmp_path, n_frames=6)
    args = ["--sequence", str(seq), "--detections", "gt-jitter", "--embedders", "motion"]
    assert bench.main(args) == 3 and "[MISSED] GEN-01 gt-jitter" in capsys.readouterr().out
    assert bench.main([*args, "--no-targets"]) == 0
