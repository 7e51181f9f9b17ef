"""The private base both memories share (:class:`semparts_reid.memory._bank.HeadBank`)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semparts_reid.memory import ClusterMemory, ExemplarMemory
from semparts_reid.memory._bank import HeadBank
from semparts_reid.memory._unique import unique_padded


class _Bank(HeadBank):
    _bank_attr = "rows"

    def __init__(self, rows: int, feat_dim: int, num_heads: int, dtype: torch.dtype) -> None:
        self.feat_dim, self.num_heads, self.temperature = feat_dim, num_heads, 0.5
        self.rows = F.normalize(torch.randn(num_heads, rows, feat_dim), dim=-1).to(dtype)


def test_both_memories_share_the_base_and_keep_their_bank_names() -> None:
    c, e = ClusterMemory(8, num_heads=2), ExemplarMemory(5, 8, dtype=torch.bfloat16)
    assert isinstance(c, HeadBank) and isinstance(e, HeadBank)
    assert c.to("cpu") is c and e.to(torch.device("cpu")) is e
    assert (c.dtype, e.dtype) == (torch.float32, torch.bfloat16)
    assert c.device == c.centroids.device and e.device == e.slots.device
    assert "centroids" in vars(c) and "slots" in vars(e)  # plain attributes, not properties


def test_to_dtype_device_follow_the_named_bank() -> None:
    bank = _Bank(3, 4, 2, torch.float16)
    assert bank.dtype == torch.float16 and bank.device == torch.device("cpu")
    before = bank.rows
    assert bank.to("cpu") is bank and torch.equal(bank.rows, before)


def test_heads_accepts_bd_with_one_head_and_names_bad_shapes() -> None:
    one, four = _Bank(3, 4, 1, torch.float32), _Bank(3, 4, 4, torch.float32)
    assert one._heads(torch.randn(2, 4)).shape == (2, 1, 4)
    with pytest.raises(TypeError, match="float tensor"):
        one._heads(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"features of shape \(2, 4\): expected \(B, 4, 4\)$"):
        four._heads(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"are \(B, D\) but the memory has num_heads=4"):
        four._heads(torch.randn(2, 4), explain_2d=True)


def test_visible_prepends_the_global_head_and_thresholds() -> None:
    bank = _Bank(3, 4, 3, torch.float32)
    got = bank._visible(torch.tensor([[0.2, 0.9], [1.0, 0.0]]), 2, torch.device("cpu"), "(x)")
    assert torch.equal(got, torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"expected \(2, 3\) or \(2, 2\) \(hint\)"):
        bank._visible(torch.ones(2, 5), 2, torch.device("cpu"), "(hint)")
    with pytest.raises(TypeError, match="visibility"):
        bank._visible([1.0], 2, torch.device("cpu"), "")  # type: ignore[arg-type]


def test_logits_and_reductions() -> None:
    bank = _Bank(5, 4, 2, torch.float32)
    f = torch.randn(3, 2, 4)
    want = torch.einsum("bhd,hrd->hbr", F.normalize(f, dim=-1), bank.rows) / 0.5
    assert torch.allclose(bank._logits(f), want, atol=1e-6)
    per, w = torch.tensor([[1.0, 3.0], [2.0, 4.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    per_head = HeadBank._head_means(per, w)  # head 1 has no sample: 0
    assert torch.equal(per_head, torch.tensor([2.0, 0.0]))
    assert HeadBank._reduce_heads(per_head, "sum") == 2.0
    assert HeadBank._reduce_heads(per_head, "mean") == 1.0
    assert HeadBank._reduce_heads(per_head, "none") is per_head
    with pytest.raises(ValueError, match="reduction"):
        HeadBank._check_reduction("max")


def test_group_means_and_momentum_write_match_a_per_row_update() -> None:
    torch.manual_seed(0)
    bank = _Bank(6, 4, 2, torch.float32)
    ref = bank.rows.clone()
    idx = torch.tensor([4, 1, 4, 4, 0])
    f = F.normalize(torch.randn(5, 2, 4), dim=-1)
    w = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    uniq, inv, count = unique_padded(idx)
    x, cnt = bank._group_means(f, w, inv)
    bank._momentum_write(uniq, count, bank.rows[:, uniq].float(), x, cnt, 0.25)
    for r in (0, 1, 4):
        for h in range(2):
            used = (idx == r) & (w[:, h] > 0)
            if not used.any():
                assert torch.equal(bank.rows[h, r], ref[h, r])
                continue
            mean = f[used, h].mean(0)
            want = F.normalize(0.25 * ref[h, r] + 0.75 * mean, dim=-1)
            assert torch.allclose(bank.rows[h, r], want, atol=1e-6)
    for r in (2, 3, 5):  # not in the batch
        assert torch.equal(bank.rows[:, r], ref[:, r])


def test_long_rows_checks_shape_and_dtype() -> None:
    cpu = torch.device("cpu")
    got = HeadBank._long_rows(torch.tensor([1, 2], dtype=torch.int32), "idx", 2, cpu)
    assert got.dtype == torch.long and got.tolist() == [1, 2]
    with pytest.raises(TypeError, match="idx: expected a tensor"):
        HeadBank._long_rows([1, 2], "idx", 2, cpu)  # type: ignore[arg-type]
    for bad in (torch.tensor([1.0, 2.0]), torch.tensor([True, False]), torch.tensor([1, 2, 3])):
        with pytest.raises(ValueError, match=r"idx of shape .* shape \(2,\) \(note\)$"):
            HeadBank._long_rows(bad, "idx", 2, cpu, " (note)")
