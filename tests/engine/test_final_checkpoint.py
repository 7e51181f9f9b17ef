"""Final checkpoints (weights, architecture, data config) and the resume state's life.

A finished stage writes ``<stage>_final.pt`` without optimiser, memory or RNG state and
drops ``last.pt``; every reader of a model checkpoint reads both kinds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import tiny_config, tiny_model

from semparts_reid.cli import main
from semparts_reid.engine.checkpoint import load_training_checkpoint
from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.inference import TrackerEmbedder, load_model_from_checkpoint

RESUME_ONLY = {"optimizer", "scheduler", "scaler", "objective", "rng", "sampler"}


@pytest.fixture(scope="module")
def finished_run(tiny_pair, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    a, b = tiny_pair
    out = tmp_path_factory.mktemp("finished")
    cfg = tiny_config(str(out), source_epochs=1, epochs=1, keep_resume=True)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)
    trainer.fit()
    return trainer, out


def test_a_final_checkpoint_holds_the_model_and_no_resume_state(finished_run) -> None:  # type: ignore[no-untyped-def]
    trainer, out = finished_run
    final = load_training_checkpoint(out / "adapt_final.pt")
    last = load_training_checkpoint(out / "last.pt")
    assert final["final"] is True and not RESUME_ONLY & set(final)
    assert RESUME_ONLY <= set(last) and "final" not in last
    for key in ("format", "arch", "model_kwargs", "data_config", "config", "stage", "epoch"):
        assert final[key] == last[key], key
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(final["model"][k], v), k
    # the optimiser state and the memory are the bulk of last.pt: they are gone
    assert (out / "adapt_final.pt").stat().st_size < 0.7 * (out / "last.pt").stat().st_size


@pytest.mark.parametrize("name", ["adapt_final.pt", "last.pt"])
def test_every_reader_of_a_model_reads_both_kinds(finished_run, name: str,
                                                  tmp_path: Path, tiny_pair) -> None:  # type: ignore[no-untyped-def]
    trainer, out = finished_run
    path = out / name
    model = load_model_from_checkpoint(path)
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    crops = [np.full((40, 20, 3), 40 * i, np.uint8) for i in range(3)]
    emb = TrackerEmbedder(path, device="cpu", precision="fp32").predict(crops)
    assert len(emb) == 3 and all(np.isfinite(e).all() for e in emb)
    a, b = tiny_pair
    other = DomainAdaptTrainer(tiny_model(a.num_train_pids, seed=1), a, b,
                               tiny_config(str(tmp_path / "init")))
    other.load_weights(path)  # what --init does
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(other.model.state_dict()[k], v), k
    target = "synthetic:b?size=tiny"
    assert main(["evaluate", "--checkpoint", str(path), "--target", target,
                 "--device", "cpu"]) == 0
    pytest.importorskip("onnxruntime")
    assert main(["export", str(path), "-o", str(tmp_path / "m.onnx")]) == 0


def test_resume_from_a_final_checkpoint_starts_the_next_stage(finished_run, tiny_pair,
                                                              tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trainer, out = finished_run
    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), source_epochs=1, epochs=2)
    resumed = DomainAdaptTrainer(tiny_model(a.num_train_pids, seed=2), a, b, cfg)
    resumed.resume(out / "source_final.pt")  # weights only: the adapt stage starts afresh
    assert (resumed.stage, resumed.epoch) == ("source", 1)
    resumed.fit()
    assert [(r["stage"], r["epoch"]) for r in resumed.history][-2:] == [("adapt", 1),
                                                                       ("adapt", 2)]


def test_last_pt_is_dropped_when_the_stage_completes_and_kept_otherwise(
    tiny_pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tiny_pair
    done = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b,
                              tiny_config(str(tmp_path / "done"), source_epochs=1, epochs=1))
    done.fit()
    assert sorted(p.name for p in (tmp_path / "done").glob("*.pt")) == [
        "adapt_final.pt", "source_final.pt"]
    # a shorter call than the config plans is not the end of the run
    short = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b,
                               tiny_config(str(tmp_path / "short"), epochs=2))
    short.adapt(1)
    assert (tmp_path / "short" / "last.pt").is_file()
    # a crash keeps the resume state of the last finished epoch
    crash = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b,
                               tiny_config(str(tmp_path / "crash"), epochs=2))
    real = crash._train_epoch

    def second_epoch_fails(stage: str, epoch: int):  # type: ignore[no-untyped-def]
        if epoch == 1:
            raise RuntimeError("disk full")
        return real(stage, epoch)

    monkeypatch.setattr(crash, "_train_epoch", second_epoch_fails)
    with pytest.raises(RuntimeError, match="disk full"):
        crash.adapt()
    assert load_training_checkpoint(tmp_path / "crash" / "last.pt")["epoch"] == 1
