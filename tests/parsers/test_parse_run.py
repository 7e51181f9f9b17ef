"""parse_dataset and ``semparts-reid parse`` on a tiny synthetic domain, with a fake parser;
the ImportError without mediapipe; the real MediaPipe backend where it is installed."""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import BandParser

from semparts_reid.cli import main
from semparts_reid.cli import parse as parse_cmd
from semparts_reid.data.datasets import build_dataset
from semparts_reid.errors import InputError
from semparts_reid.parsers import MediaPipeParser, ParsedPartMaps, ParseResult, parse_dataset

TINY = "synthetic:a?size=tiny"


@pytest.fixture(scope="module")
def tiny() -> object:
    return build_dataset(TINY)


def test_parse_dataset_writes_a_map_per_found_crop_and_counts_the_fallbacks(
    tiny: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds = tiny
    parser = BandParser(miss=3)
    with caplog.at_level(logging.WARNING):
        summary = parse_dataset(
            ds,
            parser,
            tmp_path,
            splits=["query", "gallery"],
            batch_size=5,
            progress=False,
            extra={"spec": TINY},
        )  # type: ignore[arg-type]
    n = len(ds.query) + len(ds.gallery)  # type: ignore[attr-defined]
    assert summary.num_crops == n == parser.seen
    assert summary.fallback == n // 3 and summary.found == n - n // 3
    assert summary.labelled_fraction == pytest.approx((n - n // 3) / n)
    assert f"no pose in {n // 3} of {n} crops" in caplog.text
    maps = ParsedPartMaps(tmp_path)
    assert len(maps) == n and maps.num_fallback == n // 3
    assert maps.summary["spec"] == TINY and maps.summary["parser"] == "bands"
    assert maps.summary["splits"] == ["query", "gallery"] and maps.summary["fallback"] == n // 3
    first = ds.query[0]  # type: ignore[attr-defined]
    got = maps.read(first.path)
    from PIL import Image

    with Image.open(first.path) as img:
        assert got is not None and got.shape == (img.height, img.width)
    assert got[0, 0] == 1 and got[-1, 0] == 3
    # maps mirror the dataset tree: query/<stem>.parts.png
    assert maps.map_path(first.path).parent.name == Path(first.path).parent.name  # type: ignore[union-attr]
    missed = ds.query[2].path  # type: ignore[attr-defined]
    assert maps.read(missed) is None and maps.row(missed).found is False  # type: ignore[union-attr]


def test_parse_dataset_checks_its_inputs_and_the_parser_output(
    tiny: object, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="splits"):
        parse_dataset(tiny, BandParser(), tmp_path, splits=["val"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no parse"):
        parse_dataset(tiny, object(), tmp_path)  # type: ignore[arg-type]

    class Wrong:
        def parse(self, crops: list) -> ParseResult:
            return ParseResult([np.zeros((2, 2), np.uint8)] * len(crops), np.ones(len(crops)),
                               np.ones(len(crops), bool))  # fmt: skip

    with pytest.raises(ValueError, match=r"Wrong.parse: map 0 has shape \(2, 2\)"):
        parse_dataset(tiny, Wrong(), tmp_path, splits=["query"], progress=False)  # type: ignore[arg-type]


def test_cli_parse_with_an_injected_parser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made: list[BandParser] = []

    def fake(args: object) -> BandParser:
        made.append(BandParser(miss=4))
        return made[-1]

    monkeypatch.setattr(parse_cmd, "make_parser", fake)
    out = tmp_path / "parsed"
    code = main(["parse", TINY, "--output-dir", str(out), "--split", "train", "--workers", "1",
                 "--no-progress"])  # fmt: skip
    assert code == 0 and made[0].closed
    text = capsys.readouterr().out
    n = len(build_dataset(TINY).train)
    assert f"parse: {n} crops of {TINY} (train): pose found in {n - n // 4}" in text
    assert f"{n // 4} keep their current labels" in text and "crops/s" in text
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == n and {r["split"] for r in rows} == {"train"}
    assert sum(r["found"] == "0" for r in rows) == n // 4
    assert all((out / r["map"]).is_file() for r in rows if r["found"] == "1")
    assert json.loads((out / "parse.json").read_text())["spec"] == TINY


def test_cli_parse_bad_spec_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(parse_cmd, "make_parser", lambda args: BandParser())
    assert main(["parse", "market1501:/no/such", "--output-dir", str(tmp_path)]) == 2
    assert "semparts-reid parse: error:" in capsys.readouterr().err


def test_without_mediapipe_the_backend_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'semparts-reid\[parser\]'"):
        MediaPipeParser()
    assert main(["parse", TINY, "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "semparts-reid parse: error:" in err and "semparts-reid[parser]" in err
    assert not (tmp_path / "manifest.csv").exists()


def test_importing_the_package_and_the_parsers_never_imports_mediapipe() -> None:
    import subprocess

    code = ("import sys, semparts_reid, semparts_reid.parsers, semparts_reid.cli.main; "
            "assert 'mediapipe' not in sys.modules")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)


def _person(h: int = 150, w: int = 60) -> np.ndarray:
    """A crude drawn pedestrian on a grey street (head, shirt, trousers, arms)."""
    img = np.full((h, w, 3), 150, np.uint8)
    cx = w // 2
    yy, xx = np.mgrid[0:h, 0:w]
    img[(yy - 18) ** 2 + (xx - cx) ** 2 <= 10**2] = (225, 185, 160)  # head
    img[30:85, cx - 14 : cx + 14] = (40, 70, 160)  # shirt
    img[32:80, cx - 20 : cx - 14] = (40, 70, 160)  # arms
    img[32:80, cx + 14 : cx + 20] = (40, 70, 160)
    img[85:145, cx - 13 : cx - 2] = (50, 50, 50)  # legs
    img[85:145, cx + 2 : cx + 13] = (50, 50, 50)
    return img


def test_real_mediapipe_backend_gives_maps_of_each_crop_size() -> None:
    pytest.importorskip("mediapipe")
    pytest.importorskip("cv2")
    crops = [_person(), np.full((75, 30, 3), 128, np.uint8)]  # the second: no person
    with MediaPipeParser(workers=1) as parser:
        res = parser.parse(crops)
        again = parser.parse(crops)
    assert [m.shape for m in res.labels] == [(150, 60), (75, 30)]
    assert all(m.dtype == np.uint8 and m.max() <= 3 for m in res.labels)
    assert res.found[1] == False and res.confidence[1] == 0  # noqa: E712
    if res.found[0]:  # a drawn figure may or may not pass for a person
        m = res.labels[0]
        rows = {k: np.nonzero((m == k).any(axis=1))[0] for k in (1, 2, 3) if (m == k).any()}
        if 1 in rows and 3 in rows:
            assert rows[1].mean() < rows[3].mean()  # head above lower body
    np.testing.assert_array_equal(res.labels[0], again.labels[0])  # deterministic
