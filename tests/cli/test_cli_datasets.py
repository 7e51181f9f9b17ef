"""``semparts-reid datasets`` (``cli/datasets.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import TINY

from semparts_reid.cli import main


def test_no_spec_lists_the_known_datasets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "known datasets:" in out and "market1501" in out and "spec format:" in out


def test_a_spec_prints_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", TINY.format("a")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(TINY.format("a")) and "train" in out and "gallery" in out


def test_a_bad_dataset_path_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "Market-1501"
    assert main(["datasets", f"market1501:{missing}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err
    assert err.startswith("semparts-reid datasets: error:") and "Traceback" not in err
