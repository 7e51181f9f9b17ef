"""The trainer's parts in their own modules: batches, epoch loop, loggers, evaluation."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from engine_helpers import tiny_config, tiny_model

from semparts_reid.engine.batches import STAGES, EpochBatches, epoch_seed
from semparts_reid.engine.epoch import run_epoch
from semparts_reid.engine.loggers import JsonLinesLogger, MetricsLogger
from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.inference import evaluate_model
from semparts_reid.precision import resolve_precision


def test_epoch_seeds_differ_per_stage_epoch_and_domain() -> None:
    seeds = {epoch_seed(7, s, e, t) for s in STAGES for e in range(5) for t in (False, True)}
    assert len(seeds) == 2 * 5 * 2
    assert epoch_seed(2**64 - 1, "adapt", 3, True) > 0  # large seeds stay ints


def test_epoch_batches_are_a_function_of_the_seed(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), batch_size=8, max_steps_per_epoch=2)
    data_cfg = {"input_size": (64, 32), "mean": (0.5,) * 3, "std": (0.25,) * 3}
    one, two = (EpochBatches(a, b, cfg, data_cfg) for _ in range(2))
    assert one.steps_per_epoch() == 2
    for which in ("source", "target"):
        # the images are augmented with the global RNG; the drawn items are the seed's
        x = next(one.iterator(which, "adapt", 1, 2))
        y = next(two.iterator(which, "adapt", 1, 2))
        assert torch.equal(x["index"], y["index"])
        z = next(one.iterator(which, "adapt", 2, 2))
        assert not torch.equal(x["index"], z["index"])
    with pytest.raises(ValueError, match="no target dataset"):
        EpochBatches(a, None, cfg, data_cfg).iterator("target", "adapt", 0, 1)


def test_run_epoch_averages_terms_and_names_steps() -> None:
    seen: list[str] = []

    def step(bs: dict[str, Any], bt: dict[str, Any] | None, where: str) -> dict[str, float]:
        seen.append(where)
        assert bt is not None and bt["x"].shape == (2,)
        return {"loss": float(bs["x"].sum()), "aux": 1.0}

    src = iter([{"x": torch.tensor([1.0, 2.0])}, {"x": torch.tensor([3.0, 4.0])}])
    tgt = iter([{"x": torch.zeros(2)}] * 2)
    rec = run_epoch(step, src, tgt, 2, resolve_precision("cpu", "fp32"), desc="adapt 3")
    assert rec["loss"] == 5.0 and rec["aux"] == 1.0 and rec["time_s"] >= 0
    assert seen == ["adapt epoch 3 step 1/2", "adapt epoch 3 step 2/2"]


class _ListLogger:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.closed = False

    def log(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def close(self) -> None:
        self.closed = True


def test_jsonl_logger_appends_one_line_per_record(tmp_path) -> None:
    sink = JsonLinesLogger(tmp_path / "run")
    assert isinstance(sink, MetricsLogger)
    sink.log({"stage": "adapt", "epoch": 1, "loss": 0.5})
    sink.log({"stage": "adapt", "epoch": 2, "loss": 0.25, "eval": {"mAP": 0.1}})
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_trainer_logs_to_the_loggers_it_is_given(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    mine = _ListLogger()
    cfg = tiny_config(str(tmp_path), epochs=1, max_steps_per_epoch=1)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg, loggers=[mine])
    trainer.fit()
    assert [r["epoch"] for r in mine.records] == [1]
    assert not (tmp_path / "metrics.jsonl").exists()  # the default logger was replaced


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_trainer_evaluation_is_evaluate_model(tiny_pair, tmp_path, precision: str) -> None:
    """The trainer's numbers and the library's one evaluation path are the same numbers."""
    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), precision=precision, eval_batch_size=16)
    model = tiny_model(a.num_train_pids)
    trainer = DomainAdaptTrainer(model, a, b, cfg)
    trainer.model.train()
    for mode in ("global", "parts"):
        got = trainer.evaluate(mode=mode)
        assert trainer.model.training  # restored
        ref = evaluate_model(trainer.model, b.query, b.gallery, mode=mode, device="cpu",
                             precision=precision, batch_size=16,
                             data_config=trainer._data_config())
        assert got.as_dict() == ref.as_dict()
    both = trainer.evaluate_modes(("global", "concat"))
    assert both is not None and list(both) == ["global", "concat"] and trainer.model.training
    assert both["global"].as_dict() == trainer.evaluate(mode="global").as_dict()
    assert both["concat"].as_dict() == trainer.evaluate(mode="concat").as_dict()
