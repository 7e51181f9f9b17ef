"""Camera-style augmentation: CamStyle files first, colour-statistics transfer otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import make_tree
from PIL import Image

from semparts_reid.data import (
    CameraStyleAugmenter,
    ColorStatsTransfer,
    Market1501,
    ReIDImageDataset,
    build_dataset,
    build_transforms,
    find_camstyle_images,
)

CFG = {"input_size": (32, 16), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def _solid(path: Path, rgb: tuple[int, int, int], noise: int = 0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(rgb)[None, None] + rng.integers(-noise, noise + 1, (16, 8, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).save(path)


def test_colour_stats_fit_and_transfer(tmp_path: Path) -> None:
    root = tmp_path / "M"
    for d in ("query", "bounding_box_test"):
        make_tree(root, {d: ["0001_c1_0.jpg"]})
    for i in range(4):
        _solid(root / "bounding_box_train" / f"000{i}_c1_{i}.png", (200, 100, 50), noise=20, seed=i)
        _solid(
            root / "bounding_box_train" / f"000{i}_c2_{i}.png", (60, 90, 160), noise=5, seed=9 + i
        )
    ds = Market1501(root)
    stats = ColorStatsTransfer.fit(ds.train, size=(16, 8))
    assert stats.num_cams == 2
    assert np.allclose(stats.mean[0], [200, 100, 50], atol=2) and np.allclose(
        stats.mean[1], [60, 90, 160], atol=2
    )
    assert (stats.std[0] > stats.std[1]).all()
    # naive reference for the per-camera mean
    cam0 = [
        np.asarray(Image.open(r.path), np.float64).reshape(-1, 3) for r in ds.train if r.camid == 0
    ]
    assert np.allclose(stats.mean[0], np.concatenate(cam0).mean(0), atol=1e-3)
    img = np.asarray(Image.open(ds.train[0].path))
    moved = stats(img, ds.train[0].camid, 1 - ds.train[0].camid)
    target = 1 - ds.train[0].camid
    assert np.abs(moved.reshape(-1, 3).mean(0) - stats.mean[target]).max() < 25
    with pytest.raises(ValueError, match="dst=5"):
        stats(img, 0, 5)


def test_camstyle_files_are_used_and_index_kept(tmp_path: Path) -> None:
    ds = build_dataset("synthetic:a", size="tiny", root=tmp_path / "cache", progress=False)
    rec = ds.train[0]
    folder = Path(rec.path).parent
    stem = Path(rec.path).stem
    other = (rec.camid + 1) % 6
    fake = (
        folder.with_name(folder.name + "_camstyle")
        / f"{stem}_fake_{rec.camid + 1}to{other + 1}.jpg"
    )
    fake.parent.mkdir()
    Image.new("RGB", (64, 128), (255, 0, 255)).save(fake)
    found = find_camstyle_images(ds.train)
    assert found == {0: {other: str(fake)}}
    aug = CameraStyleAugmenter(ds.train)
    data = ReIDImageDataset(
        ds.train, build_transforms(CFG, train=True, erasing_p=0.0, pad=0), camstyle=aug
    )
    item = data[0]
    assert item["index"] == 0 and item["image_cam"].shape == item["image"].shape
    # the magenta CamStyle image is what image_cam shows
    centre = item["image_cam"][:, 12:20, 6:10] * 0.5 + 0.5
    assert torch.allclose(centre[0], torch.ones(8, 4), atol=0.02) and (centre[1] < 0.05).all()
    # without a file: colour transfer to another camera, same index, same crop/flip:
    # per channel image_cam is an affine function of image (up to clipping)
    torch.manual_seed(0)
    for i in range(1, 9):
        item = data[i]
        assert item["index"] == i and not torch.equal(item["image_cam"], item["image"])
        for c in range(3):
            pair = torch.stack([item["image"][c].flatten(), item["image_cam"][c].flatten()])
            assert torch.corrcoef(pair)[0, 1] > 0.95
    plain = ReIDImageDataset(ds.train, build_transforms(CFG))[1]
    assert "image_cam" not in plain


def test_dataset_items_and_part_maps(tmp_path: Path) -> None:
    ds = build_dataset("synthetic:b", size="tiny", root=tmp_path, progress=False)
    data = ReIDImageDataset(ds.query, build_transforms(CFG), part_maps=True)
    item = data[len(data) - 1]
    assert set(item) == {"image", "parts", "pid", "camid", "index", "path"}
    assert item["index"] == len(data) - 1 and item["pid"] == ds.query[-1].pid
    assert item["parts"].dtype == torch.int64 and set(item["parts"].unique().tolist()) <= {
        0,
        1,
        2,
        3,
    }
    no_parts = ReIDImageDataset(ds.query, build_transforms(CFG), part_maps=False)[0]
    assert (no_parts["parts"] == 255).all()
    root = make_tree(
        tmp_path / "M",
        {
            "bounding_box_train": ["0001_c1_0.jpg"],
            "query": ["0001_c1_1.jpg"],
            "bounding_box_test": ["0001_c2_0.jpg"],
        },
    )
    with pytest.raises(FileNotFoundError, match="missing part map"):
        ReIDImageDataset(Market1501(root).train, build_transforms(CFG), part_maps=True)[0]
    assert (
        ReIDImageDataset(Market1501(root).train, build_transforms(CFG))[0]["parts"] == 255
    ).all()


def _tiny_with_camstyle(tmp_path: Path, names: list[str]) -> tuple[object, Path]:
    ds = build_dataset("synthetic:a", size="tiny", root=tmp_path / "cache", progress=False)
    folder = Path(ds.train[0].path).parent
    style_dir = folder.with_name(folder.name + "_camstyle")
    style_dir.mkdir()
    for name in names:
        Image.new("RGB", (64, 128), (255, 0, 255)).save(style_dir / name)
    return ds, style_dir


def test_msmt17_camstyle_names_are_found(tmp_path: Path) -> None:
    """ECN's MSMT17 CamStyle (StarGAN) is <stem>_fake_<d>.jpg, without the source camera."""
    ds0 = build_dataset("synthetic:a", size="tiny", root=tmp_path / "cache", progress=False)
    rec = ds0.train[0]
    stem, d1, d2 = Path(rec.path).stem, (rec.camid + 1) % 6, (rec.camid + 2) % 6
    names = [f"{stem}_fake_{d1 + 1}.jpg", f"{stem}_fake_{d2 + 1}.jpg",
             f"{stem}_fake_{rec.camid + 1}.jpg"]  # its own camera: not a style to use
    ds, style_dir = _tiny_with_camstyle(tmp_path, names)
    assert find_camstyle_images(ds.train) == {
        0: {d1: str(style_dir / names[0]), d2: str(style_dir / names[1])}
    }
    # both ECN forms in one folder, two-digit cameras (MSMT17 has 15)
    other = ds.train[1]
    (style_dir / f"{Path(other.path).stem}_fake_{other.camid + 1}to12.jpg").write_bytes(
        (style_dir / names[0]).read_bytes()
    )
    assert find_camstyle_images(ds.train)[1] == {
        11: str(style_dir / f"{Path(other.path).stem}_fake_{other.camid + 1}to12.jpg")
    }


def test_unmatched_camstyle_folder_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds, style_dir = _tiny_with_camstyle(tmp_path, ["someone_else_fake_2.jpg", "x_fake_1to3.jpg"])
    with caplog.at_level("INFO", logger="semparts_reid.data.camstyle"):
        aug = CameraStyleAugmenter(ds.train)
    assert aug.files == {}
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert str(style_dir) in msg and "2 CamStyle-like file(s)" in msg
    assert "none matches" in msg and "colour-statistics transfer" in msg


def test_partial_camstyle_coverage_warns_and_full_coverage_does_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds0 = build_dataset("synthetic:a", size="tiny", root=tmp_path / "cache", progress=False)
    recs = ds0.train
    one = f"{Path(recs[0].path).stem}_fake_{(recs[0].camid + 1) % 6 + 1}.jpg"
    ds, style_dir = _tiny_with_camstyle(tmp_path, [one])
    with caplog.at_level("INFO", logger="semparts_reid.data.camstyle"):
        CameraStyleAugmenter(ds.train)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert f"CamStyle files for 1 of {len(recs)} images" in warnings[0]
    caplog.clear()
    for r in recs[1:]:
        name = f"{Path(r.path).stem}_fake_{(r.camid + 1) % 6 + 1}.jpg"
        (style_dir / name).write_bytes((style_dir / one).read_bytes())
    with caplog.at_level("INFO", logger="semparts_reid.data.camstyle"):
        aug = CameraStyleAugmenter(ds.train)
    assert len(aug.files) == len(recs)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert "CamStyle files for all" in caplog.text


def test_no_camstyle_files_is_said_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds = build_dataset("synthetic:a", size="tiny", root=tmp_path / "cache", progress=False)
    with caplog.at_level("INFO", logger="semparts_reid.data.camstyle"):
        CameraStyleAugmenter(ds.train)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert "no CamStyle files" in caplog.text and "colour-statistics transfer" in caplog.text
