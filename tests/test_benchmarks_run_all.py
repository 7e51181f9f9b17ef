"""``benchmarks/run_all.py`` writes a report with the date, the machine and each output."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_registered_benchmark_exists() -> None:
    run_all = _load()
    for script, _, _ in run_all.BENCHMARKS.values():
        assert (ROOT / "benchmarks" / script).is_file(), script


def test_quick_report(tmp_path: Path) -> None:
    run_all = _load()
    out = tmp_path / "RESULTS.md"
    assert run_all.main(["--quick", "--only", "synthetic", "--output", str(out)]) == 0
    text = out.read_text()
    assert "# Benchmark results" in text
    assert "machine:" in text and "cores" in text
    assert "| synthetic | ok |" in text
