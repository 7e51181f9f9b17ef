"""``semparts-reid evaluate --rerank``: no size limit (the sparse k-reciprocal encoding),
and the re-ranked metrics of a checkpoint equal re-ranking the extracted features'
distance matrices (the path that equals torchreid's ``re_ranking``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semparts_reid.cli import main
from semparts_reid.metrics.distance import compute_distance
from semparts_reid.metrics.rank import evaluate_cmc_map
from semparts_reid.metrics.rerank import re_ranking

TARGET = "synthetic:b?size=tiny"


def _features(path: Path, n: int, centres: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pids = rng.integers(0, len(centres), n)
    feats = centres[pids] + 0.8 * rng.standard_normal((n, centres.shape[1]))
    np.savez(path, features=feats.astype(np.float32), pids=pids, camids=rng.integers(0, 6, n))


@pytest.mark.slow  # ~5-10 s on 2 cores: 19,281 items, above the old 16,384 refusal
def test_rerank_from_market_sized_feature_files(tmp_path: Path) -> None:
    centres = np.random.default_rng(0).standard_normal((751, 16))
    _features(tmp_path / "q.npz", 3368, centres, 1)
    _features(tmp_path / "g.npz", 15913, centres, 2)
    files = ["evaluate", "--query-features", str(tmp_path / "q.npz"), "--gallery-features",
             str(tmp_path / "g.npz"), "--metric", "euclidean", "--max-rank", "10"]  # fmt: skip
    assert main([*files, "-o", str(tmp_path / "plain.json")]) == 0
    assert main([*files, "--rerank", "-o", str(tmp_path / "rr.json")]) == 0
    plain = json.loads((tmp_path / "plain.json").read_text())
    rr = json.loads((tmp_path / "rr.json").read_text())
    assert rr["num_valid_queries"] == plain["num_valid_queries"] > 3000
    assert rr["mAP"] > plain["mAP"] + 0.02  # k-reciprocal re-ranking helps clustered data


def test_checkpoint_rerank_equals_re_ranking_of_the_feature_distances(
    tiny_ckpt: Path, tmp_path: Path
) -> None:
    from semparts_reid.data.datasets import build_dataset
    from semparts_reid.inference import (
        FeatureExtractor,
        extract_split,
        load_model_from_checkpoint,
    )

    out = tmp_path / "m.json"
    argv = ["evaluate", "--checkpoint", str(tiny_ckpt), "--target", TARGET, "--device", "cpu",
            "--precision", "fp32", "--mode", "global", "--metric", "euclidean", "--rerank",
            "--max-rank", "5", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    got = json.loads(out.read_text())
    ds = build_dataset(TARGET)
    ex = FeatureExtractor(load_model_from_checkpoint(tiny_ckpt), device="cpu", precision="fp32",
                          progress=False)  # fmt: skip
    q, g = extract_split(ex, ds.query, parts=False), extract_split(ex, ds.gallery, parts=False)
    qf, gf = q.global_feat.numpy(), g.global_feat.numpy()
    dist = re_ranking(*(compute_distance(a, b, "euclidean") for a, b in
                        ((qf, gf), (qf, qf), (gf, gf))))  # fmt: skip
    ref = evaluate_cmc_map(dist, q.pids, g.pids, q.camids, g.camids, max_rank=5)
    assert got["mAP"] == pytest.approx(ref.mAP, abs=1e-6)
    np.testing.assert_allclose(got["cmc"], ref.cmc, atol=1e-6)
