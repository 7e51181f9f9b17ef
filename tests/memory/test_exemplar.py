"""ExemplarMemory: every term against a hand-written (looped) reference of ECN."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from semparts_reid.memory import ExemplarMemory, LinearMomentum


def _filled(n: int = 20, d: int = 8, heads: int = 1, seed: int = 0, **kw) -> ExemplarMemory:
    g = torch.Generator().manual_seed(seed)
    mem = ExemplarMemory(n, d, num_heads=heads, **kw)
    mem.slots = F.normalize(torch.randn(heads, n, d, generator=g), dim=-1).to(mem.dtype)
    return mem


def _ref_loss_one_head(
    f: torch.Tensor, idx: torch.Tensor, slots: torch.Tensor, beta: float, k: int, nb: bool
) -> torch.Tensor:
    """ECN's smooth_hot target written out per sample: dense weights, then -sum w log p."""
    losses = []
    for i in range(f.shape[0]):
        z = F.normalize(f[i], dim=0) @ slots.t() / beta
        logp = torch.log_softmax(z, dim=0)
        w = torch.zeros_like(z)
        if nb:
            for j in torch.sort(z, descending=True).indices[:k].tolist():
                w[j] = 1.0 / k
        w[int(idx[i])] = 1.0
        losses.append(-(w * logp).sum())
    return torch.stack(losses).mean()


@pytest.mark.parametrize("neighbours", [False, True])
def test_loss_matches_reference_single_head(neighbours: bool) -> None:
    mem = _filled(n=30, d=8, knn=6)
    f = torch.randn(7, 8)
    idx = torch.tensor([0, 3, 3, 29, 10, 11, 12])
    got = mem.loss(f, idx, neighbours=neighbours)
    ref = _ref_loss_one_head(f, idx, mem.slots[0], 0.05, 6, neighbours)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    if not neighbours:  # exemplar invariance == plain cross-entropy on the own slot
        z = F.normalize(f, dim=1) @ mem.slots[0].t() / 0.05
        torch.testing.assert_close(got, F.cross_entropy(z, idx), rtol=1e-5, atol=1e-5)


def test_neighbour_term_when_own_slot_is_nearest() -> None:
    # features equal to their own slot: own slot is top-1, weights sum to 1 + (k-1)/k
    mem = _filled(n=25, d=6, knn=4)
    idx = torch.tensor([1, 5, 9])
    f = mem.slots[0, idx].clone()
    got = mem.loss(f, idx, neighbours=True)
    ref = _ref_loss_one_head(f, idx, mem.slots[0], 0.05, 4, True)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_multi_head_with_visibility_matches_reference() -> None:
    heads, n, d = 4, 16, 5
    mem = _filled(n=n, d=d, heads=heads, knn=3, temperature=0.1)
    f = torch.randn(6, heads, d)
    idx = torch.tensor([0, 1, 2, 3, 4, 5])
    vis_parts = torch.tensor(
        [[1, 1, 0], [0, 1, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 1, 0]], dtype=torch.float32
    )
    per = mem.loss(f, idx, neighbours=True, visibility=vis_parts, reduction="none")
    vis = torch.cat([torch.ones(6, 1), vis_parts], dim=1)
    assert per.shape == (heads,)
    for h in range(heads):
        keep = vis[:, h] > 0
        ref = _ref_loss_one_head(f[keep, h], idx[keep], mem.slots[h], 0.1, 3, True)
        torch.testing.assert_close(per[h], ref, rtol=1e-5, atol=1e-5)
    total = mem.loss(f, idx, neighbours=True, visibility=vis)
    torch.testing.assert_close(total, per.sum())
    torch.testing.assert_close(
        mem.loss(f, idx, neighbours=True, visibility=vis, reduction="mean"), per.mean()
    )


def test_invisible_head_gives_zero_loss_and_zero_gradient() -> None:
    mem = _filled(n=10, d=4, heads=2)
    f = torch.randn(3, 2, 4, requires_grad=True)
    vis = torch.tensor([[1.0], [0.0], [0.0]])  # part head visible only for sample 0
    mem.loss(f, torch.tensor([0, 1, 2]), neighbours=True, visibility=vis).backward()
    assert f.grad is not None
    assert torch.all(f.grad[1:, 1] == 0) and f.grad[0, 1].abs().sum() > 0
    f2 = torch.randn(2, 2, 4)
    per = mem.loss(f2, torch.tensor([0, 1]), neighbours=False,
                   visibility=torch.zeros(2, 1), reduction="none")
    assert per[1] == 0 and per[0] > 0


def test_camera_invariance_is_same_loss_with_original_index() -> None:
    mem = _filled(n=12, d=4)
    f_cam = torch.randn(3, 4)
    idx = torch.tensor([2, 7, 7])
    torch.testing.assert_close(
        mem.loss(f_cam, idx, neighbours=False),
        _ref_loss_one_head(f_cam, idx, mem.slots[0], 0.05, 6, False),
    )


def test_update_matches_reference_and_renormalises() -> None:
    mem = _filled(n=10, d=4, heads=2)
    before = mem.slots.clone()
    f = torch.randn(3, 2, 4) * 3
    idx = torch.tensor([4, 0, 9])
    vis = torch.tensor([[1.0], [0.0], [1.0]])
    mem.update(f, idx, epoch=30, visibility=vis)
    a = 0.3
    expect = before.clone()
    for i in range(3):
        for h in range(2):
            if h == 1 and vis[i, 0] == 0:
                continue
            v = a * before[h, idx[i]] + (1 - a) * F.normalize(f[i, h], dim=0)
            expect[h, idx[i]] = v / v.norm()
    torch.testing.assert_close(mem.slots, expect, rtol=1e-5, atol=1e-6)
    assert torch.allclose(mem.slots.norm(dim=-1), torch.ones(2, 10), atol=1e-5)


def test_update_from_zero_memory_and_duplicates_average() -> None:
    mem = ExemplarMemory(5, 3)
    f = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 2.0]])
    mem.update(f, torch.tensor([2, 2, 4]), epoch=0)
    torch.testing.assert_close(mem.slots[0, 2], F.normalize(torch.tensor([1.0, 1.0, 0]), dim=0))
    torch.testing.assert_close(mem.slots[0, 4], torch.tensor([0, 0, 1.0]))
    assert torch.all(mem.slots[0, [0, 1, 3]] == 0)  # untouched slots stay zero (ECN init)


def test_loss_uses_memory_before_update() -> None:
    mem = _filled(n=8, d=4)
    f = torch.randn(2, 4)
    idx = torch.tensor([1, 2])
    first = mem.loss(f, idx, neighbours=False)
    mem.update(f, idx, epoch=0)  # alpha=0: slots become the features
    second = mem.loss(f, idx, neighbours=False)
    assert second < first


def test_momentum_schedule() -> None:
    sched = LinearMomentum()
    assert sched(0) == 0.0 and math.isclose(sched(5), 0.05) and math.isclose(sched(80), 0.8)
    assert LinearMomentum(step=0.1, max_momentum=0.5)(10) == 0.5
    with pytest.raises(ValueError, match="max_momentum"):
        LinearMomentum(max_momentum=1.0)
    mem = _filled(n=4, d=2, momentum_schedule=lambda e: 1.0)  # alpha 1: slots frozen
    before = mem.slots.clone()
    mem.update(torch.randn(2, 2), torch.tensor([0, 1]), epoch=3)
    torch.testing.assert_close(mem.slots, before)
    bad = ExemplarMemory(4, 2, momentum_schedule=lambda e: 1.5)
    with pytest.raises(ValueError, match="momentum"):
        bad.update(torch.randn(1, 2), torch.tensor([0]), epoch=1)


def test_state_round_trip() -> None:
    mem = _filled(n=6, d=3, heads=2, dtype=torch.bfloat16)
    other = ExemplarMemory(6, 3, num_heads=2, dtype=torch.bfloat16)
    other.load_state_dict(mem.state_dict())
    assert torch.equal(other.slots, mem.slots) and other.slots.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="expected"):
        ExemplarMemory(7, 3, num_heads=2).load_state_dict(mem.state_dict())


def test_bf16_storage_close_to_fp32() -> None:
    m32 = _filled(n=40, d=16, heads=2)
    m16 = ExemplarMemory(40, 16, num_heads=2, dtype=torch.bfloat16)
    m16.load_state_dict(m32.state_dict())
    f = torch.randn(5, 2, 16)
    idx = torch.arange(5)
    l32 = m32.loss(f, idx, neighbours=True)
    l16 = m16.loss(f, idx, neighbours=True)
    assert l16.dtype == torch.float32
    torch.testing.assert_close(l16, l32, rtol=0.05, atol=0.05)
    assert m16.slots.element_size() == 2


def test_input_checks_name_the_argument() -> None:
    mem = ExemplarMemory(10, 4, num_heads=2)
    with pytest.raises(ValueError, match="features"):
        mem.loss(torch.randn(3, 4), torch.arange(3), neighbours=False)
    with pytest.raises(ValueError, match="indices"):
        mem.loss(torch.randn(3, 2, 4), torch.tensor([0, 1, 10]), neighbours=False)
    with pytest.raises(ValueError, match="indices"):
        mem.loss(torch.randn(3, 2, 4), torch.arange(2), neighbours=False)
    with pytest.raises(ValueError, match="visibility"):
        mem.loss(torch.randn(3, 2, 4), torch.arange(3), neighbours=False,
                 visibility=torch.ones(3, 3))
    with pytest.raises(ValueError, match="num_samples"):
        ExemplarMemory(0, 4)
    with pytest.raises(ValueError, match="knn"):
        ExemplarMemory(3, 4, knn=-1)
    with pytest.raises(ValueError, match="reduction"):
        mem.loss(torch.randn(3, 2, 4), torch.arange(3), neighbours=False, reduction="avg")


def test_memory_is_not_a_parameter_and_gradient_flows_to_features() -> None:
    mem = _filled(n=10, d=4)
    assert not mem.slots.requires_grad
    f = torch.randn(4, 4, requires_grad=True)
    mem.loss(f, torch.arange(4), neighbours=True).backward()
    assert f.grad is not None and torch.isfinite(f.grad).all()
    assert mem.slots.grad is None
