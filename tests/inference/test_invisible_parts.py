"""An invisible part is a zero feature with visibility 0: model, extractor, ONNX, distance.

Before the fix the part BNNeck mapped the zero pooled vector of an empty part to
``-running_mean / sigma`` and L2 normalisation turned that into a full unit vector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from semparts_reid.inference import FeatureExtractor
from semparts_reid.metrics.part_distance import part_aware_distance
from semparts_reid.models.factory import build_model
from semparts_reid.models.sempartsnet import SemPartsNet

SIZE = (64, 32)
HEAD = 0  # index among (head, upper, lower)


def _model_with_bn_stats() -> SemPartsNet:
    """A tiny SemPartsNet whose part necks hold non-zero running means (as trained ones do)."""
    torch.manual_seed(0)
    model = build_model("semparts_resnet18", input_size=SIZE)
    assert isinstance(model, SemPartsNet)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, *SIZE))
    return model.eval()


def _headless_labels(batch: int) -> torch.Tensor:
    """Hard label maps with background, upper and lower body but no head pixel."""
    labels = torch.zeros(batch, *SIZE, dtype=torch.long)
    labels[:, 16:40, 8:24] = 2
    labels[:, 40:, 8:24] = 3
    return labels


def _never_predict_head(model: SemPartsNet) -> SemPartsNet:
    """Rig the part classifier so the head (class 1) gets no mass anywhere."""
    assert model.part_classifier is not None
    last = getattr(model.part_classifier, "classifier", None)  # the decoder's 1x1 conv
    conv = last if last is not None else model.part_classifier.conv
    with torch.no_grad():
        conv.weight[1].zero_()
        conv.bias[1] = -1e4
    return model


def test_hard_mask_without_head_gives_zero_head_feature() -> None:
    model = _model_with_bn_stats()
    assert model.part_necks is not None
    with torch.no_grad():
        out = model(torch.randn(4, 3, *SIZE), part_labels=_headless_labels(4))
    assert torch.equal(out.visibility[:, HEAD], torch.zeros(4))
    assert torch.equal(out.part_feats[:, HEAD], torch.zeros(4, model.feat_dim))
    assert out.part_feats[:, 1:].abs().sum(-1).min() > 0  # visible parts are untouched
    # the raw pooled head is zero too; the neck alone would have made it non-zero
    assert torch.equal(out.part_raw[:, HEAD], torch.zeros(4, model.feat_dim))
    with torch.no_grad():
        necked = model.part_necks(out.part_raw)
    assert necked[:, HEAD].abs().sum() > 0


def test_extractor_returns_zero_and_invisible_for_a_missing_head() -> None:
    model = _never_predict_head(_model_with_bn_stats())
    ex = FeatureExtractor(model, device="cpu", precision="fp32", progress=False)
    crops = [np.random.default_rng(i).integers(0, 255, (70, 30, 3), np.uint8) for i in range(3)]
    for flip in (False, True):
        ex.flip = flip
        parts = ex.extract_parts(crops)
        vis, feats = np.asarray(parts.visibility), np.asarray(parts.part_feats)
        assert (vis[:, HEAD] == 0).all() and (vis[:, 1:] == 1).all()
        assert (feats[:, HEAD] == 0).all()
        np.testing.assert_allclose(np.linalg.norm(feats[:, 1:], axis=-1), 1.0, atol=1e-5)


def test_onnx_export_zeroes_the_invisible_head(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from semparts_reid.inference import export_onnx

    model = _never_predict_head(_model_with_bn_stats())
    path = export_onnx(model, tmp_path / "headless.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feats, vis = session.run(["part_feats", "visibility"],
                             {"images": np.random.default_rng(0).standard_normal(
                                 (2, 3, *SIZE)).astype(np.float32)})
    assert (vis[:, HEAD] == 0).all()
    assert (feats[:, HEAD] == 0).all()


def test_part_aware_distance_ignores_invisible_parts_and_handles_zero_vectors() -> None:
    rng = np.random.default_rng(0)
    qg, gg = rng.standard_normal((3, 16)), rng.standard_normal((5, 16))
    qp, gp = rng.standard_normal((3, 3, 16)), rng.standard_normal((5, 3, 16))
    qv, gv = np.ones((3, 3)), np.ones((5, 3))
    qv[:, HEAD] = 0  # the queries show no head
    zeroed = qp.copy()
    zeroed[:, HEAD] = 0
    d_zero = np.asarray(part_aware_distance(qg, gg, zeroed, gp, qv, gv))
    d_junk = np.asarray(part_aware_distance(qg, gg, qp, gp, qv, gv))
    assert np.isfinite(d_zero).all()
    np.testing.assert_allclose(d_zero, d_junk, atol=1e-6)  # invisible part: no vote
    # a part invisible in every image: parts-only distance from upper + lower
    d_two = np.asarray(part_aware_distance(qg, gg, zeroed[:, 1:], gp[:, 1:], qv[:, 1:],
                                           gv[:, 1:]))
    np.testing.assert_allclose(d_zero, d_two, atol=1e-6)
