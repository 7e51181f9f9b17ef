"""Training on a target without camera ids: camera-style augmentation switches off cleanly."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import tiny_config, tiny_model

from semparts_reid.data.datasets import build_dataset
from semparts_reid.engine.trainer import DomainAdaptTrainer


def _folder_copy(dataset: Any, root: Path, *, cameras: bool) -> Any:
    """``dataset`` as a ``folder:`` tree: one folder per identity, ``c<N>`` only if asked."""
    for split in ("train", "query", "gallery"):
        for i, rec in enumerate(getattr(dataset, split)):
            cam = f"_c{rec.camid + 1}" if cameras else ""
            out = root / split / f"id{rec.pid:04d}" / f"{i:05d}{cam}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rec.path, out)
    return build_dataset(f"folder:{root}")


def _camstyle_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "camera-style augmentation" in r.getMessage()]


def test_folder_target_without_cameras_trains_and_evaluates(
    tiny_pair: tuple[Any, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source, b = tiny_pair
    target = _folder_copy(b, tmp_path / "b_nocams", cameras=False)
    assert target.num_train_cams == 0 and target.num_images_without_camera == len(
        target.train + target.query + target.gallery
    )
    config = tiny_config(str(tmp_path / "run"), epochs=1)
    assert config.augment.camstyle  # on by default
    with caplog.at_level(logging.INFO):
        trainer = DomainAdaptTrainer(tiny_model(source.num_train_pids), source, target, config)
        trainer.adapt(1)
        metrics = trainer.evaluate()
    lines = _camstyle_lines(caplog)
    assert lines == [
        f"target has no camera id for {len(target.train)} of {len(target.train)} training "
        "images (camid -1): camera-style augmentation (ECN's camera invariance) off"
    ]
    # the caller's config untouched
    assert not trainer.config.augment.camstyle and config.augment.camstyle
    batch = next(trainer.batches.iterator("target", "adapt", 0, 1))
    assert "image_cam" not in batch
    assert trainer.history[-1]["target_memory"] > 0
    assert metrics.cameras == "unknown" and metrics.num_valid_queries == len(target.query)


def test_folder_target_with_cameras_keeps_camera_style(
    tiny_pair: tuple[Any, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source, b = tiny_pair
    target = _folder_copy(b, tmp_path / "b_cams", cameras=True)
    assert target.num_train_cams == b.num_train_cams and target.num_images_without_camera == 0
    with caplog.at_level(logging.WARNING):
        trainer = DomainAdaptTrainer(
            tiny_model(source.num_train_pids), source, target,
            tiny_config(str(tmp_path / "run"), epochs=1),
        )
    assert trainer.config.augment.camstyle and not _camstyle_lines(caplog)
    batch = next(trainer.batches.iterator("target", "adapt", 0, 1))
    assert "image_cam" in batch
