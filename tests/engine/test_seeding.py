"""Any seed in [0, 2**64) works (that ``--seed`` fixes the initial weights: tests/cli)."""

from __future__ import annotations

import pytest
import torch

from semparts_reid.data import PKSampler, make_generator
from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.loaders import train_sampler
from semparts_reid.errors import InputError


@pytest.mark.parametrize("seed", [0, 4_600_000, 2**40, 2**63 - 1, 2**64 - 1])
def test_large_seeds_do_not_overflow_the_samplers(seed: int) -> None:
    TrainConfig().replace(seed=seed)  # accepted
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
        TrainConfig().replace(seed=seed)  # type: ignore[arg-type]
