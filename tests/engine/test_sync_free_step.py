"""Host synchronisations of the training loop: counted on CPU, forbidden on CUDA.

On CPU, ``Tensor.item`` / ``tolist`` / ``__int__`` / ``__float__`` / ``__bool__`` are
wrapped with counters that count the calls made from the package's own code (torch's
internals, e.g. Adam reading its CPU step counter, are not ours to count). Each such
call on a GPU tensor is a host synchronisation. The documented budget of the trainer's
loop (docs/training.md): **0 per step, 1 per check** (every ``check_finite_every``
steps and at the epoch's last step), none while loading data is not counted (that runs
on the CPU, in workers).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import tiny_config, tiny_model

import semparts_reid
from semparts_reid.engine.epoch import run_epoch
from semparts_reid.engine.objectives import EpochState
from semparts_reid.engine.step import FiniteGuard, NonFiniteLossError
from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.precision import resolve_precision

PKG = str(Path(semparts_reid.__file__).resolve().parent)
HOOKED = ("item", "tolist", "__int__", "__float__", "__bool__")


class SyncCounter:
    """Count tensor read-backs made from the package's code while ``active``."""

    def __init__(self) -> None:
        self.active = True
        self.calls: list[str] = []

    def install(self, mp: pytest.MonkeyPatch) -> None:
        import sys

        for name in HOOKED:
            original = getattr(torch.Tensor, name)

            def wrapper(self_t: torch.Tensor, *a: Any, _o: Any = original, _n: str = name,
                        **k: Any) -> Any:
                if self.active:
                    f = sys._getframe(1)
                    if f.f_code.co_filename.startswith(PKG):
                        self.calls.append(f"{_n} at {Path(f.f_code.co_filename).name}:"
                                          f"{f.f_lineno}")
                return _o(self_t, *a, **k)

            mp.setattr(torch.Tensor, name, wrapper)

    def paused(self, it: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``it`` with counting off while a batch is loaded."""
        while True:
            self.active = False
            try:
                batch = next(it)
            except StopIteration:
                return
            finally:
                self.active = True
            yield batch


def _trainer(tiny_pair: Any, out: Path, **kw: Any) -> DomainAdaptTrainer:
    a, b = tiny_pair
    cfg = tiny_config(str(out), **{"max_steps_per_epoch": 4, "check_finite_every": 2, **kw})
    return DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)


def test_the_counter_sees_read_backs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock works: package code that reads tensors back is counted."""
    counter = SyncCounter()
    counter.install(monkeypatch)
    from semparts_reid.engine.step import check_finite_losses

    check_finite_losses({"a": torch.tensor(1.0), "b": torch.tensor(2.0)}, "here")
    assert len(counter.calls) == 2 and all("step.py" in c for c in counter.calls)
    float(torch.tensor(1.0))  # from the test itself: not the package's
    assert len(counter.calls) == 2


@pytest.mark.slow
@pytest.mark.parametrize("part_labels", ["auto", "gt", "band"])
def test_loop_reads_back_once_per_check_and_never_per_step(
    tiny_pair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part_labels: str
) -> None:
    trainer = _trainer(tiny_pair, tmp_path, part_labels=part_labels, camstyle=True)
    trainer._start_stage("adapt")
    counter = SyncCounter()
    iterator = trainer.batches.iterator
    monkeypatch.setattr(trainer.batches, "iterator",
                        lambda *a: counter.paused(iterator(*a)))
    counter.install(monkeypatch)
    steps: list[int] = []
    step = trainer._step

    def counted(*a: Any, **k: Any) -> Any:
        before = len(counter.calls)
        out = step(*a, **k)
        steps.append(len(counter.calls) - before)
        return out

    monkeypatch.setattr(trainer, "_step", counted)
    record = trainer._train_epoch("adapt", 0)
    assert steps == [0, 0, 0, 0], counter.calls  # nothing inside a step
    # 4 steps, a check every 2: two read-backs in the whole epoch (the loop's checks)
    assert len(counter.calls) == 2, counter.calls
    assert all("step.py" in c for c in counter.calls)
    assert math.isfinite(record["loss"]) and record["part_map"] > 0


@pytest.mark.slow
def test_public_train_step_still_checks_and_returns_floats(tiny_pair: Any, tmp_path: Path) -> None:
    trainer = _trainer(tiny_pair, tmp_path)
    trainer._start_stage("adapt")
    from semparts_reid.engine.loaders import move_batch

    bs = move_batch(next(trainer.batches.iterator("source", "adapt", 0, 1)), trainer.policy)
    bt = move_batch(next(trainer.batches.iterator("target", "adapt", 0, 1)), trainer.policy)
    terms = trainer.train_step(bs, bt, epoch=0)
    assert all(isinstance(v, float) for v in terms.values()) and "part_map" in terms
    bt["index"] = bt["index"] + 10_000
    with pytest.raises(ValueError, match=r"target indices in \[.*expected values in"):
        trainer.train_step(bs, bt, epoch=0)


def test_guard_names_the_first_bad_step_and_term_even_if_later_steps_recover() -> None:
    guard = FiniteGuard()
    guard.observe({"a": torch.tensor(1.0), "loss": torch.tensor(2.0)}, "step 1")
    guard.observe({"a": torch.tensor(float("inf")), "loss": torch.tensor(float("nan"))},
                  "step 2")
    guard.observe({"a": torch.tensor(1.0), "loss": torch.tensor(float("nan"))}, "step 3")
    guard.observe({"a": torch.tensor(1.0)}, "step 4")  # other terms: another record
    with pytest.raises(NonFiniteLossError,
                       match=r"at step 2: term 'a' = inf \(found at the check of step 4\)"):
        guard.check()
    fresh = FiniteGuard()
    fresh.observe({"loss": torch.tensor(1.0)}, "step 1")
    assert fresh.check({"s": torch.tensor(3.0, dtype=torch.float64)}) == {"s": 3.0}
    fresh.observe({"loss": torch.tensor(float("nan"))}, "step 2")
    with pytest.raises(NonFiniteLossError, match="at step 2: term 'loss' = nan;"):
        fresh.check()
    assert FiniteGuard().check() == {}


def test_run_epoch_checks_on_schedule_and_sums_like_floats() -> None:
    policy = resolve_precision("cpu", "fp32")
    ran: list[str] = []
    values = [0.1, 0.2, 0.7, 1e-8, 3.3]

    def step(bs: dict[str, Any], bt: Any, where: str) -> dict[str, torch.Tensor]:
        ran.append(where)
        return {"loss": torch.tensor(values[len(ran) - 1], dtype=torch.float32)}

    batches = iter([{"image": torch.zeros(2, 3, 4, 4)}] * 5)
    rec = run_epoch(step, batches, None, 5, policy, desc="source 1", check_every=2)
    expected = 0.0
    for v in values:  # the float sum of the float32 values, as before
        expected += float(torch.tensor(v, dtype=torch.float32))
    assert rec["loss"] == expected / 5 and rec["images_per_s"] > 0
    # a NaN at step 1 is caught at the first check (step 3 with check_every=3)
    ran.clear()
    values[0] = float("nan")
    batches = iter([{"image": torch.zeros(2, 3, 4, 4)}] * 5)
    with pytest.raises(NonFiniteLossError, match=r"source epoch 1 step 1/5: term 'loss'"):
        run_epoch(step, batches, None, 5, policy, desc="source 1", check_every=3)
    assert len(ran) == 3
    # the last step is always checked
    ran.clear()
    values[:] = [1.0, float("nan")]
    batches = iter([{"image": torch.zeros(2, 3, 4, 4)}] * 2)
    with pytest.raises(NonFiniteLossError, match="step 2/2"):
        run_epoch(step, batches, None, 2, policy, desc="source 1", check_every=50)
    with pytest.raises(ValueError, match="check_every=0"):
        run_epoch(step, iter([]), None, 1, policy, desc="x", check_every=0)


def test_check_finite_every_is_validated() -> None:
    from semparts_reid.engine.config import TrainConfig
    from semparts_reid.errors import InputError

    assert TrainConfig().runtime.check_finite_every == 50
    with pytest.raises(InputError, match="check_finite_every=0"):
        TrainConfig().replace(check_finite_every=0)


def test_cudnn_benchmark_is_scoped_and_respects_determinism() -> None:
    from semparts_reid.inference.preprocess import cudnn_benchmark

    cudnn = torch.backends.cudnn
    before = cudnn.benchmark
    try:
        cudnn.benchmark = False
        with cudnn_benchmark("cpu") as on:
            assert not on and not cudnn.benchmark
        with cudnn_benchmark("cuda:0") as on:  # the flag only; no device is touched
            assert on and cudnn.benchmark
        assert not cudnn.benchmark
        old = cudnn.deterministic
        cudnn.deterministic = True
        try:
            with cudnn_benchmark("cuda") as on:
                assert not on and not cudnn.benchmark
        finally:
            cudnn.deterministic = old
    finally:
        cudnn.benchmark = before


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_step_does_not_synchronise(tiny_pair: Any, tmp_path: Path) -> None:
    """A whole step (forward, losses, backward, Adam, memory update) and the guard's
    bookkeeping under ``set_sync_debug_mode("error")``: any host synchronisation raises."""
    from semparts_reid.engine.loaders import move_batch

    precision = "bf16" if torch.cuda.is_bf16_supported() else "fp32"  # no fp16 scaler sync
    trainer = _trainer(tiny_pair, tmp_path, device="cuda", precision=precision,
                       neighbour_start_epoch=0)
    trainer._start_stage("adapt")
    assert trainer.objective is not None
    trainer.objective.start_epoch(EpochState("adapt", 1), lambda: None)  # neighbours on
    src = trainer.batches.iterator("source", "adapt", 0, 4)
    tgt = trainer.batches.iterator("target", "adapt", 0, 4)
    batches = [(move_batch(next(src), trainer.policy), move_batch(next(tgt), trainer.policy))
               for _ in range(3)]
    trainer._wrap().train()
    trainer._step(*batches[0], where="warm-up")  # lazy init, cuDNN autotuning
    torch.cuda.synchronize()
    guard = FiniteGuard()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i, (bs, bt) in enumerate(batches[1:]):
            guard.observe(trainer._step(bs, bt, where=f"step {i}"), f"step {i}")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    guard.check()


@pytest.mark.parametrize("known", [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize(
    "source", ["auto", "auto/pseudo", "auto/none", "gt", "pseudo", "self", "band"]
)
def test_part_term_from_the_host_summary_equals_the_device_path(
    known: tuple[bool, bool], source: str
) -> None:
    from semparts_reid.engine.config import TrainConfig
    from semparts_reid.engine.loaders import collate_batch
    from semparts_reid.engine.losses import part_map_term

    labels, _, unlabeled = source.partition("/")
    cfg = TrainConfig().replace(part_labels=labels, unlabeled_part_labels=unlabeled or "self",
                      self_label_threshold=0.3)

    g = torch.Generator().manual_seed(0)
    items = []
    for has in known:
        parts = torch.randint(0, 4, (32, 16), generator=g).to(torch.uint8)
        items.append({"image": torch.zeros(3, 32, 16),
                      "parts": parts if has else torch.full_like(parts, 255)})
    batch = collate_batch(items)
    out = {"part_logits": torch.randn(2, 4, 8, 4, generator=g),
           "feature_map": torch.randn(2, 16, 8, 4, generator=g).abs()}
    fast = part_map_term(out, batch, cfg, check_labels=False)
    plain = {k: v for k, v in batch.items() if k not in ("parts_known", "has_parts")}
    slow = part_map_term(out, plain, cfg)
    if slow is None:
        assert fast is None and source in ("gt", "auto/none") and not any(known)
    else:
        assert fast is not None and torch.equal(fast, slow)
