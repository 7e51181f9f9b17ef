"""Smoke test of ``benchmarks/bench_extract.py`` on a tiny workload."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_extract.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_extract", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_extract"] = module
    spec.loader.exec_module(module)
    return module


def test_crops_are_bgr_uint8_around_the_size(bench: ModuleType) -> None:
    crops = bench.make_crops(20, (64, 32), seed=0)
    assert all(c.dtype == np.uint8 and c.ndim == 3 and c.shape[2] == 3 for c in crops)
    heights = [c.shape[0] for c in crops]
    assert 48 <= min(heights) and max(heights) <= 80 and len(set(heights)) > 1


def test_tiny_run_reports_speed_and_agreement(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    argv = ["--crops", "6", "--arch", "semparts_resnet18", "--size", "32x16",
            "--batch-size", "4", "--json", str(out)]
    assert bench.main(argv) == 0
    text = capsys.readouterr().out
    assert "naive" in text and "img/s" in text and "cosine" in text
    r = json.loads(out.read_text())
    assert r["crops"] == 6 and r["input_size"] == [32, 16]
    assert set(r["images_per_s"]) == {"naive", "ours", "ours_fp32"}
    assert all(v > 0 for v in r["images_per_s"].values())
    assert r["cos_fp32_min"] > 0.999  # same model, same precision: only resize rounding
    assert r["cos_min"] > 0.99


def test_quick_defaults_and_bad_flags(bench: ModuleType) -> None:
    args = bench.parse_args(["--quick"])
    assert (args.crops, args.arch, args.size) == (32, "semparts_resnet18", "128x64")
    full = bench.parse_args([])
    assert (full.crops, full.arch, full.size) == (512, "semparts_resnet50", "256x128")
    with pytest.raises(SystemExit):
        bench.parse_args(["--crops", "0"])
