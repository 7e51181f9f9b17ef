"""Tracker adapters: the deep-sort-realtime ``predict`` and boxmot ``get_features`` contracts."""

from __future__ import annotations

import numpy as np
import pytest
from inference_helpers import StandIn
from torch import nn

from semparts_reid.inference import FeatureExtractor, TrackerEmbedder, clip_boxes, crop_boxes


def test_clip_boxes_rounds_outwards_and_clips() -> None:
    boxes = np.array([
        [10.4, 20.6, 30.2, 40.9],  # fractional -> floor/ceil
        [-5, -5, 20, 30],  # partly outside
        [90, 50, 120, 80],  # past the right/bottom edge
        [30, 40, 10, 20],  # corners swapped
        [200, 200, 300, 300],  # wholly outside -> one border pixel
        [5, 5, 5, 5],  # zero area -> one pixel
    ])
    out = clip_boxes(boxes, height=60, width=100)
    expected = [
        [10, 20, 31, 41],
        [0, 0, 20, 30],
        [90, 50, 100, 60],
        [10, 20, 30, 40],
        [99, 59, 100, 60],
        [5, 5, 6, 6],
    ]
    assert out.dtype == np.int64 and out.tolist() == expected
    assert clip_boxes(np.zeros((0, 4)), 10, 10).shape == (0, 4)
    assert clip_boxes(np.array([[1, 2, 3, 4, 0.9, 0]]), 10, 10).tolist() == [[1, 2, 3, 4]]
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        clip_boxes(np.array([1, 2, 3]), 10, 10)
    with pytest.raises(ValueError, match="NaN"):
        clip_boxes(np.array([[0, 0, np.nan, 4]]), 10, 10)


def test_crop_boxes_are_views_of_the_frame() -> None:
    frame = np.arange(60 * 100 * 3, dtype=np.int64).reshape(60, 100, 3).astype(np.uint8)
    crops = crop_boxes(frame, [[10, 20, 30, 40], [-3, -3, 5, 5]])
    assert crops[0].shape == (20, 20, 3) and crops[1].shape == (5, 5, 3)
    assert np.shares_memory(crops[0], frame)
    with pytest.raises(ValueError, match="frame"):
        crop_boxes(frame[..., 0], [[0, 0, 1, 1]])


@pytest.fixture()
def embedder(tiny_model: nn.Module) -> TrackerEmbedder:
    return TrackerEmbedder(tiny_model, device="cpu", precision="fp32", batch_size=4)


def test_get_features_equals_extractor_on_manual_crops(embedder: TrackerEmbedder) -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[0, 0, 40, 90], [100, 10, 150, 119], [-10, 50, 30, 200],
                      [60, 30, 90, 100], [5, 5, 45, 95]], dtype=np.float32)
    feats = embedder.get_features(boxes, frame)
    assert feats.shape == (5, 512) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    manual = [frame[0:90, 0:40], frame[10:119, 100:150], frame[50:120, 0:30],
              frame[30:100, 60:90], frame[5:95, 5:45]]
    ref = embedder.extractor(manual, bgr=True)
    np.testing.assert_allclose(feats, ref, atol=1e-5)
    # BGR handling: the same crops given as RGB with bgr=False agree
    rgb = [np.ascontiguousarray(c[..., ::-1]) for c in manual]
    np.testing.assert_allclose(embedder.extractor(rgb, bgr=False), ref, atol=1e-5)
    assert embedder.get_features(np.zeros((0, 4)), frame).shape == (0, 512)
    np.testing.assert_allclose(embedder(boxes, frame), feats, atol=1e-6)


def test_predict_returns_one_vector_per_crop(embedder: TrackerEmbedder) -> None:
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(90, 40), (50, 30)]]
    out = embedder.predict(crops)
    assert isinstance(out, list) and len(out) == 2
    assert all(v.shape == (512,) and v.dtype == np.float32 for v in out)
    np.testing.assert_allclose(np.stack(out), embedder.extractor(crops, bgr=True), atol=1e-6)
    assert embedder.predict([]) == []
    rgb = embedder.predict([np.ascontiguousarray(c[..., ::-1]) for c in crops], bgr=False)
    np.testing.assert_allclose(np.stack(rgb), np.stack(out), atol=1e-5)


def test_wraps_an_existing_extractor(stand_in: StandIn) -> None:
    ext = FeatureExtractor(stand_in, device="cpu")
    assert TrackerEmbedder(ext).extractor is ext
    with pytest.raises(TypeError, match="extractor options"):
        TrackerEmbedder(ext, batch_size=3)


class _Detections:
    """A duck-typed detections object: only an ``xyxy`` array, like supervision's."""

    def __init__(self, xyxy: np.ndarray) -> None:
        self.xyxy = xyxy


def test_get_features_takes_an_object_with_xyxy(embedder: TrackerEmbedder) -> None:
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[0, 0, 40, 90], [100, 10, 150, 119]], dtype=np.float64)
    feats = embedder.get_features(_Detections(boxes), frame)
    np.testing.assert_allclose(feats, embedder.get_features(boxes, frame), atol=1e-6)
    assert embedder.get_features(_Detections(np.zeros((0, 4))), frame).shape == (0, 512)


def test_get_features_takes_supervision_detections(embedder: TrackerEmbedder) -> None:
    sv = pytest.importorskip("supervision")
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[0, 0, 40, 90], [100, 10, 150, 119], [-10, 50, 30, 200]], np.float32)
    detections = sv.Detections(xyxy=boxes, confidence=np.array([0.9, 0.8, 0.7]),
                               class_id=np.array([0, 0, 0]))
    feats = embedder.get_features(detections, frame)
    assert feats.shape == (len(detections), 512)
    np.testing.assert_allclose(feats, embedder.get_features(boxes, frame), atol=1e-6)
    person = detections[detections.confidence > 0.75]  # filtering keeps the contract
    np.testing.assert_allclose(embedder.get_features(person, frame), feats[:2], atol=1e-6)
    assert embedder.get_features(sv.Detections.empty(), frame).shape == (0, 512)


def test_trackers_module_does_not_import_supervision() -> None:
    import ast
    import inspect

    from semparts_reid.inference import trackers

    tree = ast.parse(inspect.getsource(trackers))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {
        (node.module or "").split(".")[0] for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)}
    assert "supervision" not in imported
