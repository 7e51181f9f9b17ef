"""The exemplar memory's update without ``torch.unique`` (no host synchronisation on a
GPU) gives exactly the slots of the ``torch.unique`` formulation, and its index check
can be left to the caller."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semparts_reid.memory import ExemplarMemory
from semparts_reid.memory._unique import unique_padded


def _reference_update(mem: ExemplarMemory, f: torch.Tensor, idx: torch.Tensor, w: torch.Tensor,
                      alpha: float) -> None:
    """The former implementation: ``torch.unique`` sized by the host."""
    f = F.normalize(f.float(), dim=-1)
    uniq, inv = torch.unique(idx, return_inverse=True)
    u = uniq.numel()
    acc = f.new_zeros(u, mem.num_heads, mem.feat_dim).index_add_(0, inv, f * w[..., None])
    cnt = w.new_zeros(u, mem.num_heads).index_add_(0, inv, w)
    mean = (acc / cnt.clamp_min(1.0)[..., None]).transpose(0, 1)
    old = mem.slots[:, uniq].float()
    new = F.normalize(alpha * old + (1.0 - alpha) * mean, dim=-1, eps=1e-12)
    mem.slots[:, uniq] = torch.where((cnt.t() > 0)[..., None], new, old).to(mem.dtype)


@pytest.mark.parametrize("seed", range(4))
def test_unique_padded_matches_torch_unique(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 6, (9,), generator=g)
    uniq, inv, count = unique_padded(idx)
    ref_u, ref_inv = torch.unique(idx, return_inverse=True)
    n = ref_u.numel()
    assert int(count) == n and torch.equal(uniq[:n], ref_u) and torch.equal(inv, ref_inv)
    assert (uniq[n:] == ref_u[-1]).all()


@pytest.mark.parametrize("seed", range(4))
def test_update_equals_the_unique_formulation_bit_for_bit(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    mem, ref = (ExemplarMemory(12, 8, num_heads=3) for _ in range(2))
    start = F.normalize(torch.randn(3, 12, 8, generator=g), dim=-1)
    mem.slots.copy_(start)
    ref.slots.copy_(start)
    for _ in range(3):
        idx = torch.randint(0, 12, (10,), generator=g)  # with repeats
        f = torch.randn(10, 3, 8, generator=g)
        vis = (torch.rand(10, 2, generator=g) > 0.3).float()
        mem.update(f, idx, epoch=3, visibility=vis, check_indices=False)
        w = torch.cat([torch.ones(10, 1), vis], 1)
        _reference_update(ref, f, idx, w, 0.03)
        assert torch.equal(mem.slots, ref.slots)


def test_index_check_is_optional() -> None:
    mem = ExemplarMemory(4, 2)
    with pytest.raises(ValueError, match="indices out of range"):
        mem.loss(torch.randn(2, 2), torch.tensor([0, 4]), neighbours=False)
    with pytest.raises(ValueError, match="indices out of range"):
        mem.update(torch.randn(2, 2), torch.tensor([-1, 0]), epoch=1)
    # unchecked, in-range indices work as checked ones do
    loss = mem.loss(torch.randn(2, 2), torch.tensor([0, 3]), neighbours=True,
                    check_indices=False)
    assert torch.isfinite(loss)
