"""Part maps as the trainer ships them: uint8 at the input size, or not at all."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import write_image
from PIL import Image

from semparts_reid.data.image_dataset import ReIDImageDataset
from semparts_reid.data.records import ImageRecord
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


# ---------------------------------------------------------------- staged images


def _kw(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return dict(input_size=(int(rng.integers(16, 64)), int(rng.integers(16, 32))),
                mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), train=bool(seed % 3),
                pad=int(rng.integers(0, 5)), flip_p=0.5, erasing_p=float(rng.random()),
                erase_parts=("ignore", "keep", "background")[seed % 3])


@pytest.mark.parametrize("seed", range(6))
def test_staged_then_finished_equals_the_transform_exactly(seed: int) -> None:
    from semparts_reid.data.transforms import finish_images

    kw = _kw(seed)
    t = JointTransform(**kw)  # type: ignore[arg-type]
    pairs = [_pair(seed * 10 + i) for i in range(4)]
    torch.manual_seed(seed)
    whole = [t(im, p) for im, p in pairs]
    torch.manual_seed(seed)
    staged = [t.staged(im, p) for im, p in pairs]
    assert all(s[0].dtype == torch.uint8 for s in staged)
    for pixels in (torch.stack([s[0] for s in staged]), [s[0] for s in staged]):
        out = finish_images(pixels, kw["mean"], kw["std"], [s[2] for s in staged])
        assert torch.equal(out, torch.stack([w[0] for w in whole]))
    assert all(torch.equal(w[1], s[1]) for w, s in zip(whole, staged))  # type: ignore[arg-type]


def test_staged_and_finish_reject_what_they_cannot_do() -> None:
    from semparts_reid.data.transforms import finish_images

    with pytest.raises(ValueError, match="color_jitter"):
        JointTransform(train=True, color_jitter=0.2, **CFG).staged(_pair(0)[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected uint8"):
        finish_images(torch.zeros(1, 3, 4, 4), (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(ValueError, match="2 erase entries for 1 images"):
        finish_images(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), (0.5,) * 3, (0.5,) * 3,
                      [None, None])


@pytest.mark.parametrize("factor", [(2, 2), (3, 1), (1, 4), (2, 3)])
def test_whole_factor_upsampling_gives_pils_pixels(factor: tuple[int, int]) -> None:
    """The torch uint8 kernel used for whole up-sampling factors equals PIL exactly."""
    from semparts_reid.data.transforms import _resize, _resize_labels

    rng = np.random.default_rng(factor[0] * 7 + factor[1])
    for _ in range(10):
        h, w = int(rng.integers(8, 80)), int(rng.integers(8, 40))
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        size = (h * factor[0], w * factor[1])
        ref = np.array(Image.fromarray(arr).resize(size[::-1], Image.Resampling.BILINEAR))
        got = _resize(torch.from_numpy(arr).permute(2, 0, 1), size, "bilinear")
        assert np.array_equal(got.permute(1, 2, 0).numpy(), ref)
        lab = rng.integers(0, 256, (h, w)).astype(np.uint8)
        ref_lab = np.array(Image.fromarray(lab).resize(size[::-1], Image.Resampling.NEAREST))
        assert np.array_equal(_resize_labels(lab, size).numpy(), ref_lab)
    # other sizes go through PIL (labels too)
    lab = rng.integers(0, 4, (30, 20)).astype(np.uint8)
    ref_lab = np.array(Image.fromarray(lab).resize((13, 41), Image.Resampling.NEAREST))
    assert np.array_equal(_resize_labels(lab, (41, 13)).numpy(), ref_lab)


def test_staged_dataset_items_finish_to_the_plain_items(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from semparts_reid.data.camstyle import CameraStyleAugmenter
    from semparts_reid.data.transforms import finish_images

    records = []
    for i in range(4):
        path = write_image(tmp_path / f"000{i}_c{1 + i % 2}s1_00000{i}_00.jpg", seed=i,
                           size=(40, 20))
        records.append(ImageRecord(str(path), i // 2, i % 2))
    style = CameraStyleAugmenter(records)
    t = JointTransform(train=True, erasing_p=0.7, **CFG)  # type: ignore[arg-type]
    plain = ReIDImageDataset(records, t, camstyle=style)
    staged = ReIDImageDataset(records, t, camstyle=style, staged=True)
    for i in range(4):
        torch.manual_seed(i)
        a = plain[i]
        torch.manual_seed(i)
        b = staged[i]
        for key in ("image", "image_cam"):
            assert b[key].dtype == torch.uint8
            out = finish_images(b[key][None], *t.mean_std, [b[f"{key}_erase"]])
            assert torch.equal(out[0], a[key])
        assert torch.equal(a["parts"], b["parts"])
    with pytest.raises(ValueError, match="staged=True needs a JointTransform"):
        ReIDImageDataset(records, lambda im, p, geometry=None: (im, p), staged=True)  # type: ignore[arg-type]


def test_other_transforms_still_receive_pil_images(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_image(tmp_path / "0001_c1s1_000001_00.jpg", size=(40, 20))
    seen = []

    def transform(image, parts, geometry=None):  # type: ignore[no-untyped-def]
        seen.append(type(image))
        return torch.zeros(3, 2, 2), torch.zeros(2, 2, dtype=torch.int64)

    ReIDImageDataset([(str(path), 0, 0)], transform)[0]  # type: ignore[arg-type]
    assert seen == [Image.Image]
