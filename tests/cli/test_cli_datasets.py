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
    assert "folder" in out.splitlines()[0] and "folder:/data/my_reid" in out


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


def test_a_folder_tree_without_cameras(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    for rel in ("query/ann/1.jpg", "gallery/ann/2.jpg", "gallery/ben/3_c2.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 16)).save(tmp_path / rel)
    assert main(["datasets", f"folder:{tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "(2 images without a camera id: camid -1)" in out
    assert main(["datasets", f"folder:{tmp_path / 'nope'}"]) == 2
    assert f"folder dataset root {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
