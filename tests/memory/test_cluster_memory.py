"""ClusterMemory: reset, loss and both updates against looped references; DDP replicas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

import semparts_reid.memory.cluster as cluster_module
from semparts_reid.memory import ClusterMemory

D, H = 8, 4


def _data(n: int = 30, c: int = 5, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, H, D, generator=g)
    labels = torch.randint(-1, c, (n,), generator=g)
    labels[:c] = torch.arange(c)  # every cluster has a member
    vis = (torch.rand(n, H - 1, generator=g) > 0.3).float()
    return feats, labels, vis


def _ref_reset(feats, labels, vis, c):  # noqa: ANN001, ANN202
    full = torch.cat([torch.ones(len(labels), 1), vis], 1)
    bank = torch.zeros(H, c, D)
    for h in range(H):
        for k in range(c):
            rows = [i for i in range(len(labels)) if labels[i] == k and full[i, h] > 0.5]
            if rows:
                m = torch.stack([F.normalize(feats[i, h], dim=0) for i in rows]).mean(0)
                bank[h, k] = F.normalize(m, dim=0)
    return bank


def test_reset_is_the_normalised_mean_of_visible_members() -> None:
    feats, labels, vis = _data()
    vis[labels == 3, 0] = 0  # cluster 3 has no visible head: a zero centroid there
    mem = ClusterMemory(D, num_heads=H)
    mem.reset(feats, labels, visibility=vis)
    assert mem.num_clusters == 5 and mem.centroids.shape == (H, 5, D)
    torch.testing.assert_close(mem.centroids, _ref_reset(feats, labels, vis, 5))
    assert mem.centroids[1, 3].abs().sum() == 0
    mem.reset(feats, labels, visibility=vis, num_clusters=7)  # empty clusters allowed
    assert mem.centroids.shape == (H, 7, D) and mem.centroids[:, 5:].abs().sum() == 0
    with pytest.raises(ValueError, match=r"labels in \[-1, 4\]: expected values in \[-1, 2\]"):
        mem.reset(feats, labels, num_clusters=3)
    mem.reset(feats, torch.full_like(labels, -1))  # every image an outlier
    assert mem.num_clusters == 0


def test_reset_in_row_chunks_gives_the_same_bank(monkeypatch: pytest.MonkeyPatch) -> None:
    feats, labels, vis = _data(n=30)
    whole = ClusterMemory(D, num_heads=H)
    whole.reset(feats, labels, visibility=vis)
    monkeypatch.setattr(cluster_module, "_RESET_CHUNK", 7)
    chunked = ClusterMemory(D, num_heads=H)
    chunked.reset(feats, labels, visibility=vis)
    torch.testing.assert_close(chunked.centroids, whole.centroids)


def test_loss_matches_reference_and_ignores_outliers_and_invisible_parts() -> None:
    feats, labels, vis = _data()
    mem = ClusterMemory(D, num_heads=H, temperature=0.05)
    mem.reset(feats, labels, visibility=vis)
    b = torch.randn(6, H, D, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, -1, 2, 4, 1, -1])
    v = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 0], [1, 1, 0], [1, 1, 1], [0, 1, 1.0]])
    got = mem.loss(b, y, visibility=v, reduction="none")
    full = torch.cat([torch.ones(6, 1), v], 1)
    for h in range(H):
        terms = [
            -torch.log_softmax(F.normalize(b[i, h], dim=0) @ mem.centroids[h].t() / 0.05, 0)[y[i]]
            for i in range(6) if y[i] >= 0 and full[i, h] > 0
        ]
        torch.testing.assert_close(got[h], torch.stack(terms).mean())
    assert torch.allclose(mem.loss(b, y, visibility=v), got.sum())
    torch.testing.assert_close(mem.loss(b, y, visibility=v, reduction="mean"), got.mean())
    # soft targets equal to the one-hots give the same loss
    t = F.one_hot(y.clamp_min(0), 5).float()[None].expand(H, 6, 5)
    torch.testing.assert_close(mem.loss(b, y, visibility=v, targets=t, reduction="none"), got)


def test_a_batch_of_outliers_gives_an_exact_zero_with_a_graph() -> None:
    feats, labels, vis = _data()
    mem = ClusterMemory(D, num_heads=H)
    mem.reset(feats, labels, visibility=vis)
    b = torch.randn(3, H, D, requires_grad=True)
    loss = mem.loss(b, torch.full((3,), -1), visibility=torch.ones(3, H - 1))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert b.grad is not None and b.grad.abs().sum() == 0
    empty = ClusterMemory(D, num_heads=H)  # no cluster at all (before the first reset)
    z = empty.loss(b, torch.tensor([0, 1, -1]), reduction="none")
    assert z.shape == (H,) and z.abs().sum() == 0 and z.requires_grad


@pytest.mark.parametrize("hard", [False, True])
def test_update_matches_reference(hard: bool) -> None:
    feats, labels, vis = _data()
    mem = ClusterMemory(D, num_heads=H, momentum=0.1, hard=hard)
    mem.reset(feats, labels, visibility=vis)
    old = mem.centroids.clone()
    g = torch.Generator().manual_seed(2)
    b = torch.randn(8, H, D, generator=g)
    y = torch.tensor([0, 0, 3, -1, 3, 3, 1, 0])
    v = (torch.rand(8, H - 1, generator=g) > 0.4).float()
    mem.update(b, y, visibility=v)
    want = old.clone()
    full = torch.cat([torch.ones(8, 1), v], 1)
    for h in range(H):
        for k in y.unique().tolist():
            rows = [i for i in range(8) if y[i] == k and full[i, h] > 0.5]
            if k < 0 or not rows:
                continue
            fs = torch.stack([F.normalize(b[i, h], dim=0) for i in rows])
            if hard:
                x = fs[int(torch.argmin(fs @ old[h, k]))]
            else:
                x = fs.mean(0)
            want[h, k] = F.normalize(0.1 * old[h, k] + 0.9 * x, dim=0)
    torch.testing.assert_close(mem.centroids, want)
    assert torch.equal(mem.centroids[:, 2], old[:, 2]) and torch.equal(mem.centroids[:, 4],
                                                                       old[:, 4])


def test_state_round_trips_across_cluster_counts_and_bad_states_are_named() -> None:
    feats, labels, vis = _data()
    mem = ClusterMemory(D, num_heads=H, momentum=0.3, hard=True)
    mem.reset(feats, labels, visibility=vis)
    other = ClusterMemory(D, num_heads=H)
    other.reset(feats[:4], torch.tensor([0, 1, 0, 1]))
    other.load_state_dict(mem.state_dict())
    assert torch.equal(other.centroids, mem.centroids) and other.hard and other.momentum == 0.3
    with pytest.raises(ValueError, match=r"shape \(4, 5, 3\): expected \(4, C, 8\)"):
        other.load_state_dict({"centroids": torch.zeros(4, 5, 3)})
    with pytest.raises(KeyError, match="centroids"):
        other.load_state_dict({})


def test_bad_inputs_are_named() -> None:
    mem = ClusterMemory(D, num_heads=H)
    with pytest.raises(ValueError, match=r"features of shape \(2, 8\): expected \(B, 4, 8\)"):
        mem.loss(torch.randn(2, D), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels of shape"):
        mem.loss(torch.randn(2, H, D), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"visibility of shape \(2, 2\)"):
        mem.loss(torch.randn(2, H, D), torch.tensor([0, 1]), visibility=torch.ones(2, 2))
    for kw, text in (({"temperature": 0}, "temperature"), ({"momentum": 1.5}, "momentum"),
                     ({"num_heads": 0}, "num_heads")):
        with pytest.raises(ValueError, match=text):
            ClusterMemory(D, **kw)  # type: ignore[arg-type]


def test_bf16_storage_and_single_head_shapes() -> None:
    mem = ClusterMemory(D, dtype=torch.bfloat16)
    f = torch.randn(6, D)
    mem.reset(f, torch.tensor([0, 0, 1, 1, 2, -1]))
    assert mem.centroids.dtype == torch.bfloat16 and mem.centroids.shape == (1, 3, D)
    loss = mem.loss(f, torch.tensor([0, 0, 1, 1, 2, -1]))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    mem.update(f, torch.tensor([0, 0, 1, 1, 2, -1]))
    assert mem.centroids.dtype == torch.bfloat16


# ---------------------------------------------------------------------------- DDP
N_STEPS, B = 3, 8


def _batches() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(5)
    return [(torch.randn(B, H, D, generator=g), torch.randint(-1, 5, (B,), generator=g),
             (torch.rand(B, H - 1, generator=g) > 0.3).float()) for _ in range(N_STEPS)]


def _worker(rank: int, world: int, store: str, outdir: str, hard: bool) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        feats, labels, vis = _data()
        mem = ClusterMemory(D, num_heads=H, hard=hard)
        mem.reset(feats, labels, visibility=vis)
        half = B // world
        for f, y, v in _batches():
            sl = slice(rank * half, (rank + 1) * half)
            mem.update(f[sl], y[sl], visibility=v[sl])
        torch.save(mem.centroids, os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("hard", [False, True])
def test_two_process_updates_match_one_process(tmp_path: Path, hard: bool) -> None:
    mp.start_processes(_worker, args=(2, str(tmp_path / "store"), str(tmp_path), hard),
                       nprocs=2, start_method="spawn", join=True)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(r0, r1), "centroid replicas diverged"
    feats, labels, vis = _data()
    ref = ClusterMemory(D, num_heads=H, hard=hard)
    ref.reset(feats, labels, visibility=vis)
    for f, y, v in _batches():
        ref.update(f, y, visibility=v)
    torch.testing.assert_close(r0, ref.centroids)
