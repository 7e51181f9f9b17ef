"""benchmarks/bench_parser.py: measures a parser's labelled fraction and throughput, and
says "skipped" (exit 0) without MediaPipe."""

from __future__ import annotations

import sys
from types import ModuleType

import numpy as np
import pytest

from bench_loading import load_benchmark
from semparts_reid.parsers import ParseResult


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("bench_parser")


def test_without_mediapipe_nothing_is_measured(bench: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import raises ImportError
    assert bench.main(["--quick"]) == 0
    assert "skipped, nothing measured" in capsys.readouterr().out


class _HalfParser:
    """Finds a pose in every other crop."""

    def __init__(self, workers: int = 1, backend: str = "thread") -> None:
        self.workers = workers

    def __enter__(self) -> _HalfParser:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def parse(self, crops: list) -> ParseResult:
        found = np.arange(len(crops)) % 2 == 0
        return ParseResult([np.zeros(c.shape[:2], np.uint8) for c in crops],
                           found.astype(np.float32), found)


def test_measure_counts_the_labelled_crops(bench: ModuleType, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    import semparts_reid.parsers as parsers

    monkeypatch.setattr(parsers, "MediaPipeParser", _HalfParser)
    crops = [np.zeros((20, 10, 3), np.uint8)] * 10
    r = bench.measure(crops, 2, "thread")
    assert (r["found"], r["crops"], r["labelled"]) == (5, 10, 0.5)
    assert r["crops_per_s"] > 0 and r["workers"] == 2
