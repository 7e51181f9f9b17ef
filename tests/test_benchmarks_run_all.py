"""``benchmarks/run_all.py`` and ``semparts_reid.experiments.targets``: a missed target is
reported as MISSED (never "ok") and makes the exit status non-zero; the report is written
either way."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from bench_loading import BENCH_DIR
from bench_loading import load_benchmark as _load
from semparts_reid.experiments import targets as targets_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    return _load("run_all")


@pytest.fixture(scope="module")
def targets() -> ModuleType:
    return targets_module


def test_every_registered_benchmark_exists(run_all: ModuleType) -> None:
    for script, _, _ in run_all.BENCHMARKS.values():
        assert (BENCH_DIR / script).is_file(), script


def test_every_benchmark_script_is_registered_and_reports_its_targets(
    run_all: ModuleType,
) -> None:
    """A new bench_*.py cannot bypass the rule: it is run by run_all and exits with the
    status of ``experiments.targets.report`` (which says MISSED and returns 3 on a miss)."""
    registered = {script for script, _, _ in run_all.BENCHMARKS.values()}
    for path in sorted(BENCH_DIR.glob("bench_*.py")):
        assert path.name in registered, f"{path.name} is not in run_all.BENCHMARKS"
        source = path.read_text()
        assert "from semparts_reid.experiments.targets import" in source, path.name
        assert "return report(" in source, path.name
        assert "raise SystemExit(main())" in source, f"{path.name} drops main()'s status"


def _fake(tmp_path: Path, name: str, body: str) -> str:
    """A benchmark script that reports through the real ``experiments.targets`` helper."""
    path = tmp_path / f"{name}.py"
    header = "from semparts_reid.experiments.targets import Target, report\n"
    path.write_text(header + textwrap.dedent(body))
    return str(path)


@pytest.fixture
def fakes(tmp_path: Path, run_all: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Path:
    benches = {
        "meets": """
            print("speed-up 4.0x")
            raise SystemExit(report([Target("speed-up", 4.0, ">=", 3.0, "x")]))
        """,
        "misses": """
            print("images per CPU-second 402")
            raise SystemExit(report([Target("generation", 402.0, ">=", 500.0, "", ".0f"),
                                     Target("speed-up", 4.0, ">=", 3.0, "x")]))
        """,
        "misses_exit_zero": """
            print("[MISSED] overhead: +12.0% (target <= 10%)")  # breaks the rule: exits 0
        """,
        "crashes": """
            raise RuntimeError("boom")
        """,
        "quick_unchecked": """
            raise SystemExit(report([Target("speed-up", 0.5, ">=", 3.0, "x")], checked=False))
        """,
    }
    table = {n: (_fake(tmp_path, n, body), [], []) for n, body in benches.items()}
    monkeypatch.setattr(run_all, "BENCHMARKS", table)
    return tmp_path


def _status_cells(report: str) -> dict[str, str]:
    rows = re.findall(r"^\| (\w+) \| ([^|]+) \|", report, re.M)
    return {name: status.strip() for name, status in rows if name not in ("benchmark",)}


def test_a_benchmark_that_meets_its_targets_is_ok_and_exits_zero(
    run_all: ModuleType, fakes: Path
) -> None:
    out = fakes / "RESULTS.md"
    assert run_all.main(["--only", "meets", "quick_unchecked", "--output", str(out)]) == 0
    text = out.read_text()
    assert _status_cells(text) == {"meets": "ok", "quick_unchecked": "ok"}
    assert "[ok] speed-up: 4.00x (target >= 3x)" in text
    assert "[not checked] speed-up" in text


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("misses", "MISSED"),
        ("misses_exit_zero", "MISSED"),
        ("crashes", "FAILED (exit 1)"),
    ],
)
def test_a_miss_or_a_crash_is_marked_and_exits_non_zero(
    run_all: ModuleType, fakes: Path, name: str, status: str
) -> None:
    out = fakes / "RESULTS.md"
    assert run_all.main(["--only", "meets", name, "--output", str(out)]) == 1
    text = out.read_text()  # still written, with the marks
    assert _status_cells(text) == {"meets": "ok", name: status}
    assert f"| {name} | ok |" not in text


def test_the_missed_line_reaches_the_summary_table(run_all: ModuleType, fakes: Path) -> None:
    out = fakes / "RESULTS.md"
    run_all.main(["--only", "misses", "--output", str(out)])
    row = next(ln for ln in out.read_text().splitlines() if ln.startswith("| misses |"))
    assert "[MISSED] generation: 402 (target >= 500)" in row
    assert "[ok] speed-up" in row


def test_only_refreshes_its_benchmarks_and_keeps_the_others(
    run_all: ModuleType, fakes: Path
) -> None:
    out = fakes / "RESULTS.md"
    run_all.main(["--only", "meets", "misses", "--output", str(out)])
    first = out.read_text()
    run_all.main(["--only", "crashes", "--output", str(out)])
    text = out.read_text()
    assert _status_cells(text) == {"meets": "ok", "misses": "MISSED", "crashes": "FAILED (exit 1)"}
    kept = first[first.index("## meets"):first.index("## misses")]
    assert kept in text  # the earlier section, with its own run date
    assert re.search(r"meets\.py` \(\d+ s, ok, run \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", text)
    assert "the others keep their own date" in text
    run_all.main(["--only", "meets", "--replace", "--output", str(out)])
    assert _status_cells(out.read_text()) == {"meets": "ok"}


def test_status_of(run_all: ModuleType, targets: ModuleType) -> None:
    assert run_all.status_of(0, "[ok] a: 1 (target >= 1)") == "ok"
    assert run_all.status_of(targets.MISSED_EXIT, "[MISSED] a: 0 (target >= 1)") == "MISSED"
    assert run_all.status_of(targets.MISSED_EXIT, "") == "MISSED"
    assert run_all.status_of(0, "x\n  [MISSED] a: 0 (target >= 1)") == "MISSED"
    assert run_all.status_of(1, "[MISSED] a\nTraceback ...") == "FAILED (exit 1)"
    assert run_all.status_of(0, "the word MISSED in prose is not a target line") == "ok"


def test_target_lines_and_exit_status(
    targets: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    T = targets.Target
    assert T("t", 12.38, "<=", 12.0, " s").line() == "[MISSED] t: 12.38 s (target <= 12 s)"
    assert T("t", 0.8, ">=", 1.0, "x").line(checked=False).startswith("[not checked] t: 0.80x")
    assert not T("t", float("nan"), "<=", 1.0).met and not T("t", float("nan"), ">=", 1.0).met
    assert T("t", 2.0, "<", 2.0).met is False and T("t", 2.0, "<=", 2.0).met is True
    with pytest.raises(ValueError, match="op '=>'"):
        T("t", 1.0, "=>", 1.0)
    assert targets.report([T("a", 1.0, ">=", 1.0), T("b", 0.5, ">=", 1.0)]) == 3
    assert "MISSED 1 of 2 targets: b" in capsys.readouterr().out
    assert targets.report([T("b", 0.5, ">=", 1.0)], checked=False, why_unchecked="quick") == 0
    assert "[MISSED]" not in capsys.readouterr().out


def test_quick_report(tmp_path: Path, run_all: ModuleType) -> None:
    """The real synthetic benchmark in its quick mode: it runs, prints its figures, and
    (smoke sizes) does not check the target, so it is ok whatever the machine's speed."""
    out = tmp_path / "RESULTS.md"
    assert run_all.main(["--quick", "--only", "synthetic", "--output", str(out)]) == 0
    text = out.read_text()
    assert "# Benchmark results" in text
    assert "machine:" in text and "cores" in text
    assert "| synthetic | ok |" in text
    assert "[not checked] synthetic:a images per CPU-second" in text
