"""Batch-hard triplet loss (engine/losses.py) against a per-anchor loop, and in the step."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from engine_helpers import tiny_config, tiny_model

from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.losses import triplet_loss
from semparts_reid.engine.step import source_triplet_term, step_losses
from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.errors import InputError


def reference(
    features: torch.Tensor, pids: torch.Tensor, margin: float | None,
    visibility: torch.Tensor | None = None,
) -> float:
    """One anchor at a time, in float64: the definition the vectorised loss must match."""
    x = features.detach().double()
    if x.dim() == 2:
        x = x.unsqueeze(1)
    b, h, _ = x.shape
    seen = (
        torch.ones(b, h, dtype=torch.bool) if visibility is None else visibility > 0.5
    )
    head_means = []
    for k in range(h):
        losses = []
        for i in range(b):
            if not seen[i, k]:
                continue
            d = {j: float((x[i, k] - x[j, k]).norm()) for j in range(b) if j != i and seen[j, k]}
            pos = [d[j] for j in d if pids[j] == pids[i]]
            neg = [d[j] for j in d if pids[j] != pids[i]]
            if not pos or not neg:
                continue
            gap = max(pos) - min(neg)
            losses.append(math.log1p(math.exp(gap)) if margin is None else max(0.0, gap + margin))
        if losses:
            head_means.append(sum(losses) / len(losses))
    return sum(head_means) / len(head_means) if head_means else 0.0


def _pk(p: int, k: int) -> torch.Tensor:
    return torch.arange(p).repeat_interleave(k)


@pytest.mark.parametrize("margin", [0.3, 1.0, None])
@pytest.mark.parametrize("heads", [0, 4])
def test_matches_the_loop_reference(margin: float | None, heads: int) -> None:
    g = torch.Generator().manual_seed(heads + (0 if margin is None else int(10 * margin)))
    pids = _pk(4, 3)
    shape = (12, 8) if heads == 0 else (12, heads, 8)
    feats = torch.randn(*shape, generator=g) + pids.view(-1, *([1] * (len(shape) - 1))) * 0.3
    got = triplet_loss(feats, pids, margin=margin)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(reference(feats, pids, margin), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("margin", [0.3, None])
def test_invisible_parts_are_neither_anchors_positives_nor_negatives(
    margin: float | None,
) -> None:
    g = torch.Generator().manual_seed(3)
    pids = _pk(3, 4)
    feats = torch.randn(12, 3, 6, generator=g)
    vis = (torch.rand(12, 3, generator=g) > 0.35).float()
    vis[:, 0] = 1.0  # the global head is always visible
    # an invisible part would be the closest negative / farthest positive if counted
    feats[vis == 0] = 100.0
    got = triplet_loss(feats, pids, margin=margin, visibility=vis)
    want = reference(feats, pids, margin, vis)
    assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert got.item() != pytest.approx(reference(feats, pids, margin), rel=1e-3)


def test_anchors_without_a_positive_or_negative_are_skipped() -> None:
    pids = torch.tensor([0, 0, 1, 2])  # ids 1 and 2 have no positive: only 2 anchors count
    feats = torch.tensor([[0.0, 0.0], [3.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    # anchor 0: d_ap 3, d_an 1 -> 2.3; anchor 1: d_ap 3, d_an 2 -> 1.3
    assert triplet_loss(feats, pids, margin=0.3).item() == pytest.approx((2.3 + 1.3) / 2)
    one_id = triplet_loss(feats[:2].requires_grad_(), pids[:2])  # no negative anywhere
    assert one_id.item() == 0.0
    one_id.backward()  # still attached to the graph


def test_a_head_without_valid_anchors_does_not_dilute_the_others() -> None:
    pids = _pk(2, 2)
    feats = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0))
    vis = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # head 1: one image
    got = triplet_loss(feats, pids, visibility=vis)
    assert got.item() == pytest.approx(triplet_loss(feats[:, 0], pids).item(), rel=1e-6)


def test_gradients_are_finite_with_duplicate_and_zero_features() -> None:
    pids = _pk(3, 2)
    feats = torch.randn(6, 2, 5, generator=torch.Generator().manual_seed(1))
    feats[1] = feats[0]  # a positive at distance 0
    feats[4] = 0.0
    feats[5] = 0.0
    for margin in (0.3, None):
        x = feats.clone().requires_grad_(True)
        triplet_loss(x, pids, margin=margin).backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bf16_autocast_computes_in_float32() -> None:
    g = torch.Generator().manual_seed(2)
    pids = _pk(4, 4)
    feats = (torch.randn(16, 32, generator=g) * 4).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = triplet_loss(feats, pids)
    assert got.dtype == torch.float32
    want = reference(feats.float(), pids, 0.3)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_normalize_uses_unit_features() -> None:
    g = torch.Generator().manual_seed(4)
    pids = _pk(3, 3)
    feats = torch.randn(9, 8, generator=g)
    unit = torch.nn.functional.normalize(feats, dim=1)
    got = triplet_loss(feats * 7.0, pids, normalize=True)
    assert got.item() == pytest.approx(reference(unit, pids, 0.3), rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(features=torch.zeros(4)), r"features of shape \(4,\)"),
        (dict(pids=torch.zeros(3, dtype=torch.long)), r"pids of shape \(3,\): expected \(4,\)"),
        (dict(margin=0.0), r"margin=0.0: expected a value > 0, or None"),
        (dict(visibility=torch.ones(4, 2)), r"visibility of shape \(4, 2\)"),
    ],
)
def test_bad_inputs_are_named(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = dict(
        features=torch.zeros(4, 3, 2), pids=torch.zeros(4, dtype=torch.long)
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        triplet_loss(**args)


def test_config_fields_and_refusals() -> None:
    cfg = TrainConfig()
    o = cfg.optim
    assert (o.triplet_weight, o.triplet_margin, cfg.parts.triplet_parts) == (0.0, 0.3, False)
    soft = TrainConfig().replace(triplet_weight=1.0, num_instances=4, triplet_margin=None)
    assert TrainConfig.from_dict(soft.to_dict()) == soft
    with pytest.raises(InputError, match=r"triplet_weight=1.0 needs P x K .*num_instances >= 2"):
        TrainConfig().replace(triplet_weight=1.0)
    with pytest.raises(InputError, match=r"triplet_margin=0: expected a value > 0.*'soft'"):
        TrainConfig().replace(triplet_margin=0)
    with pytest.raises(InputError, match=r"triplet_weight=-1.0"):
        TrainConfig().replace(triplet_weight=-1.0)


def _outputs(b: int, k: int, c: int, seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    vis = torch.ones(b, k)
    vis[0, 2] = 0.0
    return {
        "id_logits": torch.randn(b, 1 + k, c, generator=g),
        "global_raw": torch.randn(b, 6, generator=g),
        "part_raw": torch.randn(b, k, 6, generator=g),
        "part_feats": torch.randn(b, k, 6, generator=g),
        "visibility": vis,
        "part_logits": None,
    }


@pytest.mark.parametrize("parts", [False, True])
def test_step_adds_the_weighted_term_on_the_raw_features(parts: bool) -> None:
    out, pids = _outputs(8, 3, 4), _pk(4, 2)
    batch = {"pid": pids, "image": torch.zeros(8, 3, 8, 4)}
    cfg = TrainConfig().replace(num_instances=2, batch_size=8, part_labels="none")
    off = step_losses(out, batch, None, None, objective=None, config=cfg, use_parts=True)
    assert "triplet" not in off
    cfg = cfg.replace(triplet_weight=2.0, triplet_margin=None, triplet_parts=parts)
    on = step_losses(out, batch, None, None, objective=None, config=cfg, use_parts=True)
    if parts:
        feats = torch.cat([out["global_raw"].unsqueeze(1), out["part_raw"]], dim=1)
        vis = torch.cat([torch.ones(8, 1), out["visibility"]], dim=1)
        want = reference(feats, pids, None, vis)
    else:
        want = reference(out["global_raw"], pids, None)
    assert on["triplet"].item() == pytest.approx(want, rel=1e-5)
    assert on["loss"].item() == pytest.approx(off["loss"].item() + 2.0 * want, rel=1e-5)
    # parts requested but the run trains the global feature only: global triplet
    glob = source_triplet_term(out, batch, cfg, use_parts=False)
    assert glob.item() == pytest.approx(reference(out["global_raw"], pids, None), rel=1e-5)


def test_trainer_steps_include_the_triplet_term(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), num_instances=4, triplet_weight=1.0, triplet_parts=True,
                      source_epochs=1, epochs=1, max_steps_per_epoch=1)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)
    trainer.fit()
    assert [r["stage"] for r in trainer.history] == ["source", "adapt"]
    for record in trainer.history:
        assert math.isfinite(record["triplet"]) and record["triplet"] > 0


def _ablation_script() -> Any:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "ablate_triplet.py"
    spec = importlib.util.spec_from_file_location("ablate_triplet", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ablation_reports_the_median_difference_per_direction() -> None:
    ablate = _ablation_script()

    def row(direction: str, seed: int, arm: str, m: float) -> dict[str, Any]:
        return {"direction": direction, "seed": seed, "arm": arm,
                "adapted": {"R1": 2 * m, "R5": m, "R10": m, "mAP": m}}

    rows = [row("a -> b", s, arm, m) for s, arm, m in
            [(0, "off", 0.5), (0, "on", 0.6), (1, "off", 0.5), (1, "on", 0.4),
             (2, "off", 0.5), (2, "on", 0.55), (3, "on", 0.9)]]  # seed 3: one arm only
    rows.append(row("b -> a", 0, "off", 0.3))
    diffs = ablate.median_differences(rows)
    assert list(diffs) == ["a -> b"]
    assert diffs["a -> b"]["mAP"] == pytest.approx(0.05)
    assert diffs["a -> b"]["R1"] == pytest.approx(0.1)


def test_ablation_script_runs_both_arms_and_writes_json(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    ablate = _ablation_script()
    calls: list[dict[str, Any]] = []

    def fake_arm(settings: Any, source: Any, target: Any, work: Any, *, seed: int,
                 device: str, triplet: dict[str, Any]) -> dict[str, Any]:
        calls.append(dict(triplet))
        m = 0.5 + 0.1 * bool(triplet)
        metrics = {"R1": m, "R5": m, "R10": m, "mAP": m}
        return {"direct": metrics, "adapted": metrics, "seconds": 1.0}

    monkeypatch.setattr(ablate, "run_arm", fake_arm)
    monkeypatch.setenv("SEMPARTS_REID_HOME", str(tmp_path / "home"))
    out = tmp_path / "ablation.json"
    assert ablate.main(["--quick", "--directions", "a2b", "--margin", "soft", "--parts",
                        "--out", str(out)]) == 0
    assert calls == [{}, {"triplet_weight": 1.0, "triplet_margin": None, "triplet_parts": True}]
    payload = json.loads(out.read_text())
    assert [(r["direction"], r["arm"]) for r in payload["rows"]] == [("a -> b", "off"),
                                                                      ("a -> b", "on")]
    assert payload["median_on_minus_off"]["a -> b"]["mAP"] == pytest.approx(0.1)
    assert payload["command"].endswith("--out " + str(out))
