"""Loggers (engine/loggers.py): TensorBoard scalars, user loggers, closing, rank 0 only,
and the epoch loop's images/s."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import tiny_config, tiny_model

from semparts_reid.engine import epoch as epoch_module
from semparts_reid.engine import trainer as trainer_module
from semparts_reid.engine.epoch import run_epoch
from semparts_reid.engine.loggers import (
    JsonLinesLogger,
    MetricsLogger,
    TensorBoardLogger,
    record_scalars,
    require_tensorboard,
)
from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.precision import resolve_precision

pytest.importorskip("tensorboard")


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files under ``log_dir``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


class Recorder:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.closed = 0

    def log(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def close(self) -> None:
        self.closed += 1


def test_record_scalars_names_every_number() -> None:
    record = {
        "stage": "adapt", "epoch": 3, "step": 60, "loss": 2.5, "source_id": 2.0,
        "triplet": 0.5, "lr": 1e-4, "time_s": 4.0, "images_per_s": 64.0,
        "memory": {"neighbours": 6, "temperature": 0.05},
        "eval": {"mAP": 0.4, "rank1": 0.6, "protocol": "market1501", "cmc": [0.6, 0.7],
                 "num_valid_queries": 10, "parts": {"mAP": 0.45}},
        "flag": True,
    }  # fmt: skip
    assert record_scalars(record) == {
        "loss/total": 2.5, "loss/source_id": 2.0, "loss/triplet": 0.5, "lr": 1e-4,
        "time/epoch_s": 4.0, "time/images_per_s": 64.0, "memory/neighbours": 6.0,
        "memory/temperature": 0.05, "eval/mAP": 0.4, "eval/rank1": 0.6,
        "eval/num_valid_queries": 10.0, "eval/parts/mAP": 0.45,
    }  # fmt: skip


def test_tensorboard_logger_writes_scalars_at_the_records_step(tmp_path: Path) -> None:
    sink = TensorBoardLogger(tmp_path / "tb")
    assert isinstance(sink, MetricsLogger)
    assert not (tmp_path / "tb").exists()  # nothing written before the first record
    sink.log({"stage": "source", "epoch": 1, "step": 5, "loss": 1.5, "lr": 0.1})
    sink.log({"stage": "source", "epoch": 2, "step": 10, "loss": 1.0, "lr": 0.1,
              "eval": {"mAP": 0.25}})
    # flushed with every record: readable before close
    assert read_scalars(tmp_path / "tb")["loss/total"] == [(5, 1.5), (10, 1.0)]
    sink.close()
    sink.close()  # idempotent
    sink.log({"stage": "adapt", "epoch": 1, "step": 15, "loss": 0.5})  # reopens
    sink.close()
    scalars = read_scalars(tmp_path / "tb")
    assert scalars["loss/total"] == [(5, 1.5), (10, 1.0), (15, 0.5)]
    assert scalars["lr"] == [(5, pytest.approx(0.1)), (10, pytest.approx(0.1))]
    assert scalars["eval/mAP"] == [(10, 0.25)]


def test_a_tiny_training_logs_its_records_to_tensorboard(tiny_pair, tmp_path: Path) -> None:
    a, b = tiny_pair
    mine = Recorder()
    cfg = tiny_config(str(tmp_path), source_epochs=1, epochs=1, max_steps_per_epoch=2,
                      eval_every=1, eval_batch_size=64)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg,
                                 loggers=[TensorBoardLogger(tmp_path / "tb"), mine])
    trainer.fit()
    assert mine.closed == 1  # fit() closes its loggers
    assert [(r["stage"], r["step"]) for r in mine.records] == [("source", 2), ("adapt", 4)]
    scalars = read_scalars(tmp_path / "tb")
    for name in ("loss", "source_id", "target_memory", "part_map"):
        tag = "loss/total" if name == "loss" else f"loss/{name}"
        want = [(r["step"], r[name]) for r in mine.records if name in r]
        assert scalars[tag] == [(s, pytest.approx(v, rel=1e-6)) for s, v in want], tag
    assert [s for s, _ in scalars["lr"]] == [2, 4]
    assert [s for s, _ in scalars["time/images_per_s"]] == [2, 4]
    for metric in ("mAP", "rank1", "mINP"):
        want = [(r["step"], pytest.approx(r["eval"][metric], rel=1e-6)) for r in mine.records]
        assert scalars[f"eval/{metric}"] == want, metric


def test_config_tensorboard_adds_the_logger_to_the_defaults(tiny_pair, tmp_path: Path) -> None:
    a, _ = tiny_pair
    cfg = tiny_config(str(tmp_path), tensorboard=True)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, None, cfg)
    kinds = [type(s) for s in trainer.loggers]
    assert kinds == [JsonLinesLogger, TensorBoardLogger]
    assert trainer.loggers[1].log_dir == tmp_path / "tensorboard"  # type: ignore[attr-defined]
    trainer.train_source(1)
    trainer.close()
    assert read_scalars(tmp_path / "tensorboard")["loss/source_id"][0][0] == 2


def test_loggers_are_closed_when_training_stops_on_an_error(
    tiny_pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tiny_pair
    mine = Recorder()
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b,
                                 tiny_config(str(tmp_path)), loggers=[mine])

    def boom(*_: Any, **__: Any) -> dict[str, float]:
        raise RuntimeError("step failed")

    monkeypatch.setattr(trainer, "train_step", boom)
    with pytest.raises(RuntimeError, match="step failed"):
        trainer.adapt(1)  # a stage run alone closes on errors too
    assert mine.closed == 1


def test_a_failing_close_does_not_hide_the_others(tiny_pair, tmp_path: Path) -> None:
    a, _ = tiny_pair

    class Broken(Recorder):
        def close(self) -> None:
            raise OSError("disk gone")

    mine = Recorder()
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, None,
                                 tiny_config(str(tmp_path)), loggers=[Broken(), mine])
    trainer.close()
    assert mine.closed == 1


def test_only_rank_zero_logs(tiny_pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = tiny_pair
    mine = Recorder()
    cfg = tiny_config(str(tmp_path), max_steps_per_epoch=1)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, None, cfg,
                                 loggers=[mine, TensorBoardLogger(tmp_path / "tb")])
    monkeypatch.setattr(trainer_module, "is_main_process", lambda: False)
    trainer.train_source(1)
    trainer.close()
    assert mine.records == [] and len(trainer.history) == 1
    assert not (tmp_path / "tb").exists()  # no event file on the other ranks


def test_missing_tensorboard_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install 'semparts-reid\[tensorboard\]'"):
        require_tensorboard()
    with pytest.raises(ImportError, match=r"semparts-reid\[tensorboard\]"):
        TensorBoardLogger("unused")


def test_epoch_bar_shows_running_loss_and_images_per_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postfixes: list[dict[str, str]] = []

    class FakeBar:
        def __init__(self, **_: Any) -> None:
            pass

        def update(self, n: int) -> None:
            pass

        def set_postfix(self, **kw: str) -> None:
            postfixes.append(kw)

        def close(self) -> None:
            pass

    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr("tqdm.auto.tqdm", FakeBar)
    monkeypatch.setattr(epoch_module.time, "time", lambda: next(clock))
    losses = iter([1.0, 3.0])
    src = iter([{"image": torch.zeros(4, 3, 2, 2)}] * 2)
    tgt = iter([{"image": torch.zeros(2, 3, 2, 2)}] * 2)
    rec = run_epoch(lambda *_: {"loss": next(losses)}, src, tgt, 2,
                    resolve_precision("cpu", "fp32"), desc="adapt 1", progress=True,
                    check_every=1)
    # clock: t0 = 0, one reading per check (1, 2), the end (3): 12 images in 3 s
    assert [p["loss"] for p in postfixes] == ["1.000", "2.000"]  # the running mean
    assert [p["img_s"] for p in postfixes] == ["6.0", "6.0"]
    assert rec["time_s"] == 3.0 and rec["images_per_s"] == 4.0 and rec["loss"] == 2.0
