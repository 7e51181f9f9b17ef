"""The re-association protocol on cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semparts_reid.errors import InputError
from semparts_reid.metrics import evaluate_reassociation, reassociation_queries
from semparts_reid.metrics.distance import compute_distance

# five detections: (pid, frame)
PIDS = [1, 2, 1, 2, 1]  # A=1, B=2
FRAMES = [1, 1, 5, 5, 2]
DIST = np.array(
    [  # row = query, column = gallery item
        [0.0, 0.7, 0.4, 0.2, 0.1],
        [0.7, 0.0, 0.1, 0.3, 0.6],
        [0.5, 0.6, 0.0, 0.7, 0.1],
        [0.2, 0.3, 0.7, 0.0, 0.4],
        [0.1, 0.6, 0.9, 0.8, 0.0],
    ]
)


def test_hand_computed_gap_3() -> None:
    # gap 3: q0 (A, f1) sees {2 (f5), 3 (f5)}: order 3(B) 0.2, 2(A) 0.4 -> AP 1/2, RR 1/2
    # q1 (B, f1) sees {2, 3}: order 2(A) 0.1, 3(B) 0.3 -> AP 1/2
    # q2 (A, f5) sees {0 (f1), 1 (f1), 4 (f2)}: 4(A) 0.1, 0(A) 0.5, 1(B) -> AP (1/1 + 2/2)/2
    # q3 (B, f5) sees {0, 1, 4}: order 0(A) 0.2, 1(B) 0.3, 4(A) -> AP 1/2
    # q4 (A, f2) sees {2, 3} (|5 - 2| = 3): order 3(B) 0.8, 2(A) 0.9 -> AP 1/2
    # R1 = 1/5; mAP = MRR = (0.5 + 0.5 + 1 + 0.5 + 0.5) / 5 = 0.6
    m = evaluate_reassociation(DIST, PIDS, FRAMES, gap=3, distances=True)
    assert m.num_queries == 5 and m.num_valid_queries == 5
    assert m.rank1 == pytest.approx(0.2)
    assert m.mAP == pytest.approx(0.6)
    assert m.mrr == pytest.approx(0.6)
    assert m.rank(2) == pytest.approx(1.0)  # every first match is at position 0 or 1


def test_stride_and_a_query_without_match() -> None:
    # add C at frame 1 (index 5), far from everyone. stride 4: query frames 1 and 5 (not 2),
    # so queries 0, 1, 2, 3, 5; query 5 has no C in its gallery: not valid.
    # q0..q3 as above (C at f1 is not in the galleries of q0, q1; it is last for q2, q3)
    # mAP = (0.5 + 0.5 + 1 + 0.5) / 4 = 0.625, R1 = 1/4
    d = np.full((6, 6), 0.95)
    d[:5, :5] = DIST
    m = evaluate_reassociation(d, PIDS + [3], FRAMES + [1], gap=3, stride=4, distances=True)
    assert (m.num_queries, m.num_valid_queries) == (5, 4)
    assert m.mAP == pytest.approx(0.625)
    assert m.rank1 == pytest.approx(0.25)


def test_ties_are_broken_by_gallery_index() -> None:
    # q0 (A, f1): gallery {1 (B, f9), 2 (A, f9)} both at distance 0.5: B comes first
    d = np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
    m = evaluate_reassociation(d, [1, 2, 1], [1, 9, 9], gap=2, stride=8, distances=True)
    # queries: frames 1 and 9 -> all three; q1 (B) has no B two frames away: invalid
    # q0: order 1(B), 2(A) -> AP 1/2; q2 (A, f9): gallery {0 (A, f1)} -> AP 1
    assert m.num_valid_queries == 2
    assert m.mAP == pytest.approx(0.75)


def test_groups_keep_a_query_in_its_own_sequence() -> None:
    # the same five detections, 2 and 3 in another sequence. gap 3: sequence 0 holds frames
    # 1, 1, 2 and sequence 1 frames 5, 5, so every gallery is empty: no valid query
    with pytest.raises(InputError, match="no valid query"):
        evaluate_reassociation(DIST, PIDS, FRAMES, gap=3, groups=[0, 0, 1, 1, 0], distances=True)
    # gap 1: q0 (A, f1) sees only 4 (A, f2): AP 1; q4 (A, f2) sees 0 (A) at 0.1 then 1 (B):
    # AP 1; q1 (B) has no other B, q2 and q3 share their only frame
    m = evaluate_reassociation(DIST, PIDS, FRAMES, gap=1, groups=[0, 0, 1, 1, 0], distances=True)
    assert m.num_valid_queries == 2  # q0 and q4 (A at f1 and f2); B, and the other group, alone
    assert m.mAP == pytest.approx(1.0)


def test_features_match_distances_and_chunking() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 8)).astype(np.float32)
    pids = rng.integers(0, 5, 40)
    frames = rng.integers(1, 30, 40)
    ref = evaluate_reassociation(
        compute_distance(feats, feats), pids, frames, gap=4, stride=2, distances=True
    )
    for kw in ({}, {"chunk_size": 1}, {"chunk_size": 7}):
        m = evaluate_reassociation(feats, pids, frames, gap=4, stride=2, **kw)
        assert m.as_dict() == pytest.approx(ref.as_dict())
    t = evaluate_reassociation(
        torch.from_numpy(feats), torch.from_numpy(pids), frames, gap=4, stride=2
    )
    assert t.mAP == pytest.approx(ref.mAP)
    assert "re-association" in str(ref)


def test_queries_follow_each_groups_first_frame() -> None:
    assert reassociation_queries([3, 4, 5, 5, 7], stride=2).tolist() == [0, 2, 3, 4]
    # group 1 starts at frame 4: its frames 4 and 6 are queries
    assert reassociation_queries([3, 4, 5, 6], stride=2, groups=[0, 1, 0, 1]).tolist() == [
        0,
        1,
        2,
        3,
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gap": 0}, "gap"),
        ({"gap": 2, "stride": 0}, "stride"),
        ({"gap": 2, "pids": [1, 2]}, "pids has 2 entries"),
        ({"gap": 2, "frames": [1.5] * 5}, "frames must be a 1-D integer"),
    ],
)
def test_bad_inputs_are_named(kwargs: dict, match: str) -> None:
    args = {"pids": PIDS, "frames": FRAMES, **kwargs}
    with pytest.raises(InputError, match=match):
        evaluate_reassociation(DIST, args.pop("pids"), args.pop("frames"), distances=True, **args)


def test_non_finite_distances_and_non_square_distances_are_refused() -> None:
    d = DIST.copy()
    d[0, 2] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        evaluate_reassociation(d, PIDS, FRAMES, gap=3, distances=True)
    with pytest.raises(InputError, match=r"\(N, N\)"):
        evaluate_reassociation(DIST[:, :3], PIDS, FRAMES, gap=3, distances=True)
