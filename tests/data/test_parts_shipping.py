"""Part maps as the trainer ships them: uint8 at the input size, or not at all."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import write_image
from PIL import Image

from semparts_reid.data.image_dataset import ReIDImageDataset
from semparts_reid.data.transforms import JointTransform

CFG = dict(input_size=(32, 16), mean=(0.5,) * 3, std=(0.25,) * 3)


def _pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)
    parts = rng.integers(0, 4, (40, 20)).astype(np.uint8)
    parts[:3] = 255
    return image, parts


@pytest.mark.parametrize("seed", range(3))
def test_uint8_maps_hold_the_int64_values(seed: int) -> None:
    image, parts = _pair(seed)
    wide, narrow = (JointTransform(train=True, label_dtype=d, **CFG)  # type: ignore[arg-type]
                    for d in (torch.int64, torch.uint8))
    torch.manual_seed(seed)
    img64, lab64 = wide(image, parts)
    torch.manual_seed(seed)
    img8, lab8 = narrow(image, parts)
    assert lab64 is not None and lab8 is not None
    assert lab64.dtype == torch.int64 and lab8.dtype == torch.uint8
    assert lab8.shape == (32, 16) and torch.equal(lab8.long(), lab64)
    assert torch.equal(img8, img64)
    with pytest.raises(ValueError, match="label_dtype"):
        JointTransform(label_dtype=torch.int32, **CFG)  # type: ignore[arg-type]


def test_skipping_the_label_map_keeps_the_image_and_the_draws() -> None:
    image, _ = _pair(0)
    t = JointTransform(train=True, erasing_p=1.0, **CFG)  # type: ignore[arg-type]
    torch.manual_seed(1)
    with_map, lab = t(image, None)
    after = torch.rand(1)
    torch.manual_seed(1)
    without, none = t(image, None, labels=False)
    assert none is None and lab is not None and (lab == 255).all()
    assert torch.equal(with_map, without) and torch.equal(torch.rand(1), after)


def test_dataset_omits_parts_without_a_part_loss(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_image(tmp_path / "0001_c1s1_000001_00.jpg", size=(40, 20))
    Image.fromarray(np.ones((40, 20), np.uint8)).save(tmp_path / "0001_c1s1_000001_00.parts.png")
    t = JointTransform(train=True, label_dtype=torch.uint8, **CFG)  # type: ignore[arg-type]
    with_parts = ReIDImageDataset([(str(path), 0, 0)], t)
    item = with_parts[0]
    assert item["parts"].dtype == torch.uint8 and (item["parts"] != 255).any()
    bare = ReIDImageDataset([(str(path), 0, 0)], t, with_parts=False)
    torch.manual_seed(0)
    a = bare[0]
    torch.manual_seed(0)
    b = with_parts[0]
    assert "parts" not in a and set(a) == set(b) - {"parts"}
    assert torch.equal(a["image"], b["image"])  # the same augmentation either way
