"""Smoke test: the evaluation benchmark runs end to end in --quick mode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_eval.py"


@pytest.mark.slow  # two interpreter start-ups with torch: ~5 s alone, more under load
def test_bench_eval_quick() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--repeats", "1"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "speed-up" in out.stdout and "(OK)" in out.stdout
    assert "peak RSS" in out.stdout
