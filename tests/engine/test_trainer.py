"""DomainAdaptTrainer end to end on the tiny synthetic pair (resnet18, 64x32, CPU)."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from engine_helpers import tiny_config, tiny_model

from semparts_reid.engine.checkpoint import load_training_checkpoint
from semparts_reid.engine.trainer import DomainAdaptTrainer, NonFiniteLossError
from semparts_reid.metrics.rank import ReIDMetrics

pytestmark = pytest.mark.slow


def _losses(trainer: DomainAdaptTrainer) -> list[tuple[str, int, float, float]]:
    return [
        (r["stage"], r["epoch"], r["loss"], r.get("target_memory", 0.0)) for r in trainer.history
    ]


def test_fit_runs_both_stages_logs_and_checkpoints(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), source_epochs=1, epochs=2, eval_every=2,
                      camstyle=True, part_labels="gt")
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)
    assert trainer.memory is not None and trainer.memory.slots.shape == (4, len(b.train), 512)
    result = trainer.fit()
    assert {"rank1", "mAP"} <= set(result)
    stages = [(r["stage"], r["epoch"]) for r in trainer.history]
    assert stages == [("source", 1), ("adapt", 1), ("adapt", 2)]
    assert all(k in trainer.history[1] for k in ("source_id", "target_memory", "part_map"))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 1, 2]
    assert "eval" in json.loads(lines[-1])
    ckpt = load_training_checkpoint(tmp_path / "adapt_final.pt", weights_only=True)
    assert ckpt["format"] == "semparts-reid/1" and ckpt["arch"] == "semparts_resnet18"
    assert ckpt["data_config"]["input_size"] == [64, 32]
    assert ckpt["stage"] == "adapt" and ckpt["epoch"] == 2 and ckpt["final"] is True
    # a final checkpoint is weights + architecture + data config: no resume state
    assert not {"optimizer", "scheduler", "scaler", "objective", "rng"} & set(ckpt)
    # the run completed: its resume state is gone, the final checkpoints stay
    assert (tmp_path / "source_final.pt").is_file() and not (tmp_path / "last.pt").exists()
    # written slots are unit vectors; the memory was filled by the updates
    norms = trainer.memory.slots[0].norm(dim=1)
    assert (norms > 0).any() and torch.allclose(norms[norms > 0], torch.ones(1), atol=1e-4)
    for mode in ("global", "concat", "parts"):
        m = trainer.evaluate(mode=mode)
        assert isinstance(m, ReIDMetrics) and 0.0 <= m.mAP <= 1.0


def test_global_only_model_and_piecewise_calls(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), part_labels="none", camstyle=False)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids, "ecn_resnet18"), a, b, cfg)
    assert trainer.num_parts == 0 and trainer.memory is not None
    assert trainer.memory.num_heads == 1
    trainer.train_source(1)
    trainer.adapt(1)
    trainer.adapt(1)  # already done: no-op
    assert [(r["stage"], r["epoch"]) for r in trainer.history] == [("source", 1), ("adapt", 1)]
    assert "part_map" not in trainer.history[-1]
    other = DomainAdaptTrainer(tiny_model(a.num_train_pids, "ecn_resnet18", seed=1), a, b, cfg)
    other.load_weights(tmp_path / "adapt_final.pt")
    for k, v in other.model.state_dict().items():
        assert torch.equal(v, trainer.model.state_dict()[k]), k


def test_resume_reproduces_the_uninterrupted_losses(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair

    def make(out: str) -> DomainAdaptTrainer:
        cfg = tiny_config(out, source_epochs=1, epochs=2, neighbour_start_epoch=1)
        return DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)

    full = make(str(tmp_path / "full"))
    full.fit()
    part = make(str(tmp_path / "part"))
    part.train_source(1)
    part.adapt(1)
    shutil.copy(tmp_path / "part" / "last.pt", tmp_path / "epoch1.pt")
    resumed = make(str(tmp_path / "resumed"))
    resumed.resume(tmp_path / "epoch1.pt")
    resumed.fit()
    assert _losses(resumed) == _losses(full)  # bit-identical on CPU, fp32, num_workers=0
    assert torch.equal(resumed.memory.slots, full.memory.slots)  # type: ignore[union-attr]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), keep_resume=True)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)
    trainer.train_source(1)
    good = (tmp_path / "last.pt").read_bytes()
    with torch.no_grad():
        trainer.model.id_classifier.weight.fill_(float("nan"))  # type: ignore[union-attr]
    with pytest.raises(NonFiniteLossError, match=r"adapt epoch 1 step 1/2.*'source_id'"):
        trainer.adapt(1)
    assert (tmp_path / "last.pt").read_bytes() == good


def test_keyboard_interrupt_saves_a_checkpoint(tiny_pair, tmp_path, monkeypatch) -> None:
    a, b = tiny_pair
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, tiny_config(str(tmp_path)))
    calls = {"n": 0}
    step = trainer.train_step

    def interrupting(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return step(*args, **kw)

    monkeypatch.setattr(trainer, "train_step", interrupting)
    with pytest.raises(KeyboardInterrupt):
        trainer.adapt(2)
    ckpt = load_training_checkpoint(tmp_path / "interrupted.pt")
    assert ckpt["stage"] == "adapt" and ckpt["epoch"] == 1


def test_bad_inputs_are_named(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    with pytest.raises(TypeError, match="model"):
        DomainAdaptTrainer(torch.nn.Linear(2, 2), a, b, tiny_config(str(tmp_path)))
    with pytest.raises(TypeError, match="config"):
        DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, {"lr": 1})  # type: ignore[arg-type]
    source_only = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, None,
                                     tiny_config(str(tmp_path)))
    with pytest.raises(ValueError, match="target"):
        source_only.adapt(1)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_mixed_precision_step(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path), device="cuda", precision="auto", epochs=1)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)
    assert trainer.policy.amp_dtype in (torch.bfloat16, torch.float16)
    assert trainer.memory is not None and trainer.memory.slots.is_cuda
    trainer.adapt(1)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in trainer.history)


@pytest.mark.parametrize("source", ["auto", "auto/pseudo", "self", "pseudo", "band"])
def test_part_loss_without_label_maps(tiny_pair, tmp_path, source) -> None:  # type: ignore[no-untyped-def]
    """Real data without a parser: images carry no maps, the part classifier still trains
    (self-training from its confident pixels: threshold 0 here, so an untrained
    classifier has some)."""
    from semparts_reid.data.datasets import ReIDDataset

    a, b = tiny_pair
    # copy the images without their .parts.png maps: what a real dataset looks like
    bare = tmp_path / "bare"
    bare.mkdir()
    records = []
    for i, r in enumerate(a.train[:24]):
        dst = bare / f"{i:04d}.jpg"
        dst.write_bytes(open(r.path, "rb").read())
        records.append(type(r)(str(dst), r.pid, r.camid))
    pids = sorted({r.pid for r in records})
    records = [type(r)(r.path, pids.index(r.pid), r.camid) for r in records]
    src = ReIDDataset("bare", bare, records, a.query, a.gallery)
    labels, _, unlabeled = source.partition("/")
    cfg = tiny_config(str(tmp_path / "run"), part_labels=labels, camstyle=False, epochs=1,
                      unlabeled_part_labels=unlabeled or "self", self_label_threshold=0.0)
    trainer = DomainAdaptTrainer(tiny_model(len(pids)), src, b, cfg)
    trainer.train_source(1)
    record = trainer.history[-1]
    assert "part_map" in record and math.isfinite(record["part_map"]) and record["part_map"] > 0
