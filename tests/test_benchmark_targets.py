"""Every benchmark script states its targets, says MISSED and exits 3 on a miss, and
measures what its docs say it measures. No assert here depends on timing."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from bench_loading import load_benchmark as _load
from semparts_reid.experiments import targets


@pytest.fixture(scope="module")
def T() -> ModuleType:
    return targets


def _missed(T: ModuleType, targets: list[Any], capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = T.report(targets)
    out = capsys.readouterr().out
    missed = [ln for ln in out.splitlines() if ln.startswith("[MISSED] ")]
    assert (code == T.MISSED_EXIT) == bool(missed)
    return missed


def test_synthetic_generation_below_500_per_cpu_second_is_missed(
    T: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("bench_synthetic")
    rows = [("a", 1513, 402.0, 501.0, 911.0), ("b", 1498, 505.0, 607.0, 1371.0)]
    missed = _missed(T, bench.targets(rows), capsys)
    assert missed == ["[MISSED] synthetic:a images per CPU-second: 402 (target >= 500)"]


def test_memory_share_above_ten_percent_of_a_step_is_missed(
    T: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("bench_adapt")
    assert _missed(T, bench.targets({"fp32": 0.73, "bf16": 0.30}, 10.1), capsys) == []
    missed = _missed(T, bench.targets({"fp32": 1.2, "bf16": 0.30}, 10.0), capsys)
    assert missed == ["[MISSED] memory loss+update (fp32 slots) / training step: 12.0% "
                      "(target <= 10%)"]  # fmt: skip


def test_small_map_conv_targets(T: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("bench_small_map_conv")
    assert _missed(T, bench.make_targets(2.1, 1.4, 0.0), capsys) == []
    missed = _missed(T, bench.make_targets(2.1, 1.05, -0.05), capsys)
    assert missed == ["[MISSED] demo training step speed-up: 1.05x (target >= 1.15x)",
                      "[MISSED] gradient cosine to fp32, GEMM route minus oneDNN: -0.0500 "
                      "(target >= -0.02)"]


def test_extraction_targets(T: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("bench_extract")
    r = {"native_bf16": True, "speedup": 3.4, "speedup_fp32": 1.97, "cos_min": 0.99999}
    assert len(_missed(T, bench.targets(r), capsys)) == 1  # bf16 target 3.5x
    assert _missed(T, bench.targets({**r, "native_bf16": False}), capsys) == []  # 1.8x
    assert len(_missed(T, bench.targets({**r, "speedup": 4.0, "cos_min": 0.99}), capsys)) == 1
    full = bench.parse_args([])
    assert bench.is_full_workload(full)
    assert not bench.is_full_workload(bench.parse_args(["--quick"]))
    assert not bench.is_full_workload(bench.parse_args(["--arch", "semparts_resnet18"]))


@pytest.fixture(scope="module")
def pooling() -> ModuleType:
    return _load("bench_pooling")


def test_part_branch_overhead_targets_cover_the_pseudo_label_step(
    pooling: ModuleType, T: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = {"global": 1.0, "parts": 1.007, "parts_pseudo": 1.25}
    missed = _missed(T, pooling.targets(6.6, 8.1, steps), capsys)
    assert len(missed) == 1 and "pseudo-label k-means" in missed[0] and "+25.0%" in missed[0]
    assert pooling.overhead_pct(steps, "parts") == pytest.approx(0.7)
    assert _missed(T, pooling.targets(6.6, 8.1, {**steps, "parts_pseudo": 1.05}), capsys) == []
    assert len(_missed(T, pooling.targets(2.9, 8.1, None), capsys)) == 1  # pooling only


def test_pseudo_label_step_runs_the_kmeans_every_step_and_the_others_do_not(
    pooling: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semparts_reid.engine.losses as losses

    calls: list[tuple[int, ...]] = []
    real = losses.pseudo_part_labels

    def counting(feature_map: Any, **kw: Any) -> Any:
        calls.append(tuple(feature_map.shape))
        return real(feature_map, **kw)

    monkeypatch.setattr(losses, "pseudo_part_labels", counting)
    steps = pooling.time_model_steps("resnet18", batch=2, size=(32, 16), repeats=2)
    assert set(steps) == {"global", "parts", "parts_pseudo"}
    assert all(v > 0 for v in steps.values())
    # warm-up + 2 repeats, each on the (2, 512, h, w) feature map of the pseudo variant only
    assert len(calls) == 3 and all(shape[:2] == (2, 512) for shape in calls)


def test_pooling_quick_run_prints_both_step_figures_and_checks_nothing(
    pooling: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the peak-memory children are the slow part of a quick run; they are covered by
    # the full run, here a stand-in keeps the test to the reporting
    monkeypatch.setattr(pooling, "peak_memory", lambda impl, shape: 1 << 20)
    monkeypatch.setattr(pooling, "time_model_steps", lambda *a: {
        "global": 1.0, "parts": 1.5, "parts_pseudo": 2.0})  # fmt: skip
    assert pooling.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "overhead +50.0%" in out and "pseudo-label k-means" in out and "+100.0%" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("[")]
    assert len(lines) == 4 and all(ln.startswith("[not checked] ") for ln in lines)
