"""The ``folder:`` spec: ``root/{train,query,gallery}/<identity>/<image>`` trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_helpers import make_tree, write_image

from semparts_reid.data import UNKNOWN_CAMERA, FolderDataset, build_dataset, list_datasets
from semparts_reid.data.folder_layout import camera_from_name
from semparts_reid.data.records import DatasetLayoutError
from semparts_reid.errors import InputError

TREE = {
    "train": ["zoe/a.jpg", "zoe/b.jpg", "10/x_c2_1.jpg", "2/y.png", "2/y.parts.png"],
    "query": ["bob/q_c1_001.jpg", "alice/q1.jpg"],
    "gallery": ["alice/g1.jpg", "alice/g2_c3.jpg", "bob/g_c1_002.jpg", "carol/g.jpg"],
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "mine", TREE)


def test_reads_identities_from_folder_names(tree: Path) -> None:
    ds = build_dataset(f"folder:{tree}")
    assert ds.name == "folder" and "folder" in list_datasets()
    # train: names sorted numbers first by value ("2" < "10"), then "zoe": ids 0, 1, 2
    train = {(Path(r.path).relative_to(tree / "train").as_posix(), r.pid) for r in ds.train}
    assert train == {("2/y.png", 0), ("10/x_c2_1.jpg", 1), ("zoe/a.jpg", 2), ("zoe/b.jpg", 2)}
    assert ds.num_train_pids == 3
    # query/gallery share one numbering over both: alice 0, bob 1, carol 2
    pid = {Path(r.path).name: r.pid for r in ds.query + ds.gallery}
    assert pid == {"q_c1_001.jpg": 1, "q1.jpg": 0, "g1.jpg": 0, "g2_c3.jpg": 0,
                   "g_c1_002.jpg": 1, "g.jpg": 2}  # fmt: skip


def test_camera_from_c_number_else_unknown(tree: Path) -> None:
    ds = FolderDataset(tree)
    cam = {Path(r.path).name: r.camid for r in ds.train + ds.query + ds.gallery}
    assert cam["q_c1_001.jpg"] == 0  # c1 is the first camera, as in Market-1501
    assert cam["g2_c3.jpg"] == 2 and cam["x_c2_1.jpg"] == 1
    assert cam["q1.jpg"] == cam["a.jpg"] == UNKNOWN_CAMERA == -1
    assert ds.num_train_cams == 1  # known cameras only
    assert ds.num_images_without_camera == 6
    assert ds.summary()["gallery"]["cams"] == 2
    assert "6 images without a camera id: camid -1" in ds.summary_table()


@pytest.mark.parametrize(
    ("name", "camid"),
    [("img_c3_001.jpg", 2), ("0002_c1s1_000451_03.jpg", 0), ("cam-C12.png", 11),
     ("pic3.jpg", -1), ("c3po.jpg", 2), ("c3po2.jpg", 2), ("disc12.jpg", -1),
     ("x_c12345.jpg", 12344), ("frame_007.jpg", -1)],
)  # fmt: skip
def test_camera_from_name(name: str, camid: int) -> None:
    assert camera_from_name(name) == camid


def test_c0_is_an_error_naming_the_file() -> None:
    with pytest.raises(DatasetLayoutError, match=r"c0 in .*img_c0_1.jpg.*1-based"):
        camera_from_name("/d/img_c0_1.jpg")


def test_train_is_optional(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "evalonly", {k: v for k, v in TREE.items() if k != "train"})
    ds = build_dataset(f"folder:{root}")
    assert ds.train == [] and len(ds.query) == 2 and len(ds.gallery) == 4


def test_missing_root_and_splits_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"folder dataset root .*nowhere does not exist"):
        build_dataset(f"folder:{tmp_path / 'nowhere'}")
    write_image(tmp_path / "half" / "query" / "a" / "1.jpg")
    with pytest.raises(DatasetLayoutError, match=r"root .*half has no gallery/ folder"):
        build_dataset(f"folder:{tmp_path / 'half'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"has no query/ and no gallery/ folder"):
        build_dataset(f"folder:{tmp_path / 'empty'}")


def test_stray_images_and_empty_splits(tmp_path: Path) -> None:
    layout = {"query": ["a/1.jpg", "loose.jpg"], "gallery": ["a/2.jpg"]}
    root = make_tree(tmp_path / "stray", layout)
    with pytest.raises(DatasetLayoutError, match=r"loose.jpg lies directly in .*query"):
        FolderDataset(root)
    root = make_tree(tmp_path / "nogal", {"query": ["a/1.jpg"]})
    (root / "gallery" / "a").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=r"no images in .*gallery"):
        FolderDataset(root)


def test_unknown_option_is_rejected(tree: Path) -> None:
    with pytest.raises(InputError, match="unknown option"):
        build_dataset(f"folder:{tree}?camera=1")
