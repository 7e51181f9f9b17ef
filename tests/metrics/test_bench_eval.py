"""``benchmarks/bench_eval.py``: runs end to end, checks its targets, measures torchreid
when it is importable. Behaviour only: no assert here depends on how fast anything ran."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from bench_loading import load_benchmark as _load
from semparts_reid.experiments import targets


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("bench_eval")


@pytest.fixture(scope="module")
def targets_mod() -> ModuleType:
    return targets


@pytest.mark.slow  # the MSMT17 part runs in a child interpreter (for its own peak RSS)
def test_quick_run_agrees_with_the_reference_and_does_not_check_targets(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--quick", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "max |ours - reference|" in out and "(OK)" in out
    assert "peak RSS" in out
    # quick shapes: every target is printed, none is checked, none is reported as met
    lines = [ln for ln in out.splitlines() if ln.startswith("[")]
    assert len(lines) == 4 and all(ln.startswith("[not checked] ") for ln in lines)
    assert "targets not checked" in out
    assert "torchreid evaluate_rank" in out  # measured or skipped, but said


def _market(speedup: float = 29.0, time_s: float = 0.15) -> dict[str, Any]:
    return {"speedup": speedup, "time_s": time_s}


def _msmt(time_s: float = 11.0, peak: float = 1072.0) -> dict[str, Any]:
    return {"time_s": time_s, "peak_rss_mib": peak}


def test_full_run_that_meets_every_target_exits_zero(
    bench: ModuleType, targets_mod: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert targets_mod.report(bench.targets(_market(), _msmt())) == 0
    out = capsys.readouterr().out
    assert out.count("[ok] ") == 4 and "MISSED" not in out


@pytest.mark.parametrize(
    ("market", "msmt", "missed"),
    [
        (_market(), _msmt(time_s=12.38), "MSMT17 scale: time with distances"),
        (_market(), _msmt(peak=2048.0), "MSMT17 scale: peak RSS"),
        (_market(speedup=19.9), _msmt(), "speed-up vs per-query reference"),
        (_market(time_s=0.41), None, "evaluate_cmc_map time"),
        (_market(time_s=float("nan")), None, "evaluate_cmc_map time"),
    ],
)
def test_a_missed_target_prints_missed_and_exits_non_zero(
    bench: ModuleType,
    targets_mod: ModuleType,
    capsys: pytest.CaptureFixture[str],
    market: dict[str, Any],
    msmt: dict[str, Any] | None,
    missed: str,
) -> None:
    code = targets_mod.report(bench.targets(market, msmt))
    assert code == targets_mod.MISSED_EXIT != 0
    out = capsys.readouterr().out
    missed_lines = [ln for ln in out.splitlines() if ln.startswith("[MISSED] ")]
    assert len(missed_lines) == 1 and missed in missed_lines[0]


def test_targets_are_checked_only_for_the_parts_that_ran(bench: ModuleType) -> None:
    assert len(bench.targets(_market(), None)) == 2
    assert len(bench.targets(_market(), _msmt())) == 4


def test_torchreid_is_skipped_cleanly_when_not_importable(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "torchreid", None)  # import raises ImportError
    res = bench.bench_torchreid(np.zeros((2, 3), np.float32), *([np.zeros(1)] * 4), 0.1, 0.5, 1)
    assert res["available"] is False and "torchreid not importable" in res["why"]
    assert "torchreid evaluate_rank: skipped" in capsys.readouterr().out


def test_torchreid_is_measured_on_the_same_matrix_when_importable(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[Any, ...]] = []
    qf, gf, qp, gp, qc, gc = bench.make_data(20, 80, 8, 3, dim=16, seed=0)
    dist = 1.0 - qf @ gf.T
    cmc, m_ap, _ = bench.reference_eval(dist, qp, gp, qc, gc)

    def evaluate_rank(*args: Any, max_rank: int = 50) -> tuple[np.ndarray, float]:
        calls.append(args)
        return cmc, m_ap

    rank = ModuleType("torchreid.metrics.rank")
    rank.evaluate_rank = evaluate_rank  # type: ignore[attr-defined]
    rank.IS_CYTHON_AVAI = True  # type: ignore[attr-defined]
    metrics = ModuleType("torchreid.metrics")
    metrics.rank = rank  # type: ignore[attr-defined]
    pkg = ModuleType("torchreid")
    pkg.metrics = metrics  # type: ignore[attr-defined]
    pkg.__path__ = []  # a package, so its submodules import
    monkeypatch.setitem(sys.modules, "torchreid", pkg)
    monkeypatch.setitem(sys.modules, "torchreid.metrics", metrics)
    monkeypatch.setitem(sys.modules, "torchreid.metrics.rank", rank)

    res = bench.bench_torchreid(dist, qp, gp, qc, gc, 0.5, m_ap, 2)
    assert len(calls) == 2 and calls[0][0] is dist and calls[0][1] is qp
    assert res["available"] is True and res["kind"] == "Cython" and res["map_diff"] == 0.0
    assert res["ours_faster"] == pytest.approx(res["time_s"] / 0.5)
    assert "torchreid evaluate_rank (Cython)" in capsys.readouterr().out
