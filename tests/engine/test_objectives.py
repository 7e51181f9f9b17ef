"""The target-objective interface: ExemplarObjective, build_objective, a user objective."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from engine_helpers import tiny_config, tiny_model

from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.objectives import (
    EpochState,
    ExemplarObjective,
    TargetObjective,
    build_objective,
)
from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.memory import ExemplarMemory


def _outputs(b: int, k: int, d: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"global_feat": torch.randn(b, d, generator=g),
            "part_feats": torch.randn(b, k, d, generator=g),
            "visibility": torch.ones(b, k)}


def test_exemplar_objective_is_the_memory_loss_and_update() -> None:
    obj = ExemplarObjective(10, 8, num_heads=4, neighbour_start_epoch=1)
    assert isinstance(obj, TargetObjective) and obj.uses_parts
    mem = ExemplarMemory(10, 8, num_heads=4)
    out, batch = _outputs(3, 3, 8), {"index": torch.tensor([1, 4, 9])}
    feats = torch.cat([out["global_feat"][:, None], out["part_feats"]], 1)
    for epoch in (0, 1, 2):
        obj.start_epoch(EpochState("adapt", epoch), lambda: pytest.fail("features not needed"))
        if epoch == 0:
            mem.slots.zero_()
        expected = mem.loss(feats, batch["index"], neighbours=epoch >= 1,
                            visibility=out["visibility"])
        torch.testing.assert_close(obj.loss(out, batch), expected)
        obj.update(out, batch)
        mem.update(feats, batch["index"], epoch=epoch, visibility=out["visibility"])
        torch.testing.assert_close(obj.memory.slots, mem.slots)


def test_epoch_zero_empties_the_memory_and_state_round_trips() -> None:
    obj = ExemplarObjective(6, 4, num_heads=1)
    obj.start_epoch(EpochState("adapt", 0), lambda: None)
    out = {"global_feat": torch.randn(2, 4), "part_feats": torch.zeros(2, 0, 4),
           "visibility": torch.zeros(2, 0)}
    obj.update(out, {"index": torch.tensor([0, 5])})
    obj.start_epoch(EpochState("adapt", 3), lambda: None)
    assert obj.memory.slots.abs().sum() > 0  # later epochs keep it
    clone = ExemplarObjective(6, 4, num_heads=1)
    clone.load_state_dict(obj.state_dict())
    assert torch.equal(clone.memory.slots, obj.memory.slots) and clone.epoch == 3
    clone.load_state_dict(obj.memory.state_dict())  # a pre-objective checkpoint's memory
    assert torch.equal(clone.memory.slots, obj.memory.slots)
    obj.start_epoch(EpochState("adapt", 0), lambda: None)
    assert obj.memory.slots.abs().sum() == 0


def test_head_count_mismatch_is_named() -> None:
    parts = ExemplarObjective(6, 4, num_heads=4)
    with pytest.raises(ValueError, match="1 head.*memory has 4"):
        parts.loss({"global_feat": torch.randn(2, 4), "part_feats": torch.zeros(2, 0, 4),
                    "visibility": torch.zeros(2, 0)}, {"index": torch.tensor([0, 1])})
    glob = ExemplarObjective(6, 4, num_heads=1)  # a part model adapted globally only
    loss = glob.loss(_outputs(2, 3, 4), {"index": torch.tensor([0, 1])})
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_build_objective_reads_the_config_and_rejects_unknown_names() -> None:
    cfg = TrainConfig().replace(memory_temperature=0.1, memory_knn=3, neighbour_start_epoch=2,
                      head_reduction="mean", memory_dtype="bfloat16")
    obj = build_objective("ecn", cfg, num_samples=5, feat_dim=4, num_heads=2)
    assert isinstance(obj, ExemplarObjective)
    assert obj.memory.temperature == 0.1 and obj.memory.knn == 3
    assert obj.neighbour_start_epoch == 2 and obj.head_reduction == "mean"
    assert obj.memory.dtype == torch.bfloat16 and obj.memory.num_heads == 2
    with pytest.raises(ValueError, match="unknown target objective 'spcl'.*ecn"):
        build_objective("spcl", cfg, num_samples=5, feat_dim=4, num_heads=1)
    with pytest.raises(ValueError, match="target_objective"):
        TrainConfig().replace(target_objective="spcl").validate()  # type: ignore[arg-type]


class _Recording:
    """A user objective: a constant-margin loss on the global feature; records calls."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.seen_features: Any = None

    def start_epoch(self, state: EpochState, features: Any) -> None:
        self.calls.append(("start", state.stage, state.epoch))
        self.seen_features = features()  # a clustering objective needs them

    def loss(self, outputs: Any, batch: Any) -> torch.Tensor:
        self.calls.append(("loss", tuple(batch["index"].shape)))
        return outputs["global_feat"].float().pow(2).mean()

    def update(self, outputs: Any, batch: Any) -> None:
        self.calls.append(("update",))

    def state_dict(self) -> dict[str, Any]:
        return {"calls": len(self.calls)}

    def load_state_dict(self, state: Any) -> None:
        self.calls.append(("load", state["calls"]))


def test_trainer_drives_a_user_objective(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), epochs=1, max_steps_per_epoch=2, part_labels="none",
                      keep_resume=True)  # last.pt holds the objective; adapt_final.pt does not
    user = _Recording()
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg, objective=user)
    assert trainer.objective is user and trainer.memory is None
    trainer.fit()
    assert user.calls[0] == ("start", "adapt", 0)
    assert [c[0] for c in user.calls[1:]] == ["loss", "update"] * 2
    feats = user.seen_features
    assert len(feats) == len(b.train) and feats.global_feat.shape[1] == 512
    assert "target_memory" in trainer.history[-1]
    saved = trainer.state_dict()["objective"]
    assert saved == {"calls": 5}
    resumed = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg,
                                 objective=_Recording())
    resumed.resume(tmp_path / "last.pt")
    assert resumed.objective.calls == [("load", 5)]  # type: ignore[union-attr]


def test_trainer_rejects_an_object_without_the_interface(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    with pytest.raises(TypeError, match="objective interface"):
        DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, tiny_config(str(tmp_path)),
                           objective=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, tiny_config(str(tmp_path)),
                           objective=_Recording(), memory=ExemplarMemory(3, 4))
