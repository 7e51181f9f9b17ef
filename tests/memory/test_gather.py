"""all_gather_rows: the one all-gather of the memories (and of the engine)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from semparts_reid.memory import all_gather_rows, world_size


def test_single_process_returns_the_input_itself() -> None:
    assert not dist.is_initialized() and world_size() == 1
    for t in (torch.randn(5, 3), torch.arange(4), torch.empty(0, 2)):
        assert all_gather_rows(t) is t


def test_engine_reexports_the_same_function() -> None:
    from semparts_reid.engine import distributed

    assert distributed.all_gather_rows is all_gather_rows
    assert "all_gather_rows" in distributed.__all__


def _worker(rank: int, world: int, store: str, outdir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        rows = rank + 1  # uneven batch sizes: 1, 2, 3
        t = torch.full((rows, 2), float(rank))
        idx = torch.arange(rows) + 10 * rank
        torch.save(
            {"world": world_size(), "t": all_gather_rows(t), "idx": all_gather_rows(idx)},
            os.path.join(outdir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_three_ranks_with_uneven_batches_gather_in_rank_order(tmp_path: Path) -> None:
    world = 3
    mp.start_processes(_worker, args=(world, str(tmp_path / "store"), str(tmp_path)),
                       nprocs=world, start_method="spawn", join=True)
    want_t = torch.cat([torch.full((r + 1, 2), float(r)) for r in range(world)])
    want_idx = torch.cat([torch.arange(r + 1) + 10 * r for r in range(world)])
    for rank in range(world):
        out = torch.load(tmp_path / f"rank{rank}.pt")
        assert out["world"] == world
        assert torch.equal(out["t"], want_t) and torch.equal(out["idx"], want_idx)
