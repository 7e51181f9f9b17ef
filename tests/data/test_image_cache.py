"""ReIDImageDataset(cache=True): each file decoded once, the same items as without."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import write_image
from PIL import Image

from semparts_reid.data import image_dataset
from semparts_reid.data.image_dataset import ReIDImageDataset
from semparts_reid.data.transforms import JointTransform

CFG = dict(input_size=(32, 16), mean=(0.5,) * 3, std=(0.25,) * 3)


def _records(tmp_path: Path, n: int = 3) -> list[tuple[str, int, int]]:
    records = []
    rng = np.random.default_rng(0)
    for i in range(n):
        path = write_image(tmp_path / f"{i + 1:04d}_c1s1_000001_00.jpg", size=(40, 20))
        parts = rng.integers(0, 4, (40, 20)).astype(np.uint8)
        Image.fromarray(parts).save(tmp_path / f"{i + 1:04d}_c1s1_000001_00.parts.png")
        records.append((str(path), i, 0))
    return records


@pytest.mark.parametrize("staged", [False, True])
def test_cached_items_equal_uncached_and_files_are_read_once(tmp_path, monkeypatch,
                                                             staged: bool) -> None:
    records = _records(tmp_path)
    t = JointTransform(train=True, erasing_p=0.5, label_dtype=torch.uint8, **CFG)  # type: ignore[arg-type]
    reads: list[str] = []
    real = image_dataset.load_rgb_array

    def counting(path):  # type: ignore[no-untyped-def]
        reads.append(str(path))
        return real(path)

    monkeypatch.setattr(image_dataset, "load_rgb_array", counting)
    plain = ReIDImageDataset(records, t, staged=staged)
    cached = ReIDImageDataset(records, t, staged=staged, cache=True)
    for epoch in range(3):
        for i in range(len(records)):
            torch.manual_seed(10 * epoch + i)
            a = plain[i]
            torch.manual_seed(10 * epoch + i)
            b = cached[i]
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["parts"], b["parts"])
    assert len(reads) == 3 * len(records) + len(records)  # uncached: every epoch; cached: once
    assert sorted(set(reads)) == sorted(r[0] for r in records)


def test_cached_arrays_cannot_be_changed_in_place(tmp_path) -> None:
    records = _records(tmp_path, 1)
    t = JointTransform(train=False, label_dtype=torch.uint8, **CFG)  # type: ignore[arg-type]
    data = ReIDImageDataset(records, t, cache=True)
    data[0]
    rgb, parts, _ = data._decoded[0]
    assert parts is not None
    with pytest.raises(ValueError, match="read-only"):
        rgb[0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        parts[0, 0] = 1


def test_no_cache_by_default(tmp_path) -> None:
    records = _records(tmp_path, 1)
    t = JointTransform(train=False, **CFG)  # type: ignore[arg-type]
    data = ReIDImageDataset(records, t)
    data[0]
    assert not data.cache and data._decoded == {}
