"""Dataset layouts: Market/Duke folders, MSMT17 list files, image lists, errors, images."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from data_helpers import MARKET, make_tree, write_image

from semparts_reid.data import (
    CorruptImageError,
    DatasetLayoutError,
    DukeMTMCreID,
    ImageListDataset,
    ImageRecord,
    Market1501,
    build_dataset,
    list_datasets,
    load_rgb,
    parse_spec,
    read_split_list,
)


def test_market_layout_relabel_junk_distractors(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "Market", MARKET)
    ds = Market1501(root)
    assert isinstance(ds.train[0], ImageRecord)
    # train pids 2, 7, 10 -> 0, 1, 2 in sorted order; camids 0-based
    assert sorted({r.pid for r in ds.train}) == [0, 1, 2]
    by_name = {Path(r.path).name: r for r in ds.train}
    assert by_name["0007_c6s3_085567_02.jpg"] == (
        str(root / "bounding_box_train/0007_c6s3_085567_02.jpg"),
        1,
        5,
    )
    assert by_name["0010_c1s1_002301_01.jpg"].pid == 2
    # query/gallery keep original pids, junk -1 dropped, distractor 0 kept
    assert sorted(r.pid for r in ds.query) == [1, 3]
    assert sorted(r.pid for r in ds.gallery) == [0, 1, 3]
    assert {r.camid for r in ds.gallery} == {0, 1, 4}
    s = ds.summary()
    assert s["train"] == {"ids": 3, "images": 5, "cams": 4}
    assert s["gallery"]["images"] == 3
    table = ds.summary_table()
    assert "train" in table and "gallery" in table and "   5 " in table.replace("|", " ")


def test_duke_names_and_build_dataset_spec(tmp_path: Path) -> None:
    root = make_tree(
        tmp_path / "Duke",
        {
            "bounding_box_train": [
                "0005_c2_f0046182.jpg",
                "0005_c8_f0046200.jpg",
                "0019_c1_f0001.jpg",
            ],
            "query": ["0011_c3_f0000001.jpg"],
            "bounding_box_test": ["0011_c7_f0000100.jpg", "0011_c2_f0000100.jpg"],
        },
    )
    ds = build_dataset(f"dukemtmcreid:{root}")
    assert ds.name == "dukemtmcreid"
    assert [r.camid for r in ds.train] == [1, 7, 0]
    assert [r.pid for r in ds.train] == [0, 0, 1]
    assert ds.num_cams == 8
    assert DukeMTMCreID(root).summary() == ds.summary()
    assert build_dataset(f"duke:{root}").summary() == ds.summary()  # alias


def test_list_datasets_and_spec_errors() -> None:
    names = list_datasets()
    assert {"market1501", "dukemtmcreid", "msmt17", "imagelist", "synthetic"} <= set(names)
    assert parse_spec("synthetic:a?size=tiny&seed=3") == (
        "synthetic",
        "a",
        {"size": "tiny", "seed": 3},
    )
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        build_dataset("nope:/x")
    with pytest.raises(ValueError, match="name:path"):
        build_dataset("market1501")


@pytest.mark.parametrize(
    ("layout", "match"),
    [
        (
            {"bounding_box_train": ["0001_c1s1_0.jpg"], "query": ["0001_c1s1_1.jpg"]},
            "missing split folder",
        ),
        (
            {
                "bounding_box_train": [],
                "query": ["0001_c1_1.jpg"],
                "bounding_box_test": ["0001_c2_1.jpg"],
            },
            "empty split folder",
        ),
        (
            {
                "bounding_box_train": ["person_7.jpg"],
                "query": ["0001_c1_1.jpg"],
                "bounding_box_test": ["0001_c2_1.jpg"],
            },
            r"cannot parse .*person_7.jpg.*PPPP_cC",
        ),
        (
            {
                "bounding_box_train": ["0001_c1_1.jpg", "0001_c1_1.png"],
                "query": ["0001_c1_1.jpg"],
                "bounding_box_test": ["0001_c2_1.jpg"],
            },
            "duplicate image",
        ),
    ],
)
def test_layout_errors_name_path_and_pattern(tmp_path: Path, layout: dict, match: str) -> None:
    root = make_tree(tmp_path / "M", layout)
    with pytest.raises(DatasetLayoutError, match=match) as info:
        Market1501(root)
    assert str(root) in str(info.value)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        Market1501(tmp_path / "nowhere")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_corrupt_images_error_or_skip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_tree(tmp_path / "Market", MARKET)
    bad = root / "bounding_box_train" / "0007_c3s3_077419_03.jpg"
    _truncate(bad)
    (root / "query" / "0003_c2s1_000100_00.jpg").write_bytes(b"not an image")
    ds = Market1501(root)  # lazy: no decoding at build time
    assert len(ds.train) == 5
    with pytest.raises(CorruptImageError, match="0007_c3s3_077419_03.jpg"):
        load_rgb(bad)
    with pytest.raises(CorruptImageError, match="cannot decode image"):
        Market1501(root, verify=True)
    with caplog.at_level(logging.WARNING):
        ds = Market1501(root, skip_corrupt=True)
    assert ds.num_corrupt == 2
    assert len(ds.train) == 4 and len(ds.query) == 1
    assert "skipped 2 corrupt images" in caplog.text
    assert "2 corrupt images skipped" in ds.summary_table()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "RGB"])
def test_colour_modes_load_as_rgb(tmp_path: Path, mode: str) -> None:
    path = write_image(tmp_path / f"x_{mode}.png", mode=mode, size=(10, 6))
    img = load_rgb(path)
    assert img.mode == "RGB" and img.size == (6, 10)
    arr = np.asarray(img)
    if mode == "L":
        assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


def test_msmt17_list_files(tmp_path: Path) -> None:
    root = tmp_path / "MSMT17_V1"
    train_rel = [
        "0000/0000_000_01_0303morning_0015_0.jpg",
        "0000/0000_001_05_0303morning_0016_0.jpg",
        "0003/0003_000_14_0303noon_0001_1.jpg",
    ]
    for i, rel in enumerate(train_rel):
        write_image(root / "train" / rel, seed=i)
    write_image(root / "test" / "0005/0005_000_02_0303morning_0001_0.jpg", seed=9)
    write_image(root / "test" / "0005/0005_001_15_0303morning_0101_0.jpg", seed=10)
    (root / "list_train.txt").write_text(f"{train_rel[0]} 0\n{train_rel[1]} 0\n")
    (root / "list_val.txt").write_text(f"{train_rel[2]} 3\n")
    (root / "list_query.txt").write_text("0005/0005_000_02_0303morning_0001_0.jpg 5\n")
    (root / "list_gallery.txt").write_text("0005/0005_001_15_0303morning_0101_0.jpg 5\n")
    ds = build_dataset(f"msmt17:{root}")
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (0, 4), (1, 13)]
    assert ds.query[0].pid == 5 and ds.query[0].camid == 1 and ds.gallery[0].camid == 14
    assert Path(ds.train[2].path).is_file()
    assert len(build_dataset(f"msmt17:{root}", combine_val=False).train) == 2
    (root / "list_query.txt").write_text("garbage-line\n")
    with pytest.raises(DatasetLayoutError, match=r"list_query.txt:1"):
        build_dataset(f"msmt17:{root}")


def test_image_list_csv_and_txt(tmp_path: Path) -> None:
    for i in range(4):
        write_image(tmp_path / "imgs" / f"{i}.jpg", seed=i)
    (tmp_path / "train.csv").write_text(
        "path,pid,camid\nimgs/0.jpg,10,0\nimgs/1.jpg,30,1\nimgs/2.jpg,10,2\n"
    )
    (tmp_path / "query.txt").write_text("imgs/3.jpg 7 0\n")
    ds = build_dataset(f"imagelist:{tmp_path}")
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (1, 1), (0, 2)]
    assert ds.train[0].path == str(tmp_path / "imgs" / "0.jpg")
    assert ds.query[0].pid == 7 and ds.gallery == []
    ds2 = ImageListDataset(train=tmp_path / "train.csv")
    assert len(ds2.train) == 3
    (tmp_path / "gallery.csv").write_text("imgs/0.jpg,1,0\nimgs/0.jpg,1,0\n")
    with pytest.raises(DatasetLayoutError, match="duplicate entry imgs/0.jpg"):
        build_dataset(f"imagelist:{tmp_path}")
    (tmp_path / "gallery.csv").write_text("imgs/0.jpg,one,0\n")
    with pytest.raises(DatasetLayoutError, match=r"gallery.csv:1.*path,pid,camid"):
        build_dataset(f"imagelist:{tmp_path}")
    with pytest.raises(DatasetLayoutError, match="no list files"):
        ImageListDataset(tmp_path / "imgs")


def test_single_image_list_file_with_a_split_column(tmp_path: Path) -> None:
    """``imagelist:/data/list.csv`` (docs/cli.md): one file, rows path,pid,camid,split."""
    for i in range(5):
        write_image(tmp_path / "imgs" / f"{i}.jpg", seed=i)
    lst = tmp_path / "list.csv"
    lst.write_text(
        "path,pid,camid,split\n"
        "imgs/0.jpg,10,0,train\nimgs/1.jpg,30,1,train\n"
        "imgs/2.jpg,7,0,query\nimgs/3.jpg,7,1,gallery\nimgs/4.jpg,0,2,GALLERY\n"
    )
    ds = build_dataset(f"imagelist:{lst}")
    assert ds.name == "imagelist" and ds.root == str(tmp_path)
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (1, 1)]  # relabelled
    assert [(Path(r.path).name, r.pid, r.camid) for r in ds.query] == [("2.jpg", 7, 0)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(7, 1), (0, 2)]
    assert ds.query[0].path == str(tmp_path / "imgs" / "2.jpg")
    assert read_split_list(lst)["gallery"] == ds.gallery
    # a plain path,pid,camid list: ?split= names the split of every row
    (tmp_path / "q.txt").write_text("imgs/2.jpg 7 0\nimgs/3.jpg 7 1\n")
    q = build_dataset(f"imagelist:{tmp_path / 'q.txt'}?split=query")
    assert len(q.query) == 2 and q.train == [] and q.gallery == []
    with pytest.raises(DatasetLayoutError, match=r"q.txt:1: row has no split column.*\?split="):
        build_dataset(f"imagelist:{tmp_path / 'q.txt'}")
    (tmp_path / "bad.csv").write_text("imgs/0.jpg,1,0,val\n")
    with pytest.raises(DatasetLayoutError, match=r"bad.csv:1: split 'val'"):
        build_dataset(f"imagelist:{tmp_path / 'bad.csv'}")
    (tmp_path / "dup.csv").write_text("imgs/0.jpg,1,0,query\nimgs/0.jpg,1,0,query\n")
    with pytest.raises(DatasetLayoutError, match="dup.csv:2: duplicate entry imgs/0.jpg in split"):
        build_dataset(f"imagelist:{tmp_path / 'dup.csv'}")
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        build_dataset(f"imagelist:{tmp_path / 'missing.csv'}")
    with pytest.raises(DatasetLayoutError, match="single list file"):
        ImageListDataset(tmp_path, split="query")


def test_spec_errors_are_input_errors(tmp_path: Path) -> None:
    from semparts_reid.errors import InputError

    with pytest.raises(InputError, match=r"unknown option\(s\) \['sise'\].*accepted"):
        build_dataset(f"market1501:{tmp_path}?sise=3")
    with pytest.raises(InputError, match="unknown option"):
        build_dataset("synthetic:a?colour=red")
    with pytest.raises(InputError, match="size='huge'"):
        build_dataset("synthetic:a?size=huge")
    with pytest.raises(InputError, match="unknown dataset"):
        build_dataset("cuhk99:/x")
    with pytest.raises(InputError, match="not 'name:path'"):
        build_dataset("market1501")
    with pytest.raises(InputError, match="does not exist"):
        build_dataset("market1501:/no/such/folder")
