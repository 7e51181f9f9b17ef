"""P x K and index samplers: structure, rank splits, determinism, resume; worker seeding."""

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
    full = PKSampler(PIDS, p=2, k=2, num_batches=7, seed=3)
    glob = full.global_batches()
    assert glob.shape == (7, 4)
    shards = [
        PKSampler(PIDS, p=2, k=2, num_batches=7, seed=3, rank=r, world_size=3) for r in range(3)
    ]
    lists = [list(s) for s in shards]
    assert len({len(x) for x in lists}) == 1 and len(lists[0]) == len(shards[0])
    g = shards[0].global_batches()
    assert g.shape == (6, 4)  # rounded down to a multiple of world_size
    for r, lst in enumerate(lists):
        assert lst == g[r::3].reshape(-1).tolist()
    assert list(PKSampler(PIDS, p=2, k=2, num_batches=7, seed=3, rank=1, world_size=3)) == lists[1]
    s = shards[0]
    s.set_epoch(1)
    assert list(s) != lists[0]
    with pytest.raises(ValueError, match="only 9"):
        PKSampler(PIDS, p=10, k=2)


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
