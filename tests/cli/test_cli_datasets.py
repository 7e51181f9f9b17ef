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


def test_write_a_synthetic_domain_as_market_without_part_maps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "synthetic-c"
    assert main(["datasets", "--write", TINY.format("c"), str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {TINY.format('c')} to {out_dir}" in out and "without part maps" in out
    assert f"market1501:{out_dir}" in out and "gallery" in out
    assert (out_dir / "query").is_dir() and list(out_dir.rglob("*.jpg"))
    assert not list(out_dir.rglob("*.parts.png"))
    # a non-empty folder is refused, naming it
    assert main(["datasets", "--write", TINY.format("c"), str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert f"output folder {out_dir} is not empty" in err and "Traceback" not in err


def test_write_with_part_maps_and_the_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = "synthetic:a?size=tiny&train_ids=3&test_ids=2"
    assert main(["datasets", "--write", spec, str(tmp_path / "a"), "--part-maps"]) == 0
    assert "with part maps" in capsys.readouterr().out
    assert len(list((tmp_path / "a").rglob("*.parts.png"))) == len(
        list((tmp_path / "a").rglob("*.jpg"))
    )
    for argv, expected in (
        (["--write", "market1501:/data/Market", str(tmp_path / "m")], "only synthetic domains"),
        (["--write", "synthetic:z", str(tmp_path / "z")], "domain='z'"),
        (["--write", "synthetic:c?hue=1", str(tmp_path / "z")], "unknown option(s) ['hue']"),
        (["--no-part-maps"], "only apply with --write"),
    ):
        assert main(["datasets", *argv]) == 2
        err = capsys.readouterr().err
        assert expected in err and err.startswith("semparts-reid datasets: error:"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
