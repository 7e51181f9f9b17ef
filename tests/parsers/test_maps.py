"""The parse output folder: maps, manifest, summary; written, then read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semparts_reid.data.part_labels import part_map_path, read_part_map
from semparts_reid.errors import InputError, InputNotFoundError
from semparts_reid.parsers import ParsedPartMaps, PartMapWriter, map_relpath


def _map(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, (h, w)).astype(np.uint8)


def test_map_names_mirror_the_image_tree_and_hash_other_paths(tmp_path: Path) -> None:
    root = tmp_path / "Market"
    img = root / "bounding_box_train" / "0001_c1s1_000151_00.jpg"
    rel = map_relpath(str(img), str(root))
    assert rel == "maps/bounding_box_train/0001_c1s1_000151_00.parts.png"
    # the same name the library reads beside an image
    assert Path(part_map_path(img)).relative_to(root) == Path(rel).relative_to("maps")
    outside = map_relpath("/elsewhere/x.jpg", str(root))
    video = map_relpath(f"{root}/seq/video.mp4#frame=12&box=1,2,3,4", str(root))
    assert outside.startswith("maps/_crops/") and video.startswith("maps/_crops/")
    assert outside != video and len(Path(video).name) == len("0123456789abcdef.parts.png")
    assert map_relpath("a/b.png", None).startswith("maps/_crops/")


def test_round_trip_of_maps_and_manifest_with_fallback_crops(tmp_path: Path) -> None:
    root = tmp_path / "data"
    out = tmp_path / "parsed"
    w = PartMapWriter(out, root=str(root))
    paths = [str(root / "train" / f"{i}.jpg") for i in range(3)]
    maps = [_map(6, 3, i) for i in range(3)]
    w.add("train", 0, paths[0], maps[0], confidence=0.91234, found=True, size=(3, 6))
    w.add("train", 1, paths[1], maps[1], confidence=0.5, found=False, size=(3, 6))
    w.add("train", 2, paths[2], maps[2], confidence=0.8, found=True, size=(3, 6))
    w.add("query", 0, paths[2], maps[2], confidence=0.8, found=True, size=(3, 6))  # twice
    manifest = w.finish({"spec": "x"})
    assert manifest == out / "manifest.csv"
    lines = manifest.read_text().splitlines()
    assert lines[0] == "split,index,path,map,found,confidence,width,height"
    assert lines[1] == f"train,0,{paths[0]},maps/train/0.parts.png,1,0.9123,3,6"
    assert lines[2] == f"train,1,{paths[1]},,0,0.0,3,6"
    assert len(lines) == 5
    summary = json.loads((out / "parse.json").read_text())
    assert summary["spec"] == "x" and summary["num_crops"] == 3 and summary["num_records"] == 4
    assert summary["found"] == 2 and summary["fallback"] == 1
    assert summary["labelled_fraction"] == pytest.approx(2 / 3)
    assert sorted(p.name for p in out.rglob("*.parts.png")) == ["0.parts.png", "2.parts.png"]
    assert not list(out.rglob("*.tmp"))

    back = ParsedPartMaps(out)
    assert len(back) == 3 and back.num_found == 2 and back.num_fallback == 1
    np.testing.assert_array_equal(back.read(paths[0]), maps[0])
    np.testing.assert_array_equal(back.read(paths[2]), maps[2])
    assert back.read(paths[1]) is None and back.map_path(paths[1]) is None
    assert back.read("/not/parsed.jpg") is None and paths[0] in back
    assert back.row(paths[0]).confidence == pytest.approx(0.9123)  # type: ignore[union-attr]
    assert [r.split for r in back] == ["train", "train", "train", "query"]
    # the project's reader takes the maps as they are (parts4)
    on_disk = read_part_map(out / "maps/train/0.parts.png", table="parts4", size=(3, 6))
    np.testing.assert_array_equal(on_disk, maps[0])


def test_a_crop_without_a_pose_removes_a_stale_map_of_an_earlier_parse(tmp_path: Path) -> None:
    path = str(tmp_path / "d" / "a.jpg")
    w = PartMapWriter(tmp_path / "out", root=str(tmp_path / "d"))
    w.add("train", 0, path, _map(4, 2, 0), confidence=1, found=True, size=(2, 4))
    w.finish({})
    assert (tmp_path / "out/maps/a.parts.png").is_file()
    w2 = PartMapWriter(tmp_path / "out", root=str(tmp_path / "d"))
    w2.add("train", 0, path, None, confidence=0, found=False, size=(2, 4))
    w2.finish({})
    assert not (tmp_path / "out/maps/a.parts.png").exists()
    assert ParsedPartMaps(tmp_path / "out").read(path) is None


def test_the_writer_rejects_maps_that_do_not_fit_their_crop(tmp_path: Path) -> None:
    w = PartMapWriter(tmp_path, root=None)
    with pytest.raises(ValueError, match=r"crop a.jpg: label map 2x4 \(WxH\) but the crop is 3x4"):
        w.add("train", 0, "a.jpg", _map(4, 2, 0), confidence=1, found=True, size=(3, 4))
    with pytest.raises(ValueError, match="expected 0..3"):
        w.add("train", 0, "b.jpg", np.full((4, 2), 7, np.uint8), confidence=1, found=True,
              size=(2, 4))  # fmt: skip
    with pytest.raises(ValueError, match=r"expected \(H, W\) uint8"):
        w.add("train", 0, "c.jpg", np.zeros((4, 2)), confidence=1, found=True, size=(2, 4))


def test_reading_a_folder_that_is_not_a_parse_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="manifest.csv not found"):
        ParsedPartMaps(tmp_path)
    (tmp_path / "manifest.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="header"):
        ParsedPartMaps(tmp_path)
