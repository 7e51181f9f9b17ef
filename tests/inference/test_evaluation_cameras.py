"""``evaluate_model`` without camera ids: the query image itself is found by its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from inference_helpers import tiny_model
from PIL import Image

from semparts_reid.inference import FeatureExtractor, evaluate_model, extract_split
from semparts_reid.inference.evaluation import query_gallery_index
from semparts_reid.metrics.rank import evaluate_cmc_map


@pytest.fixture(scope="module")
def no_camera_records(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list]:
    """4 identities x 3 images, no camera ids; every query image is also in the gallery."""
    root = tmp_path_factory.mktemp("nocams")
    rng = np.random.default_rng(1)
    recs = []
    for pid in range(4):
        base = rng.integers(0, 255, (1, 1, 3))
        for k in range(3):
            img = np.clip(base + rng.normal(0, 60, (64, 32, 3)), 0, 255).astype(np.uint8)
            path = root / f"{pid}_{k}.png"
            Image.fromarray(img).save(path)
            recs.append((str(path), pid, -1))
    query = [r for r in recs if r[0].endswith("_0.png")]
    return query, recs  # the gallery holds the query images too


def test_query_gallery_index_by_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    gallery = [str(tmp_path / "a.jpg"), "b.jpg", str(tmp_path / "sub" / ".." / "c.jpg")]
    got = query_gallery_index(["c.jpg", str(tmp_path / "b.jpg"), "d.jpg", "a.jpg"], gallery)
    assert got.tolist() == [2, 1, -1, 0]
    assert got.dtype == np.int64


def test_unknown_cameras_remove_only_the_query_itself(no_camera_records) -> None:
    query, gallery = no_camera_records
    model = tiny_model()
    got = evaluate_model(model, query, gallery, device="cpu", precision="fp32")
    ex = FeatureExtractor(model, device="cpu", precision="fp32", progress=False)
    q, g = extract_split(ex, query), extract_split(ex, gallery)
    dist = (1 - q.global_feat @ g.global_feat.T).numpy()
    own = np.array([gallery.index(r) for r in query])  # by hand: the same tuple
    want = evaluate_cmc_map(dist, q.pids, g.pids, q.camids, g.camids, query_in_gallery=own)
    assert got.num_valid_queries == len(query)  # no query lost every match
    assert got.mAP == pytest.approx(want.mAP, abs=1e-6)
    assert got.cameras == "unknown"
    assert got.protocol_note.endswith("only the query image itself is removed from its gallery")
    # without removing itself each query would find its own image first
    trivial = evaluate_cmc_map(dist, q.pids, g.pids, q.camids, g.camids)
    assert trivial.rank(1) == 1.0 and got.mAP < trivial.mAP
    assert q.paths == [r[0] for r in query]
