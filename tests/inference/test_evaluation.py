"""``evaluate_model``: the one evaluation path (extractor features streamed into the metric)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from inference_helpers import SIZE, tiny_model
from PIL import Image

from semparts_reid.errors import InputError
from semparts_reid.inference import FeatureExtractor, evaluate_model, extract_split
from semparts_reid.inference.evaluation import distance_matrix, retrieval_input
from semparts_reid.metrics.blocks import DistanceBlocks
from semparts_reid.metrics.part_distance import part_aware_distance
from semparts_reid.metrics.rank import evaluate_cmc_map
from semparts_reid.metrics.rerank import re_ranking


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, list]:
    """6 identities x 3 cameras of noisy colour blobs: camera 0 queries, 1-2 gallery."""
    root = tmp_path_factory.mktemp("evalimgs")
    rng = np.random.default_rng(0)
    recs = []
    for pid in range(6):
        base = rng.integers(0, 255, (1, 1, 3))
        for cam in range(3):
            img = np.clip(base + rng.normal(0, 70, (70, 34, 3)), 0, 255).astype(np.uint8)
            path = root / f"{pid}_{cam}.png"
            Image.fromarray(img).save(path)
            recs.append((str(path), pid, cam))
    return [r for r in recs if r[2] == 0], [r for r in recs if r[2] != 0]


def _reference(model, query, gallery, mode: str, metric: str):
    ex = FeatureExtractor(model, device="cpu", precision="fp32", progress=False)
    q, g = extract_split(ex, query), extract_split(ex, gallery)
    if mode == "global":
        dist = torch.cdist(q.global_feat, g.global_feat) if metric == "euclidean" else (
            1 - q.global_feat @ g.global_feat.T)
    elif mode == "concat":
        dist = 1 - q.concat() @ g.concat().T
    else:
        dist = torch.as_tensor(part_aware_distance(q.global_feat, g.global_feat, q.part_feats,
                                                   g.part_feats, q.visibility, g.visibility,
                                                   metric))
    return evaluate_cmc_map(dist.numpy(), q.pids, g.pids, q.camids, g.camids), q, g


@pytest.mark.parametrize("mode, metric", [("global", "cosine"), ("global", "euclidean"),
                                          ("concat", "cosine"), ("parts", "cosine"),
                                          ("parts", "euclidean")])
def test_metrics_equal_a_full_matrix_reference(records, mode: str, metric: str) -> None:
    query, gallery = records
    model = tiny_model()
    got = evaluate_model(model, query, gallery, mode=mode, metric=metric, device="cpu",
                         precision="fp32")
    ref, _, _ = _reference(model, query, gallery, mode, metric)
    assert got.num_valid_queries == ref.num_valid_queries == 6
    assert got.mAP == pytest.approx(ref.mAP, abs=1e-6)
    np.testing.assert_allclose(got.cmc, ref.cmc, atol=1e-6)


def test_parts_mode_streams_distance_blocks_not_a_matrix(records) -> None:
    query, gallery = records
    ex = FeatureExtractor(tiny_model(), device="cpu", precision="fp32", progress=False)
    q, g = extract_split(ex, query), extract_split(ex, gallery)
    assert isinstance(retrieval_input(q, g, "parts"), DistanceBlocks)
    feats = retrieval_input(q, g, "concat")
    assert isinstance(feats, tuple) and feats[0].shape == (6, 4 * 512)
    blocks = retrieval_input(q, g, "parts")
    assert isinstance(blocks, DistanceBlocks)
    rows = [(a, b) for a, b, _ in blocks.iter(4)]
    assert rows == [(0, 4), (4, 6)]


def test_rerank_equals_re_ranking_of_the_mode_distances(records) -> None:
    query, gallery = records
    model = tiny_model()
    kw = dict(k1=4, k2=2, lambda_value=0.3)
    got = evaluate_model(model, query, gallery, mode="parts", rerank=True, rerank_kwargs=kw,
                         device="cpu", precision="fp32")
    _, q, g = _reference(model, query, gallery, "parts", "cosine")
    dist = re_ranking(distance_matrix(q, g, "parts"), distance_matrix(q, q, "parts"),
                      distance_matrix(g, g, "parts"), **kw)
    ref = evaluate_cmc_map(np.asarray(dist), q.pids, g.pids, q.camids, g.camids)
    assert got.mAP == pytest.approx(ref.mAP, abs=1e-9)


def test_train_mode_is_restored_and_an_extractor_is_used_as_given(records) -> None:
    query, gallery = records
    model = tiny_model().train()
    evaluate_model(model, query, gallery, device="cpu", precision="fp32")
    assert model.training
    ex = FeatureExtractor(tiny_model(), device="cpu", precision="fp32", flip=True,
                          progress=False)
    flipped = evaluate_model(ex, query, gallery, mode="concat")
    assert 0 <= flipped.mAP <= 1


def test_global_only_model_is_scored_globally_in_every_mode(records) -> None:
    from semparts_reid.models.factory import build_model

    query, gallery = records
    torch.manual_seed(0)
    ecn = build_model("ecn_resnet18", input_size=SIZE).eval()
    results = {m: evaluate_model(ecn, query, gallery, mode=m, device="cpu", precision="fp32").mAP
               for m in ("global", "concat", "parts")}
    assert len(set(results.values())) == 1


def test_bad_inputs_are_named(records, tmp_path: Path) -> None:
    query, gallery = records
    model = tiny_model()
    with pytest.raises(InputError, match="mode='stripes'"):
        evaluate_model(model, query, gallery, mode="stripes")
    with pytest.raises(InputError, match="metric='manhattan'"):
        evaluate_model(model, query, gallery, metric="manhattan")
    with pytest.raises(InputError, match="query: no images"):
        evaluate_model(model, [], gallery, device="cpu")
    with pytest.raises(InputError, match="gallery: expected \\(path, pid, camid\\) records"):
        evaluate_model(model, query, ["only/a/path.jpg"], device="cpu")
    with pytest.raises(TypeError, match="nn.Module or a FeatureExtractor"):
        evaluate_model("semparts_resnet18", query, gallery)  # type: ignore[arg-type]


def test_several_modes_from_one_extraction_equal_one_call_per_mode(records, monkeypatch) -> None:
    from semparts_reid.inference import evaluation

    query, gallery = records
    model = tiny_model()
    modes = ("global", "concat", "parts")
    single = {m: evaluate_model(model, query, gallery, mode=m, device="cpu", precision="fp32")
              for m in modes}
    calls = []
    real = evaluation.extract_split
    monkeypatch.setattr(evaluation, "extract_split",
                        lambda *a, **k: calls.append(k["split"]) or real(*a, **k))
    both = evaluation.evaluate_model_modes(model, query, gallery, modes=modes, device="cpu",
                                           precision="fp32")
    assert list(both) == list(modes) and calls == ["query", "gallery"]
    for m in modes:
        assert both[m].mAP == pytest.approx(single[m].mAP, abs=1e-6)
        np.testing.assert_allclose(both[m].cmc, single[m].cmc, atol=1e-6)


@pytest.mark.parametrize("modes", [(), ("global", "global"), ("global", "bogus")])
def test_modes_must_be_distinct_and_known(records, modes) -> None:
    from semparts_reid.inference.evaluation import evaluate_model_modes

    query, gallery = records
    with pytest.raises(InputError, match="mode"):
        evaluate_model_modes(tiny_model(), query, gallery, modes=modes, device="cpu")
