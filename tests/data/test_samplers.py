"""The sampler family: P x K and random global batches, rank slices, determinism, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from semparts_reid.data import PKSampler, RandomIndexSampler, make_generator, seed_worker

# 9 identities with 1..6 images each
PIDS = [p for p in range(9) for _ in range(1 + p % 6)]


def test_pk_structure() -> None:
    s = PKSampler(PIDS, p=3, k=4, seed=0)
    idx = list(s)
    assert len(idx) == len(s) and len(idx) % 12 == 0
    pids = np.asarray(PIDS)
    for batch in np.asarray(idx).reshape(-1, 12):
        ids = pids[batch].reshape(3, 4)
        assert (ids == ids[:, :1]).all()  # k images of one identity in a row
        assert len(set(ids[:, 0])) == 3  # p distinct identities
    # identities with >= k images give k distinct images
    for batch in np.asarray(idx).reshape(-1, 3, 4):
        for group in batch:
            if PIDS.count(PIDS[group[0]]) >= 4:
                assert len(set(group.tolist())) == 4


def test_pk_covers_identities_before_repeating() -> None:
    s = PKSampler(PIDS, p=3, k=2, num_batches=3, seed=5)
    ids = np.asarray(PIDS)[list(s)].reshape(3, 3, 2)[:, :, 0].reshape(-1)
    assert sorted(ids.tolist()) == list(range(9))


def test_pk_rank_split_and_determinism() -> None:
    full = PKSampler(PIDS, p=3, k=2, num_batches=7, seed=3)
    glob = full.global_batches()
    assert glob.shape == (7, 6) and full.local_batch_size == 6
    shards = [
        PKSampler(PIDS, p=3, k=2, num_batches=7, seed=3, rank=r, world_size=3) for r in range(3)
    ]
    lists = [list(s) for s in shards]
    assert {len(x) for x in lists} == {len(shards[0])} == {7 * 2}
    for r, (s, lst) in enumerate(zip(shards, lists)):
        assert s.local_batch_size == 2
        assert np.array_equal(s.global_batches(), glob)  # every rank draws the same batches
        assert lst == glob[:, 2 * r : 2 * r + 2].reshape(-1).tolist()  # and takes its slice
    # the slices of one step, side by side, are the one-process batch of that step
    merged = np.concatenate([np.reshape(x, (7, 2)) for x in lists], axis=1)
    assert np.array_equal(merged, glob)
    assert list(PKSampler(PIDS, p=3, k=2, num_batches=7, seed=3, rank=1, world_size=3)) == lists[1]
    s = shards[0]
    s.set_epoch(1)
    assert list(s) != lists[0]
    with pytest.raises(ValueError, match="only 9"):
        PKSampler(PIDS, p=10, k=2)
    with pytest.raises(ValueError, match="batch_size=4: expected a positive multiple of world"):
        PKSampler(PIDS, p=2, k=2, rank=0, world_size=3)


def test_pk_single_rank_default_length() -> None:
    s = PKSampler(PIDS, p=2, k=2)
    assert len(s) == (len(PIDS) // 4) * 4


def test_state_dict_resume() -> None:
    s = PKSampler(PIDS, p=3, k=2, seed=11)
    s.set_epoch(4)
    order = list(s)
    state = s.state_dict(consumed=6)
    r = PKSampler(PIDS, p=3, k=2, seed=0)
    r.load_state_dict(state)
    assert list(r) == order[6:]
    assert list(r) == order  # the skip applies once
    ri = RandomIndexSampler(20, seed=2)
    ri.set_epoch(3)
    o = list(ri)
    ri2 = RandomIndexSampler(20)
    ri2.load_state_dict(ri.state_dict(consumed=5))
    assert list(ri2) == o[5:]


@pytest.mark.parametrize(("n", "world", "drop"), [(10, 3, False), (10, 3, True), (12, 4, False)])
def test_random_index_sampler_ranks(n: int, world: int, drop: bool) -> None:
    shards = [
        list(RandomIndexSampler(n, seed=1, rank=r, world_size=world, drop_last=drop))
        for r in range(world)
    ]
    lengths = {len(x) for x in shards}
    assert len(lengths) == 1
    allidx = [i for sh in shards for i in sh]
    if drop:
        assert len(set(allidx)) == len(allidx) == (n // world) * world
    else:
        assert set(allidx) == set(range(n))
    assert (
        list(RandomIndexSampler(n, seed=1, rank=0, world_size=world, drop_last=drop)) == shards[0]
    )
    with pytest.raises(ValueError, match="rank=3"):
        RandomIndexSampler(n, rank=3, world_size=3)


def test_unshuffled_is_identity() -> None:
    assert list(RandomIndexSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]
    s = RandomIndexSampler(5, batch_size=4, num_batches=2, shuffle=False)
    assert s.global_batches().tolist() == [[0, 1, 2, 3], [4, 0, 1, 2]]


def test_random_global_batches_are_sliced_across_ranks() -> None:
    whole = RandomIndexSampler(10, batch_size=4, num_batches=5, seed=3)
    glob = whole.global_batches()
    assert glob.shape == (5, 4) and len(whole) == 20
    assert len(set(glob[:2].reshape(-1).tolist())) == 8  # a permutation before any repeat
    assert sorted(glob.reshape(-1)[:10].tolist()) == list(range(10))
    r0, r1 = (RandomIndexSampler(10, batch_size=4, num_batches=5, seed=3, rank=r, world_size=2)
              for r in range(2))
    assert r0.local_batch_size == 2 and len(r0) == 10
    assert np.array_equal(np.concatenate([r0.local_batches(), r1.local_batches()], 1), glob)
    assert list(r1) == glob[:, 2:].reshape(-1).tolist()
    again = RandomIndexSampler(10, batch_size=4, num_batches=5, seed=3)
    assert np.array_equal(again.global_batches(), glob)  # a pure function of (seed, epoch)
    other = RandomIndexSampler(10, batch_size=4, num_batches=5, seed=4)
    assert not np.array_equal(other.global_batches(), glob)
    with pytest.raises(ValueError, match="batch_size=5: expected a positive multiple"):
        RandomIndexSampler(10, batch_size=5, num_batches=1, rank=0, world_size=2)
    with pytest.raises(ValueError, match="num_batches=0"):
        RandomIndexSampler(10, batch_size=2, num_batches=0)
    with pytest.raises(ValueError, match="num_samples=3 < batch_size=4 with drop_last"):
        RandomIndexSampler(3, batch_size=4, drop_last=True)


def test_epoch_generator_is_seed_times_stride_plus_epoch() -> None:
    """The documented rule: epoch ``e`` of seed ``s`` draws from ``s * 1_000_003 + e``."""
    s = RandomIndexSampler(50, batch_size=50, num_batches=1, seed=7)
    s.set_epoch(2)
    expected = torch.randperm(50, generator=make_generator(7 * 1_000_003 + 2))
    assert s.global_batches()[0].tolist() == expected.tolist()
    assert torch.equal(s.generator().get_state(), make_generator(7_000_023).get_state())


def test_mid_epoch_resume_of_a_rank_slice() -> None:
    s = PKSampler(PIDS, p=4, k=2, num_batches=5, seed=1, rank=1, world_size=2)
    s.set_epoch(2)
    order = list(s)
    r = PKSampler(PIDS, p=4, k=2, num_batches=5, seed=9, rank=1, world_size=2)
    r.load_state_dict(s.state_dict(consumed=8))  # two local batches of 4 already used
    assert list(r) == order[8:]


def test_a_data_loader_over_the_sampler_gives_the_local_batches() -> None:
    s = PKSampler(PIDS, p=3, k=2, num_batches=4, seed=2, rank=0, world_size=3)
    loader = DataLoader(list(range(len(PIDS))), batch_size=s.local_batch_size, sampler=s)
    assert [b.tolist() for b in loader] == s.local_batches().tolist()


class _Noisy(Dataset[torch.Tensor]):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([float(i), torch.rand(()).item(), float(np.random.rand())])


def test_seeded_workers_reproducible() -> None:
    def run(seed: int) -> torch.Tensor:
        dl = DataLoader(
            _Noisy(),
            batch_size=4,
            num_workers=2,
            worker_init_fn=seed_worker,
            generator=make_generator(seed),
        )
        return torch.cat(list(dl))

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a, b) and not torch.equal(a, c)
