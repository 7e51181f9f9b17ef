"""Video constraints: must-links / cannot-links on cluster labels and ECN neighbourhoods."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from semparts_reid.errors import InputError
from semparts_reid.memory import (
    ExemplarMemory,
    NeighbourConstraint,
    VideoConstraints,
    constrain_cluster_labels,
    constrain_neighbours,
)


# ------------------------------------------------------------------ VideoConstraints
def test_constraints_are_compact_groups() -> None:
    vc = VideoConstraints(
        tracklets=np.array([7, 7, -1, 3, 3, 3, -5]),
        frames=np.array([1, 2, 1, 1, 2, 3, 1]),
        sequences=np.array([0, 0, 0, 1, 1, 1, 1]),
    )
    assert vc.tracklet.tolist() == [1, 1, -1, 0, 0, 0, -1]  # compact, in id order
    assert vc.num_tracklets == 2 and vc.num_frame_groups == 5
    assert vc.tracklet_members(0).tolist() == [3, 4, 5]
    assert vc.tracklet_members(1).tolist() == [0, 1]
    # (seq 0, frame 1) holds crops 0 and 2; (seq 1, frame 1) crops 3 and 6
    groups = sorted(vc.frame_members(g).tolist() for g in range(vc.num_frame_groups))
    assert groups == [[0, 2], [1], [3, 6], [4], [5]]
    assert vc.must_link_pairs == 1 + 3 and vc.cannot_link_pairs == 2
    assert vc.dropped_members == 0
    with pytest.raises(ValueError):  # read-only arrays
        vc.tracklet[0] = 5


def test_a_tracklet_never_holds_two_crops_of_one_frame() -> None:
    vc = VideoConstraints(np.array([0, 0, 0, 0]), np.array([1, 1, 2, 1]))
    assert vc.tracklet.tolist() == [0, -1, 0, -1] and vc.dropped_members == 2


def test_constraints_accept_tensors_and_empty_input() -> None:
    vc = VideoConstraints(torch.tensor([0, 0]), torch.tensor([1, 2]))
    assert vc.must_link_pairs == 1
    empty = VideoConstraints(np.zeros(0, int), np.zeros(0, int))
    assert (empty.num_samples, empty.num_tracklets, empty.num_frame_groups) == (0, 0, 0)
    labels, stats = constrain_cluster_labels(np.zeros(0, int), empty)
    assert labels.shape == (0,) and stats.clusters_after == 0
    w, s = constrain_neighbours(torch.zeros(0, 0), torch.zeros(0, dtype=torch.long), empty, 3,
                                with_stats=True)  # fmt: skip
    assert w.shape == (0, 0) and s is not None and s.as_dict()["links_added"] == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros(3, int), np.zeros(2, int)), r"frames of shape \(2,\): expected \(3,\)"),
        ((np.zeros(3, int), np.zeros(3, int), np.zeros(4, int)), r"sequences of shape \(4,\)"),
        ((np.zeros((3, 1), int), np.zeros(3, int)), r"tracklets of shape \(3, 1\)"),
        ((np.zeros(3), np.zeros(3, int)), "tracklets: expected integers"),
    ],
)
def test_bad_constraint_inputs_are_named(args: tuple, match: str) -> None:
    with pytest.raises(InputError, match=match):
        VideoConstraints(*args)


# ------------------------------------------------------------------ cluster labels
def test_must_link_takes_the_majority_cluster_and_adopts_outliers() -> None:
    vc = VideoConstraints(np.array([0, 0, 0, 0, -1, -1]), np.arange(1, 7))
    labels, st = constrain_cluster_labels(np.array([3, 3, 5, -1, 5, 5]), vc)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert (st.tracklets_unified, st.crops_moved, st.outliers_adopted) == (1, 1, 1)
    assert st.must_links_added == 6 - 1  # 1 co-clustered pair before, 6 after
    assert (st.clusters_before, st.clusters_after, st.clusters_added, st.clusters_removed) == (
        2, 2, 0, 0,
    )  # fmt: skip


def test_an_outlier_tracklet_becomes_a_cluster_and_a_lone_outlier_stays() -> None:
    vc = VideoConstraints(np.array([0, 0, 1, -1]), np.arange(4))
    labels, st = constrain_cluster_labels(np.array([-1, -1, -1, 0]), vc)
    assert labels.tolist() == [1, 1, -1, 0]  # the given singleton cluster 0 stays
    assert st.clusters_added == 1 and st.outliers_adopted == 2


def test_cannot_link_splits_off_the_crop_that_is_not_the_tracklet() -> None:
    # crops 0, 1: one tracklet (frames 1, 2); crop 2 in frame 1 too; crop 3 in frame 3
    vc = VideoConstraints(np.array([0, 0, -1, -1]), np.array([1, 2, 1, 3]))
    labels, st = constrain_cluster_labels(np.array([0, 0, 0, 0]), vc)
    assert labels.tolist() == [0, 0, -1, 0]  # alone in its new cluster: an outlier
    assert (st.cannot_link_violations_before, st.cannot_link_violations_after) == (1, 0)
    assert (st.crops_split_off, st.crops_to_outliers, st.clusters_added) == (1, 1, 0)


def test_cannot_link_splits_a_cluster_into_two_people() -> None:
    # untracked crops 0, 1 in frame 1, 2, 3 in frame 2, 4 in frame 3, all in cluster 0:
    # the first crop of each frame keeps it, the others leave together
    vc = VideoConstraints(np.full(5, -1), np.array([1, 1, 2, 2, 3]))
    labels, st = constrain_cluster_labels(np.zeros(5, int), vc)
    assert labels.tolist() == [0, 1, 0, 1, 0]
    assert st.clusters_added == 1 and st.rounds == 1 and st.crops_split_off == 2


def test_a_tracklet_joins_the_cluster_it_can_join_without_a_cannot_link() -> None:
    # U = crops 0-2 (frames 1-3) in cluster 0; T = crops 3-5 (frames 2-4), two of them
    # in cluster 0 (where U already has frames 2 and 3), one in cluster 1; crop 6 in 1
    vc = VideoConstraints(np.array([0, 0, 0, 1, 1, 1, -1]), np.array([1, 2, 3, 2, 3, 4, 7]))
    labels, st = constrain_cluster_labels(np.array([0, 0, 0, 0, 0, 1, 1]), vc)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert st.crops_moved == 2 and st.crops_split_off == 0
    assert (st.cannot_link_violations_before, st.cannot_link_violations_after) == (2, 0)


def test_the_larger_tracklet_keeps_a_contested_cluster() -> None:
    # T0 (3 crops) and T1 (2 crops) share frames 1-2 in cluster 0: T1 leaves, whole
    vc = VideoConstraints(np.array([0, 0, 0, 1, 1]), np.array([1, 2, 3, 1, 2]))
    labels, _ = constrain_cluster_labels(np.zeros(5, int), vc)
    assert labels.tolist() == [0, 0, 0, 1, 1]


def test_same_frame_number_in_two_sequences_is_no_cannot_link() -> None:
    vc = VideoConstraints(np.full(2, -1), np.array([1, 1]), np.array([0, 1]))
    labels, st = constrain_cluster_labels(np.array([4, 4]), vc)
    assert labels.tolist() == [0, 0] and st.cannot_link_violations_before == 0


def test_no_constraint_is_a_no_op_up_to_renumbering() -> None:
    vc = VideoConstraints(np.full(6, -1), np.arange(6))
    given = np.array([2, -1, 2, 9, 9, 5])
    labels, st = constrain_cluster_labels(given, vc)
    assert labels.tolist() == [0, -1, 0, 2, 2, 1]
    assert st.as_dict() | {"clusters_before": 0, "clusters_after": 0} == dict.fromkeys(
        st.as_dict(), 0
    )
    same, _ = constrain_cluster_labels(torch.tensor([0, 1, 0, -1, 1, 2]), vc)  # torch in
    assert same.tolist() == [0, 1, 0, -1, 1, 2]


def test_bad_labels_are_named() -> None:
    vc = VideoConstraints(np.zeros(3, int), np.arange(3))
    with pytest.raises(InputError, match=r"labels of shape \(4,\): expected \(3,\)"):
        constrain_cluster_labels(np.zeros(4, int), vc)
    with pytest.raises(InputError, match="labels: expected integers"):
        constrain_cluster_labels(np.zeros(3), vc)


def _video(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random people over frames of two sequences: (identity, tracklet, frame, sequence)."""
    rng = np.random.default_rng(seed)
    ident, trk, frame, seq = [], [], [], []
    next_t = 0
    for s in range(2):
        for p in range(int(rng.integers(2, 7))):
            start = int(rng.integers(0, 15))
            frames = np.arange(start, start + int(rng.integers(1, 15)))
            frames = frames[rng.random(len(frames)) > 0.2]  # missed detections
            cuts = np.cumsum(rng.random(len(frames)) < 0.2)  # tracker breaks
            t = np.where(rng.random(len(frames)) < 0.15, -1, next_t + cuts)
            next_t += int(cuts.max(initial=0)) + 1
            ident += [s * 10 + p] * len(frames)
            trk += t.tolist()
            frame += frames.tolist()
            seq += [s] * len(frames)
    return np.array(ident), np.array(trk), np.array(frame), np.array(seq)


def _noisy_labels(ident: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A clustering that merges people, splits them and leaves outliers."""
    lab = ident % int(rng.integers(2, 6))  # merges people
    lab = np.where(rng.random(len(lab)) < 0.2, rng.integers(0, 8, len(lab)), lab)
    return np.where(rng.random(len(lab)) < 0.15, -1, lab)


def _violations(lab: np.ndarray, frame: np.ndarray, seq: np.ndarray) -> int:
    return sum(
        1
        for i, j in itertools.combinations(range(len(lab)), 2)
        if lab[i] >= 0 and lab[i] == lab[j] and frame[i] == frame[j] and seq[i] == seq[j]
    )


@pytest.mark.parametrize("seed", range(12))
def test_properties_on_random_video(seed: int) -> None:
    ident, trk, frame, seq = _video(seed)
    vc = VideoConstraints(trk, frame, seq)
    given = _noisy_labels(ident, np.random.default_rng(100 + seed))
    labels, st = constrain_cluster_labels(given, vc)
    # no cluster holds two crops of one frame of one sequence
    assert _violations(labels, frame, seq) == 0 == st.cannot_link_violations_after
    assert st.cannot_link_violations_before == _violations(given, frame, seq)
    # every tracklet of >= 2 crops is wholly in one cluster
    for t in range(vc.num_tracklets):
        m = labels[vc.tracklet_members(t)]
        assert len(set(m.tolist())) == 1
        assert len(m) < 2 or m[0] >= 0
    # labels are 0..K-1 and -1; K matches the stats
    k = st.clusters_after
    assert set(labels.tolist()) - {-1} == set(range(k))
    # idempotent
    again, st2 = constrain_cluster_labels(labels, vc)
    np.testing.assert_array_equal(again, labels)
    assert st2.crops_moved == st2.crops_split_off == st2.must_links_added == 0

    # must-links co-clustered after minus before, by brute force
    def colinked(lab: np.ndarray) -> int:
        t = vc.tracklet
        return sum(1 for i, j in itertools.combinations(range(len(lab)), 2)
                   if t[i] >= 0 and t[i] == t[j] and lab[i] >= 0 and lab[i] == lab[j])  # fmt: skip

    assert st.must_links_added == colinked(labels) - colinked(given)


# ------------------------------------------------------------------ ECN neighbours
def test_without_constraints_the_weights_are_exactly_ecns() -> None:
    torch.manual_seed(0)
    n, b = 30, 6
    mem = ExemplarMemory(n, 8, num_heads=2, knn=4)
    mem.update(torch.randn(n, 2, 8), torch.arange(n), epoch=0)
    feats = torch.randn(b, 2, 8)
    idx = torch.tensor([3, 7, 7, 0, 29, 12])
    vc = VideoConstraints(np.full(n, -1), np.arange(n))
    z = mem.logits(feats)  # (H, B, N)
    w, _ = constrain_neighbours(z, idx, vc, mem.knn)
    logp = torch.log_softmax(z, dim=-1)
    own = idx.view(1, b, 1).expand(2, b, 1)
    per = -logp.gather(2, own).squeeze(2) - (w * logp).sum(-1)
    torch.testing.assert_close(per.mean(1).sum(), mem.loss(feats, idx, neighbours=True))
    assert (w.gather(2, own) == 0).all() and ((w > 0).sum(-1) <= mem.knn).all()


def test_neighbour_weights_by_hand() -> None:
    # slot 1 shares item 0's frame; slot 4 shares its tracklet
    vc = VideoConstraints(np.array([0, -1, -1, -1, 0, -1]), np.array([1, 1, 2, 3, 4, 5]))
    sim = torch.tensor([[1.0, 0.9, 0.8, 0.7, 0.6, 0.5]])
    w, st = constrain_neighbours(sim, torch.tensor([0]), vc, 3, with_stats=True)
    third = 1 / 3
    torch.testing.assert_close(w, torch.tensor([[0, 0, third, third, third, 0]]))
    assert st is not None
    # plain top-3 = own, 1, 2: slot 1 removed; slot 4 added; kept k-NN links 2 and 3
    assert st.as_dict() == {"knn_links": 2, "links_added": 1, "links_removed": 1,
                            "tracklet_links": 1}  # fmt: skip
    w1, none = constrain_neighbours(sim, torch.tensor([0]), vc, 3, tracklet_weight=1.0)
    assert none is None and w1[0, 4] == 1.0
    # k = 0: tracklet mates only, weight 1
    w0, _ = constrain_neighbours(sim, torch.tensor([0]), vc, 0)
    assert w0.tolist() == [[0, 0, 0, 0, 1, 0]]


def test_too_few_admissible_slots_and_heads() -> None:
    vc = VideoConstraints(np.full(3, -1), np.array([1, 1, 1]))  # one frame: no neighbour
    w, _ = constrain_neighbours(torch.rand(2, 3), torch.tensor([0, 2]), vc, 6)
    assert (w == 0).all()
    vc = VideoConstraints(np.array([0, 0, -1, 1, 1, -1, -1]), np.array([1, 2, 2, 3, 4, 5, 6]))
    sim = torch.randn(3, 4, 7)  # (H, B, N)
    idx = torch.tensor([0, 2, 3, 6])
    w, st = constrain_neighbours(sim, idx, vc, 2, with_stats=True)
    per_head = [constrain_neighbours(sim[h], idx, vc, 2, with_stats=True) for h in range(3)]
    torch.testing.assert_close(w, torch.stack([p[0] for p in per_head]))
    assert st is not None
    for name, total in st.as_dict().items():
        assert total == sum(p[1].as_dict()[name] for p in per_head if p[1] is not None)


def test_neighbour_constraint_sums_stats_until_popped() -> None:
    vc = VideoConstraints(np.array([0, 0, -1, -1]), np.array([1, 2, 1, 3]))
    fn = NeighbourConstraint(vc, k=2)
    for _ in range(3):
        fn(torch.eye(4)[[0, 2]], torch.tensor([0, 2]))
    stats = fn.pop_stats()
    assert stats["tracklet_links"] == 3 and stats["links_removed"] > 0
    assert fn.pop_stats() == dict.fromkeys(stats, 0)


@pytest.mark.parametrize(
    ("sim", "idx", "match"),
    [
        (torch.zeros(4), torch.zeros(1, dtype=torch.long), r"sim of shape \(4,\)"),
        (torch.zeros(1, 5), torch.zeros(1, dtype=torch.long), "sim has 5 slots"),
        (torch.zeros(2, 4), torch.zeros(3, dtype=torch.long), r"indices of shape \(3,\)"),
        (torch.zeros(1, 4), torch.zeros(1), r"expected a \(1,\) integer tensor"),
    ],
)
def test_bad_neighbour_inputs_are_named(sim: torch.Tensor, idx: torch.Tensor, match: str) -> None:
    vc = VideoConstraints(np.full(4, -1), np.arange(4))
    with pytest.raises(InputError, match=match):
        constrain_neighbours(sim, idx, vc, 2)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_neighbours_run_on_the_device_of_sim() -> None:
    vc = VideoConstraints(np.array([0, 0, -1, -1]), np.array([1, 2, 1, 3]))
    sim = torch.rand(3, 4, device="cuda")
    idx = torch.tensor([0, 1, 2], device="cuda")
    w, st = constrain_neighbours(sim, idx, vc, 2, with_stats=True)
    assert w.device.type == "cuda" and st is not None and st.links_added.device.type == "cuda"
    cpu, _ = constrain_neighbours(sim.cpu(), idx.cpu(), vc, 2)
    torch.testing.assert_close(w.cpu(), cpu)


def test_large_inputs_need_no_pairwise_matrix() -> None:
    """200k crops: an N x N matrix would need 40 G entries; the grouped code runs in
    about a second (a measurement, not asserted)."""
    rng = np.random.default_rng(0)
    n = 200_000
    trk = np.where(rng.random(n) < 0.8, rng.integers(0, 20_000, n), -1)
    vc = VideoConstraints(trk, rng.integers(0, 20_000, n), rng.integers(0, 4, n))
    labels = np.where(rng.random(n) < 0.2, -1, rng.integers(0, 3000, n))
    out, st = constrain_cluster_labels(labels, vc)
    assert st.cannot_link_violations_before > 0 == st.cannot_link_violations_after
    assert out.shape == (n,) and st.tracklets_unified > 0


def test_exemplar_loss_takes_neighbour_weights_in_place_of_its_top_k() -> None:
    # weights 1/k on the k nearest slots other than the own one: ECN's loss exactly
    from semparts_reid.memory import ExemplarMemory

    torch.manual_seed(0)
    mem = ExemplarMemory(12, 6, num_heads=2, knn=3)
    mem.slots.copy_(torch.nn.functional.normalize(torch.randn(2, 12, 6), dim=2))
    feats, idx = torch.randn(5, 2, 6), torch.tensor([0, 3, 4, 7, 11])

    def topk_weights(z: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        top = z.topk(3, dim=-1).indices
        w = torch.zeros_like(z).scatter_(2, top, 1 / 3)
        return w.scatter_(2, i.view(1, -1, 1).expand(z.shape[0], -1, 1), 0.0)

    want = mem.loss(feats, idx, neighbours=True, reduction="none")
    got = mem.loss(feats, idx, neighbours=True, reduction="none", neighbour_weights=topk_weights)
    # the same terms summed in another order: float32 round-off of a sum of k + 1 terms
    torch.testing.assert_close(got, want, rtol=0, atol=8 * torch.finfo(torch.float32).eps * 10)
    plain = mem.loss(feats, idx, neighbours=False, reduction="none",
                     neighbour_weights=topk_weights)  # ignored without neighbours
    assert torch.equal(plain, mem.loss(feats, idx, neighbours=False, reduction="none"))
