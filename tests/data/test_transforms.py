"""Joint transforms keep image and part map aligned; data-config validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semparts_reid.data import JointTransform, build_transforms
from semparts_reid.data.transforms import check_data_config

CFG = {
    "input_size": (32, 16),
    "mean": (0.5, 0.4, 0.3),
    "std": (0.2, 0.25, 0.3),
    "interpolation": "bilinear",
}
# one distinct colour per part label; black = background so zero padding decodes as background
COLOURS = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)


def _scene(h: int = 32, w: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    parts = rng.integers(0, 4, (h, w)).astype(np.uint8)
    return COLOURS[parts], parts


def _decode(img: torch.Tensor, t: JointTransform) -> torch.Tensor:
    rgb = (img * t.std + t.mean) * 255.0  # (3, H, W)
    dist = ((rgb[None] - torch.tensor(COLOURS, dtype=torch.float32)[:, :, None, None]) ** 2).sum(1)
    return dist.argmin(0)


@pytest.mark.parametrize("seed", range(6))
def test_train_transform_keeps_image_and_map_aligned(seed: int) -> None:
    t = build_transforms(CFG, train=True, erasing_p=0.0, pad=4, flip_p=0.5)
    image, parts = _scene(seed=seed)
    torch.manual_seed(seed)
    img, lab = t(image, parts)
    assert img.shape == (3, 32, 16) and img.dtype == torch.float32
    assert lab.shape == (32, 16) and lab.dtype == torch.int64
    assert torch.equal(_decode(img, t), lab)


def test_flip_and_crop_follow_geometry() -> None:
    t = build_transforms(CFG, train=True, erasing_p=0.0, pad=3)
    test = build_transforms(CFG, train=False)
    image, parts = _scene(seed=7)
    ref_img, ref_lab = test(image, parts)
    img, lab = t(image, parts, geometry={"top": 3, "left": 3, "flip": True})
    assert torch.allclose(img, ref_img.flip(-1)) and torch.equal(lab, ref_lab.flip(-1))
    img, lab = t(image, parts, geometry={"top": 0, "left": 6, "flip": False})
    # shifted window: row r, col c of the output = row r-3, col c+3 of the input
    assert torch.equal(lab[3:, :-3], ref_lab[:-3, 3:])
    assert (lab[:3] == 0).all()  # padding of a labelled map is background
    assert torch.equal(_decode(img, t), lab)
    with pytest.raises(ValueError, match="offsets must lie"):
        t(image, parts, geometry={"top": 9, "left": 0, "flip": False})


def test_resize_uses_nearest_for_parts_and_test_is_deterministic() -> None:
    image, parts = _scene(64, 32, seed=1)
    t = build_transforms(CFG, train=False)
    img, lab = t(image, parts)
    assert img.shape == (3, 32, 16)
    assert set(lab.unique().tolist()) <= {0, 1, 2, 3}
    blocks = torch.from_numpy(parts.astype(np.int64)).reshape(32, 2, 16, 2).permute(0, 2, 1, 3)
    assert (blocks.reshape(32, 16, 4) == lab[..., None]).any(-1).all()  # a source pixel, no blend
    img2, lab2 = t(image, parts)
    assert torch.equal(img, img2) and torch.equal(lab, lab2)
    # no part map -> all ignore
    _, none = t(image)
    assert (none == 255).all()


def test_random_erasing_marks_parts_ignore() -> None:
    image, parts = _scene(seed=3)
    t = build_transforms(CFG, train=True, erasing_p=1.0, pad=0, flip_p=0.0)
    keep = build_transforms(CFG, train=True, erasing_p=1.0, pad=0, flip_p=0.0, erase_parts="keep")
    g = torch.Generator().manual_seed(0)
    img, lab = t(image, parts, generator=g)
    erased = lab == 255
    assert 0 < erased.sum() < lab.numel()
    assert torch.equal(lab[~erased], torch.from_numpy(parts.astype(np.int64))[~erased])
    _, lab_keep = keep(image, parts, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lab_keep, torch.from_numpy(parts.astype(np.int64)))


def test_colour_jitter_changes_image_not_parts() -> None:
    image, parts = _scene(seed=4)
    t = build_transforms(CFG, train=True, erasing_p=0.0, pad=0, flip_p=0.0, color_jitter=0.4)
    img, lab = t(np.full_like(image, 128), parts, generator=torch.Generator().manual_seed(1))
    assert torch.equal(lab, torch.from_numpy(parts.astype(np.int64)))
    plain = build_transforms(CFG, train=False)(np.full_like(image, 128))[0]
    assert not torch.allclose(img, plain)


def test_data_config_checks() -> None:
    assert check_data_config({"input_size": (3, 64, 32), "mean": (0, 0, 0), "std": (1, 1, 1)})[
        "input_size"
    ] == (64, 32)
    with pytest.raises(ValueError, match="lacks"):
        build_transforms({"input_size": (64, 32)})
    with pytest.raises(TypeError, match="data_config must be a dict"):
        build_transforms([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="std > 0"):
        build_transforms({**CFG, "std": (0, 1, 1)})
    with pytest.raises(ValueError, match="erase_parts"):
        build_transforms(CFG, train=True, erase_parts="zero")
    with pytest.raises(ValueError, match="parts shape"):
        build_transforms(CFG)(np.zeros((32, 16, 3), np.uint8), np.zeros((10, 10), np.uint8))
