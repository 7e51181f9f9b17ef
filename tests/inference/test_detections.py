"""Jittered ground truth, NMS, the HOG people detector and detection recall/precision."""

from __future__ import annotations

import numpy as np
import pytest

from semparts_reid.inference.detections import (
    detection_recall_precision,
    jitter_ground_truth,
    nms_xywh,
)
from semparts_reid.metrics.tracking import box_iou_xywh

GT = np.array([[f, pid, 10.0 * pid, 20.0, 40.0, 100.0] for f in range(1, 51) for pid in (1, 2, 3)])


def test_jitter_is_deterministic_per_seed_and_order_free() -> None:
    a = jitter_ground_truth(GT, seed=3)
    b = jitter_ground_truth(GT[::-1], seed=3)
    c = jitter_ground_truth(GT, seed=4)
    assert a.keys() == b.keys() == set(range(1, 51))
    assert all(np.array_equal(a[f], b[f]) for f in a)
    assert any(not np.array_equal(a[f], c[f]) for f in a)


def test_jitter_drops_and_moves_boxes_in_proportion() -> None:
    dets = jitter_ground_truth(GT, drop=0.1, jitter=0.05, seed=0)
    kept = np.concatenate(list(dets.values()))
    assert kept.shape[1] == 5 and np.all(kept[:, 4] == 1.0)
    assert 0.8 * len(GT) < len(kept) < len(GT)  # about 10 % dropped (150 boxes)
    # centre offsets have a standard deviation of about 5 % of the box size
    cy = kept[:, 1] + kept[:, 3] / 2
    assert 2.0 < np.std(cy - 70.0) < 8.0  # 5 % of h = 100 px
    exact = jitter_ground_truth(GT, drop=0.0, jitter=0.0)
    np.testing.assert_allclose(np.concatenate(list(exact.values()))[:, :4], GT[:, 2:6])
    with pytest.raises(ValueError, match="drop"):
        jitter_ground_truth(GT, drop=1.0)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = [[0, 0, 10, 10], [1, 0, 10, 10], [50, 50, 10, 10]]
    np.testing.assert_array_equal(nms_xywh(boxes, [0.5, 0.9, 0.1], 0.4), [1, 2])


def test_recall_precision() -> None:
    dets = {1: np.array([[10, 20, 40, 100, 1.0], [300, 300, 10, 10, 1.0]])}
    r, p = detection_recall_precision(GT[GT[:, 0] == 1], dets)
    assert (r, p) == (pytest.approx(1 / 3), 0.5)


def test_hog_detector_returns_boxes_in_frame_pixels() -> None:
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        pytest.skip("this OpenCV has no HOG people detector (OpenCV 5)")
    from semparts_reid.inference.detections import HOGPeopleDetector

    frame = np.full((240, 320, 3), 200, np.uint8)  # a dark person-like silhouette
    for x1, y1, x2, y2 in ((145, 74, 175, 135), (146, 135, 157, 190), (163, 135, 174, 190),
                           (137, 76, 144, 125), (176, 76, 183, 125)):
        frame[y1:y2 + 1, x1:x2 + 1] = 40  # torso, legs, arms
    cv2.circle(frame, (160, 60), 12, (40, 40, 40), -1)  # head
    figure = np.array([[137.0, 48.0, 47.0, 143.0]])  # its bounding box, x, y, w, h
    for upscale in (1.0, 1.5):
        out = HOGPeopleDetector(upscale=upscale)(frame)
        assert out.ndim == 2 and out.shape[1] == 5 and out.dtype == np.float64
        assert len(out) >= 1 and np.all(np.diff(out[:, 4]) <= 0)  # best first
        assert box_iou_xywh(out[:1, :4], figure)[0, 0] > 0.5  # in original pixels
    assert len(HOGPeopleDetector()(np.full((240, 320, 3), 200, np.uint8))) == 0
    assert HOGPeopleDetector().detect_frames([(7, frame)]).keys() == {7}
    with pytest.raises(ValueError, match="uint8"):
        HOGPeopleDetector()(frame.astype(np.float32))
