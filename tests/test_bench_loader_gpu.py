"""``benchmarks/bench_loader.py`` and ``benchmarks/bench_gpu.py``: quick modes run, targets
are stated through ``experiments.targets`` (a miss says MISSED), no CUDA means a clean skip. No
assert here depends on timing."""

from __future__ import annotations

import pytest
import torch

from bench_loading import load_benchmark as _load
from semparts_reid.experiments import targets


@pytest.mark.slow
def test_loader_benchmark_quick_run(capsys, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEMPARTS_REID_HOME", str(tmp_path))
    bench = _load("bench_loader")
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    for w in (0, 2):
        for name in ("torchreid", "ours", "ours+parts"):
            assert f"{name}, {w} workers:" in out
        assert f"[not checked] ours / torchreid-style images/s, {w} workers:" in out
    assert not bench.is_full_workload(bench.parse_args(["--quick"]))
    assert bench.is_full_workload(bench.parse_args([]))


def test_loader_target_is_one_and_a_half_times_at_equal_workers(capsys) -> None:  # type: ignore[no-untyped-def]
    bench = _load("bench_loader")
    T = targets
    rates = {("ours", 0): 150.0, ("torchreid", 0): 100.0, ("ours", 2): 140.0,
             ("torchreid", 2): 100.0}
    assert T.report(bench.targets(rates, [0, 2])) == T.MISSED_EXIT
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[ok] ours / torchreid-style images/s, 0 workers: 1.50x")
    assert lines[1].startswith("[MISSED] ours / torchreid-style images/s, 2 workers: 1.40x")


def test_gpu_benchmark_skips_cleanly_without_cuda(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bench = _load("bench_gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main([]) == 0 and bench.main(["--quick"]) == 0
    assert capsys.readouterr().out.splitlines() == ["no CUDA device: skipped"] * 2


def test_gpu_benchmark_targets(capsys) -> None:  # type: ignore[no-untyped-def]
    bench = _load("bench_gpu")
    T = targets
    assert T.report(bench.targets(fp32=400.0, bf16=1000.0, loop=900.0)) == 0
    assert T.report(bench.targets(fp32=800.0, bf16=1000.0, loop=500.0)) == T.MISSED_EXIT
    missed = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[MISSED]")]
    assert len(missed) == 2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_benchmark_quick_run(capsys, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEMPARTS_REID_HOME", str(tmp_path))
    assert _load("bench_gpu").main(["--quick", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "training loop (bf16, loader included)" in out and "evaluate_cmc_map" in out
