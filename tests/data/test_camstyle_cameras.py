"""Camera-style augmentation needs camera ids: records with camid -1 are refused clearly."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from data_helpers import write_image

from semparts_reid.data.camstyle import (
    CameraStyleAugmenter,
    ColorStatsTransfer,
    camera_style_possible,
    count_unknown_cameras,
)
from semparts_reid.data.records import ImageRecord


def _records(tmp_path: Path, cams: list[int]) -> list[ImageRecord]:
    return [
        ImageRecord(str(write_image(tmp_path / f"{i}.png", seed=i)), i % 2, c)
        for i, c in enumerate(cams)
    ]


def test_unknown_cameras_are_counted_and_refused(tmp_path: Path) -> None:
    recs = _records(tmp_path, [0, -1, 1, -1])
    assert count_unknown_cameras(recs) == 2
    assert count_unknown_cameras([(r.path, r.pid, r.camid) for r in recs[:1]]) == 0
    with pytest.raises(ValueError, match=r"1\.png has camid -1 \(unknown\) and 2 of 4"):
        CameraStyleAugmenter(recs)
    with pytest.raises(ValueError, match="TrainConfig.camstyle"):
        ColorStatsTransfer.fit(recs)


def test_camera_style_possible_logs_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="semparts_reid.data.camstyle"):
        assert camera_style_possible(_records(tmp_path, [0, 1]))
        assert not caplog.records
        assert not camera_style_possible(_records(tmp_path, [0, -1, -1]), what="my data")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "my data has no camera id for 2 of 3 training images (camid -1): "
         "camera-style augmentation (ECN's camera invariance) off")
    ]
