"""DomainAdaptTrainer.load_weights: skipped keys are reported at WARNING, another
architecture raises (unless strict=False)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import tiny_config, tiny_model

from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.hub import WeightsMismatchError


def _trainer(tiny_pair: tuple[Any, Any], out: Path) -> DomainAdaptTrainer:
    a, b = tiny_pair
    return DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, tiny_config(str(out)))


def _snapshot(trainer: DomainAdaptTrainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_other_source_classifier_is_skipped_with_a_warning(
    tiny_pair: tuple[Any, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trainer = _trainer(tiny_pair, tmp_path)
    before = _snapshot(trainer)
    other = tiny_model(tiny_pair[0].num_train_pids + 3, seed=1)  # another source's classifier
    path = tmp_path / "other_source.pt"
    torch.save({"model": other.state_dict()}, path)
    with caplog.at_level(logging.INFO, logger="semparts_reid"):
        trainer.load_weights(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert str(path) in warnings[0]
    assert "shape mismatch (1): id_classifier.weight" in warnings[0]
    for key, value in trainer.model.state_dict().items():
        expected = before[key] if key == "id_classifier.weight" else other.state_dict()[key]
        assert torch.equal(value, expected), key


def test_checkpoint_of_another_architecture_raises(
    tiny_pair: tuple[Any, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trainer = _trainer(tiny_pair, tmp_path)
    before = _snapshot(trainer)
    other = tiny_model(tiny_pair[0].num_train_pids, "semparts_resnet50", seed=1)
    path = tmp_path / "other_arch.pt"
    torch.save({"model": other.state_dict()}, path)
    with pytest.raises(WeightsMismatchError, match=r"other_arch\.pt: the weights fill only "
                       r"11 of the 26 weight kernels of the model \(42%"):
        trainer.load_weights(path)
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[key]), key  # nothing was loaded
    with caplog.at_level(logging.INFO, logger="semparts_reid"):
        trainer.load_weights(path, strict=False)
    assert torch.equal(trainer.model.backbone.conv1.weight, other.backbone.conv1.weight)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "shape mismatch (" in warnings[0], caplog.text


def test_strict_true_refuses_any_difference(tiny_pair: tuple[Any, Any], tmp_path: Path) -> None:
    trainer = _trainer(tiny_pair, tmp_path)
    state = dict(tiny_model(tiny_pair[0].num_train_pids, seed=1).state_dict())
    del state["global_neck.bias"]
    with pytest.raises(RuntimeError, match="missing in weights \\(1\\): global_neck.bias"):
        trainer.load_weights(state, strict=True)
    trainer.load_weights(state)  # the default loads what matches
    assert torch.equal(trainer.model.global_neck.weight, state["global_neck.weight"])
