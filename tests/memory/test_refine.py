"""Semantic-part refinement maths: agreement, refined global targets, agreement smoothing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semparts_reid.memory import (
    agreement_smoothed_targets,
    knn_agreement,
    refined_global_targets,
)


def _ref_agreement(g, p, vis, k):  # noqa: ANN001, ANN202
    """Sets of the k nearest neighbours, one image and part at a time."""
    n, parts = p.shape[:2]
    g, p = F.normalize(g, dim=1), F.normalize(p, dim=2)
    out = torch.zeros(n, parts)
    for i in range(n):
        sg = g @ g[i]
        sg[i] = -float("inf")
        near_g = set(sg.topk(k).indices.tolist())
        for q in range(parts):
            if vis[i, q] <= 0.5:
                continue
            cands = [j for j in range(n) if j != i and vis[j, q] > 0.5]
            sims = sorted(cands, key=lambda j: -float(p[j, q] @ p[i, q]))[:k]
            near_p = set(sims)
            out[i, q] = len(near_g & near_p) / len(near_g | near_p)
    return out


@pytest.mark.parametrize("chunk", [7, 4096])
def test_agreement_matches_the_set_reference(chunk: int) -> None:
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(40, 6, generator=gen)
    p = g[:, None] + 0.8 * torch.randn(40, 3, 6, generator=gen)  # related to the global
    vis = (torch.rand(40, 3, generator=gen) > 0.25).float()
    got = knn_agreement(g, p, vis, k=5, chunk_size=chunk)
    torch.testing.assert_close(got, _ref_agreement(g, p, vis, 5))
    assert (got[vis == 0] == 0).all() and (got > 0).any()


def test_identical_spaces_agree_fully_and_small_sets_use_fewer_neighbours() -> None:
    g = torch.randn(5, 4)
    a = knn_agreement(g, g[:, None].repeat(1, 3, 1), k=20)  # k > N - 1: 4 neighbours
    torch.testing.assert_close(a, torch.ones(5, 3))
    assert knn_agreement(g[:1], g[:1, None], k=3).tolist() == [[0.0]]  # nobody to compare


def test_refined_target_by_hand() -> None:
    labels = torch.tensor([0, 1, 2])
    probs = torch.tensor([
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]],
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    ])
    agree = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.2, 0.0], [0.9, 0.9, 0.9]])
    vis = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    t = refined_global_targets(labels, probs, agree, vis, beta=0.4)
    # sample 0: the lower part is invisible, weights 2/3 and 1/3 on head and upper
    ens0 = torch.tensor([0.0, 2 / 3, 1 / 3])
    torch.testing.assert_close(t[0], 0.4 * torch.tensor([1.0, 0.0, 0.0]) + 0.6 * ens0)
    # sample 1: the lower part agrees with nothing (weight 0); head and upper half each
    torch.testing.assert_close(t[1], torch.tensor([0.3, 0.7, 0.0]))
    # sample 2: no visible part votes: the one-hot label
    torch.testing.assert_close(t[2], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(t.sum(1), torch.ones(3))
    # an invisible part's prediction changes nothing
    other = probs.clone()
    other[0, 2] = torch.tensor([0.0, 0.0, 1.0])
    torch.testing.assert_close(refined_global_targets(labels, other, agree, vis, beta=0.4), t)
    with pytest.raises(ValueError, match="beta"):
        refined_global_targets(labels, probs, agree, beta=1.5)


def test_agreement_smoothing_by_hand() -> None:
    labels = torch.tensor([1, 0])
    t = agreement_smoothed_targets(labels, torch.tensor([1.0, 0.0]), 4)
    torch.testing.assert_close(t, torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.25] * 4]))
    tk = agreement_smoothed_targets(labels, torch.tensor([[0.5, 1.0], [0.0, 0.5]]), 2)
    assert tk.shape == (2, 2, 2)  # (K, B, C)
    torch.testing.assert_close(tk[0], torch.tensor([[0.25, 0.75], [0.5, 0.5]]))
    torch.testing.assert_close(tk[1], torch.tensor([[0.0, 1.0], [0.75, 0.25]]))
