"""``predict_part_maps``: the part classifier's probabilities at image resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from inference_helpers import SIZE, tiny_model
from PIL import Image

from semparts_reid.errors import InputError, InputNotFoundError
from semparts_reid.inference import FeatureExtractor, predict_part_maps
from semparts_reid.models.factory import build_model


def _reference(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The maps by hand: normalise, forward, softmax, upsample to the input size."""
    cfg = model.data_config
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model.eval()((batch.float() / 255 - mean) / std).part_logits
    return F.interpolate(logits.softmax(1), size=SIZE, mode="bilinear", align_corners=False)


def test_maps_are_the_part_classifier_probabilities_at_input_size() -> None:
    model = tiny_model()
    batch = torch.randint(0, 256, (3, 3, *SIZE), dtype=torch.uint8)  # already input size
    maps = predict_part_maps(model, batch, device="cpu", precision="fp32")
    assert isinstance(maps, torch.Tensor) and maps.shape == (3, 4, *SIZE)
    torch.testing.assert_close(maps, _reference(model, batch), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(maps.sum(1), torch.ones(3, *SIZE), atol=1e-5, rtol=0)


def test_files_give_numpy_at_the_requested_size_and_train_mode_is_restored(
    tmp_path: Path,
) -> None:
    model = tiny_model().train()
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((100, 44, 3), 60 * i, np.uint8)).save(paths[-1])
    maps = predict_part_maps(model, paths, size=(100, 44), device="cpu", precision="fp32")
    assert isinstance(maps, np.ndarray) and maps.shape == (2, 4, 100, 44)
    assert maps.dtype == np.float32
    assert model.training  # restored
    small = predict_part_maps(model, paths, device="cpu", precision="fp32")
    assert small.shape == (2, 4, *SIZE)  # default: the model's input size


def test_an_extractor_is_used_as_it_is() -> None:
    model = tiny_model()
    extractor = FeatureExtractor(model, device="cpu", precision="fp32", batch_size=2)
    crops = [np.random.default_rng(i).integers(0, 256, (70, 30, 3), np.uint8) for i in range(5)]
    via_extractor = predict_part_maps(extractor, crops)
    via_model = predict_part_maps(model, crops, device="cpu", precision="fp32", batch_size=5)
    np.testing.assert_allclose(via_extractor, via_model, atol=1e-5)
    bgr = predict_part_maps(extractor, [c[..., ::-1] for c in crops], bgr=True)
    np.testing.assert_allclose(bgr, via_model, atol=1e-5)


def test_empty_input_and_bad_input() -> None:
    model = tiny_model()
    assert predict_part_maps(model, [], device="cpu").shape == (0, 4, *SIZE)
    with pytest.raises(InputNotFoundError, match="no/such.png"):
        predict_part_maps(model, ["no/such.png"], device="cpu")
    with pytest.raises(InputError, match=r"size=\(0, 4\)"):
        predict_part_maps(model, [], size=(0, 4), device="cpu")
    with pytest.raises(TypeError, match="model_or_extractor"):
        predict_part_maps("semparts_resnet18", [], device="cpu")  # type: ignore[arg-type]
    global_only = build_model("ecn_resnet18", input_size=SIZE)
    with pytest.raises(InputError, match="predicts no part maps"):
        predict_part_maps(global_only, np.zeros((1, 64, 32, 3), np.uint8), device="cpu")
