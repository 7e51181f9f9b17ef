"""Dataset items with a human parser's maps: as ``parts`` labels and as ``pool_parts``,
through the image's own geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semparts_reid.data.image_dataset import ReIDImageDataset
from semparts_reid.data.transforms import JointTransform


def _setup(tmp_path: Path) -> tuple[list[tuple[str, int, int]], dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    records, maps = [], {}
    for i in range(4):
        path = str(tmp_path / f"c{i}.png")
        Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(path)
        Image.fromarray(np.full((32, 16), 1, np.uint8)).save(tmp_path / f"c{i}.parts.png")
        if i % 2 == 0:
            lab = np.zeros((32, 16), np.uint8)
            lab[:10], lab[10:20], lab[20:] = 1, 2, 3
            maps[path] = lab
        records.append((path, i, 0))
    return records, maps


def test_parser_labels_replace_the_maps_beside_the_images(tmp_path: Path) -> None:
    records, maps = _setup(tmp_path)
    t = JointTransform((64, 32), (0.5,) * 3, (0.5,) * 3, train=True, erasing_p=0.0,
                       label_dtype=torch.uint8)
    ds = ReIDImageDataset(records, t, parser_maps=maps.get, parser_labels=True,
                          parser_pool=True)
    for i in range(4):
        torch.manual_seed(i)
        item = ds[i]
        has = records[i][0] in maps
        assert bool((item["parts"] != 255).any()) == has
        # no erasing: the labels and the pooling masks are one map through one geometry
        assert torch.equal(item["parts"], item["pool_parts"])
        if has:
            assert set(item["pool_parts"].unique().tolist()) <= {0, 1, 2, 3}
    plain = ReIDImageDataset(records, t)  # defaults: the maps beside the images
    torch.manual_seed(1)
    assert "pool_parts" not in plain[1] and int(plain[1]["parts"].max()) == 1


def test_the_pooling_map_follows_the_image_and_is_never_erased(tmp_path: Path) -> None:
    records, maps = _setup(tmp_path)
    t = JointTransform((64, 32), (0.5,) * 3, (0.5,) * 3, train=True, erasing_p=1.0)
    ds = ReIDImageDataset(records, t, parser_maps=maps.get, parser_pool=True)
    torch.manual_seed(3)
    item = ds[0]
    torch.manual_seed(3)
    geo = t.sample_geometry()
    assert torch.equal(item["pool_parts"], t.labels_only(maps[records[0][0]], geo))
    # the labels beside the image (class 1, background in the padding), erased (255)
    assert set(item["parts"].unique().tolist()) <= {0, 1, 255}
    assert bool((item["parts"] == 255).any())
    assert bool((item["pool_parts"] != 255).all())
    assert bool((ds[1]["pool_parts"] == 255).all())  # no parser map: all 255
    with pytest.raises(ValueError, match="need parser_maps"):
        ReIDImageDataset(records, t, parser_pool=True)
