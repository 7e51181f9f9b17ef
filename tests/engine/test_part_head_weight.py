"""``part_head_weight``: the weight of each part head's identity and memory loss next to
the global head's (``reduce_heads``, the step's source term, both target objectives)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from test_cluster_objective import _objective, _outputs, _split
from test_config_losses_checkpoint import _fake_out, ecn_step

from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.losses import identity_loss, reduce_heads
from semparts_reid.engine.objectives import EpochState, build_objective
from semparts_reid.errors import InputError


def test_reduce_heads_weights_parts_and_normalises_the_mean() -> None:
    per = torch.tensor([1.0, 2.0, 4.0, 6.0])
    assert reduce_heads(per).item() == 13.0
    assert reduce_heads(per, reduction="mean").item() == 13.0 / 4
    assert reduce_heads(per, part_weight=0.5).item() == 1.0 + 6.0
    assert reduce_heads(per, part_weight=0.5, reduction="mean").item() == pytest.approx(7 / 2.5)
    assert reduce_heads(per, part_weight=0.0, reduction="mean").item() == 1.0
    assert reduce_heads(per[:1], part_weight=0.1, reduction="mean").item() == 1.0
    # weight 1 is the plain sum, bit for bit (older runs reproduce)
    x = torch.randn(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(reduce_heads(x), x.sum())


def test_reduce_heads_keeps_the_gradient_split() -> None:
    per = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    reduce_heads(per, part_weight=1 / 3).backward()
    torch.testing.assert_close(per.grad, torch.tensor([1.0, 1 / 3, 1 / 3, 1 / 3]))


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_reduce_heads_rejects_bad_weights_and_shapes(bad: float) -> None:
    with pytest.raises(ValueError, match="part_weight"):
        reduce_heads(torch.ones(4), part_weight=bad)
    with pytest.raises(ValueError, match="per_head of shape"):
        reduce_heads(torch.ones(2, 2))
    with pytest.raises(ValueError, match="reduction='max'"):
        reduce_heads(torch.ones(4), reduction="max")


def test_config_validates_part_head_weight() -> None:
    TrainConfig().replace(part_head_weight=0.0).validate()
    with pytest.raises(InputError, match="part_head_weight=-1"):
        TrainConfig().replace(part_head_weight=-1.0).validate()


@pytest.mark.parametrize("heads", ["sum", "mean"])
def test_step_losses_weight_the_part_heads(heads: str) -> None:
    from semparts_reid.engine.step import step_losses

    w = 1 / 3
    cfg = TrainConfig().replace(head_reduction=heads, part_head_weight=w)
    assert build_objective("ecn", cfg, num_samples=10, feat_dim=8,
                           num_heads=4).part_weight == w  # type: ignore[attr-defined]
    terms, per_id, per_mem = ecn_step(cfg)
    norm = 1 + 3 * w if heads == "mean" else 1.0
    torch.testing.assert_close(terms["source_id"], (per_id[0] + w * per_id[1:].sum()) / norm)
    torch.testing.assert_close(terms["target_memory"],
                               (per_mem[0] + w * per_mem[1:].sum()) / norm)
    # a global-only step ignores the weight (its part entries are zeros, not heads)
    out_s = _fake_out(4, 3, 8, 5, torch.Generator().manual_seed(1))
    batch_s = {"pid": torch.tensor([0, 1, 2, 3]), "image": torch.zeros(4, 3, 16, 8)}
    glob = step_losses(out_s, batch_s, None, None, objective=None, config=cfg, use_parts=False)
    _, per_glob = identity_loss(out_s["id_logits"], batch_s["pid"], use_parts=False)
    torch.testing.assert_close(glob["source_id"], per_glob[0])


def test_cluster_objective_weights_the_part_heads() -> None:
    split = _split()
    idx = torch.tensor([0, 7, 13, 30, 20])
    losses: dict[float, Any] = {}
    for w in (1.0, 0.25):
        obj = _objective(part_weight=w)
        obj.start_epoch(EpochState("adapt", 0), lambda: split)
        out = _outputs(split, idx)
        losses[w] = obj.loss(out, {"index": idx})
        feats = torch.cat([out["global_feat"][:, None], out["part_feats"]], 1).detach()
        t = obj.targets(feats, obj.labels[idx], out["visibility"], idx)
        per = obj.memory.loss(feats, obj.labels[idx], visibility=out["visibility"], targets=t,
                              reduction="none")
        torch.testing.assert_close(losses[w].detach(), per[0] + w * per[1:].sum())
    assert losses[0.25] < losses[1.0]
    with pytest.raises(ValueError, match="part_weight=-1"):
        _objective(part_weight=-1.0)
    cfg = TrainConfig().replace(target_objective="cluster", part_head_weight=0.5)
    assert build_objective("cluster", cfg, num_samples=4, feat_dim=8,
                           num_heads=4).part_weight == 0.5  # type: ignore[attr-defined]


def test_exemplar_objective_rejects_bad_weights_and_names_it() -> None:
    from semparts_reid.engine.objectives import ExemplarObjective

    with pytest.raises(ValueError, match="part_weight=-2"):
        ExemplarObjective(4, 8, 4, part_weight=-2.0)
    assert "part_weight=0.5" in repr(ExemplarObjective(4, 8, 4, part_weight=0.5))
