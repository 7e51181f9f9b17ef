"""``--seed`` fixes the model's initial weights, and any seed in [0, 2**64) works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import tiny_config

from semparts_reid.data import PKSampler, make_generator
from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.loaders import train_sampler
from semparts_reid.errors import InputError


class _Captured(Exception):
    """Stops a run right after the trainer got its model."""


def _capture_initial_weights(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, torch.Tensor]]:
    seen: list[dict[str, torch.Tensor]] = []

    def trainer(model: Any, *args: Any, **kwargs: Any) -> None:
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        raise _Captured

    monkeypatch.setattr("semparts_reid.engine.trainer.DomainAdaptTrainer", trainer)
    return seen


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_run_seeds_the_model_initialisation(
    tiny_pair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semparts_reid.runner import run

    seen = _capture_initial_weights(monkeypatch)
    for i, seed in enumerate((3, 3, 4)):
        torch.manual_seed(100 + i)  # whatever the global RNG held before must not matter
        torch.rand(7)
        with pytest.raises(_Captured):
            run(tiny_config(str(tmp_path), seed=seed), "synthetic:a?size=tiny", None,
                adapt=False)
    assert _same(seen[0], seen[1])
    assert not _same(seen[0], seen[2])


def test_demo_seeds_the_model_initialisation(
    tiny_pair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semparts_reid.demo import DemoSettings, _run_direction

    source, target = tiny_pair
    seen = _capture_initial_weights(monkeypatch)
    for i, seed in enumerate((5, 5, 6)):
        torch.manual_seed(200 + i)
        with pytest.raises(_Captured):
            _run_direction(DemoSettings.quick(), source, target, tmp_path, seed, "cpu")
    assert _same(seen[0], seen[1])
    assert not _same(seen[0], seen[2])


@pytest.mark.parametrize("seed", [0, 4_600_000, 2**40, 2**63 - 1, 2**64 - 1])
def test_large_seeds_do_not_overflow_the_samplers(seed: int) -> None:
    TrainConfig(seed=seed)  # accepted
    pids = [i // 4 for i in range(64)]
    # the trainer's per-(stage, epoch, domain) seed, fed to P x K and uniform batches
    derived = (seed * 1_000_003 + 1 * 10_007 + 3) * 2 + 1

    def batches(k: int) -> list[list[int]]:
        s = train_sampler(64, pids, global_batch=16, steps=3, seed=derived, num_instances=k)
        return s.local_batches().tolist()

    pk = batches(4)
    assert len(pk) == 3 and all(len(b) == 16 for b in pk)
    assert pk == batches(4)
    assert len(batches(0)) == 3
    sampler = PKSampler(pids, p=4, k=4, seed=seed)
    sampler.set_epoch(5)
    assert len(list(sampler)) == len(sampler)


def test_seeds_below_2_64_keep_their_generator() -> None:
    """Reducing modulo 2**64 changes nothing for seeds torch accepted before."""
    for seed in (0, 12345, 2**63 + 7, 2**64 - 1):
        expected = torch.Generator().manual_seed(seed)
        assert torch.equal(torch.randperm(50, generator=make_generator(seed)),
                           torch.randperm(50, generator=expected))
    a = torch.randperm(50, generator=make_generator(2**64 + 9))
    assert torch.equal(a, torch.randperm(50, generator=make_generator(9)))


@pytest.mark.parametrize("seed", [-1, 2**64, 2**70, 1.5, True])
def test_config_rejects_seeds_outside_0_to_2_64(seed: object) -> None:
    with pytest.raises(InputError, match=r"seed=.*expected an int in \[0, 2\*\*64\)"):
        TrainConfig(seed=seed)  # type: ignore[arg-type]
