"""ExemplarMemory under torch.distributed (2 CPU processes, gloo).

Each rank holds half of a global batch. After several loss + update steps the two
replicas must be identical and equal to a single-process memory fed the whole batch,
and the mean of the ranks' losses must equal the single-process loss.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from dist_helpers import hosted_store

from semparts_reid.memory import ExemplarMemory

N, D, HEADS, B, STEPS = 40, 8, 3, 8, 4


def _batches() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(STEPS):
        f = torch.randn(B, HEADS, D, generator=g)
        idx = torch.randperm(N, generator=g)[:B]
        vis = (torch.rand(B, HEADS - 1, generator=g) > 0.3).float()
        out.append((f, idx, vis))
    return out


def _worker(rank: int, world: int, env: dict[str, str], outdir: str) -> None:
    os.environ.update(env)  # the parent hosts the store: no free-port race
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mem = ExemplarMemory(N, D, num_heads=HEADS, knn=3)
        local = B // world
        losses = []
        for step, (f, idx, vis) in enumerate(_batches()):
            sl = slice(rank * local, (rank + 1) * local)
            loss = mem.loss(f[sl], idx[sl], neighbours=step >= 2, visibility=vis[sl],
                            reduction="none")
            losses.append(loss)
            mem.update(f[sl], idx[sl], epoch=step, visibility=vis[sl])
        torch.save({"slots": mem.slots, "losses": torch.stack(losses)},
                   os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_memory_matches_single_process(tmp_path) -> None:
    with hosted_store() as env:
        mp.start_processes(_worker, args=(2, env, str(tmp_path)), nprocs=2,
                           start_method="spawn", join=True)
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    assert torch.equal(r0["slots"], r1["slots"]), "memory replicas diverged"

    ref = ExemplarMemory(N, D, num_heads=HEADS, knn=3)
    for step, (f, idx, vis) in enumerate(_batches()):
        # per-head loss of the whole batch == mean of the per-rank losses when every
        # head has as many visible images on each rank; compare the global head exactly
        full = ref.loss(f, idx, neighbours=step >= 2, visibility=vis, reduction="none")
        torch.testing.assert_close(
            full[0], (r0["losses"][step, 0] + r1["losses"][step, 0]) / 2, rtol=1e-5, atol=1e-5
        )
        ref.update(f, idx, epoch=step, visibility=vis)
    torch.testing.assert_close(r0["slots"], ref.slots, rtol=1e-5, atol=1e-6)
