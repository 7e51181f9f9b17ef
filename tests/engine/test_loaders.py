"""The trainer's loaders: one epoch of seeded global batches per (stage, epoch, domain)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from semparts_reid.data import PKSampler, RandomIndexSampler
from semparts_reid.engine.loaders import build_train_loader, train_sampler

PIDS = [i // 3 for i in range(24)]  # 8 identities x 3 images


def test_ranks_take_slices_of_the_same_global_batches() -> None:
    whole = train_sampler(10, [0] * 10, global_batch=4, steps=5, seed=3).local_batches()
    r0, r1 = (train_sampler(10, [0] * 10, global_batch=4, steps=5, seed=3, rank=r, world=2)
              for r in range(2))
    assert isinstance(r0, RandomIndexSampler)
    assert np.array_equal(np.concatenate([r0.local_batches(), r1.local_batches()], 1), whole)
    again = train_sampler(10, [0] * 10, global_batch=4, steps=5, seed=3).local_batches()
    assert np.array_equal(again, whole)  # a pure function of the seed
    other = train_sampler(10, [0] * 10, global_batch=4, steps=5, seed=4).local_batches()
    assert not np.array_equal(other, whole)
    assert len(set(whole[:2].reshape(-1).tolist())) == 8  # a permutation before any repeat
    pk = train_sampler(24, PIDS, global_batch=8, steps=3, seed=0, num_instances=2)
    assert isinstance(pk, PKSampler) and (pk.p, pk.k) == (4, 2)
    for batch in pk.local_batches():
        ids = [PIDS[i] for i in batch]
        assert ids[0::2] == ids[1::2]  # K = 2 images of each identity in a row
    with pytest.raises(ValueError, match="batch_size=5: expected a positive multiple"):
        train_sampler(10, [0] * 10, global_batch=5, steps=1, seed=0, world=2)
    with pytest.raises(ValueError, match="global_batch=6 is not a multiple of num_instances=4"):
        train_sampler(24, PIDS, global_batch=6, steps=1, seed=0, num_instances=4)
    with pytest.raises(ValueError, match="num_items=0"):
        train_sampler(0, [], global_batch=2, steps=1, seed=0)


def test_a_seed_keeps_the_batches_of_earlier_releases() -> None:
    """Pinned batches (drawn before the samplers became one family): the demo's figures
    depend on them. ``20017`` / ``20016`` are the trainer's target / source seeds of
    ``seed=0``, stage ``adapt``, epoch 1."""
    target = train_sampler(24, PIDS, global_batch=8, steps=3, seed=20017, rank=1, world=2)
    assert target.local_batches().tolist() == [[12, 18, 16, 14], [0, 20, 8, 17], [5, 22, 21, 4]]
    uniform = train_sampler(24, PIDS, global_batch=8, steps=3, seed=20016, rank=0, world=2)
    assert uniform.local_batches().tolist() == [[17, 1, 11, 8], [7, 22, 6, 21], [3, 23, 20, 4]]
    pk = train_sampler(24, PIDS, global_batch=8, steps=3, seed=20016, num_instances=4, world=2)
    assert pk.local_batches().tolist() == [[8, 7, 7, 7], [2, 1, 0, 0], [3, 4, 5, 3]]


def test_build_train_loader_yields_this_ranks_batches() -> None:
    cfg = SimpleNamespace(num_workers=0)
    loader = build_train_loader(list(range(24)), PIDS, cfg, global_batch=8, steps=3, seed=7,
                                num_instances=4, rank=1, world=2)
    expected = train_sampler(24, PIDS, global_batch=8, steps=3, seed=7, num_instances=4,
                             rank=1, world=2).local_batches().tolist()
    assert len(loader) == 3
    assert [b.tolist() for b in loader] == expected
