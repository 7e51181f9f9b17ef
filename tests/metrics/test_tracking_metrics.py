"""evaluate_tracking (TrackEval) against a case computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from semparts_reid.metrics import TrackingMetrics, evaluate_tracking
from semparts_reid.metrics.tracking import box_iou_xywh

pytest.importorskip("trackeval")

# Two people over four frames, boxes x, y, w, h.
#   A = gt id 1 at (0, 0, 10, 10), B = gt id 2 at (100, 0, 10, 10), in frames 1-4.
# Tracker:
#   frame 1: t1 on A, t2 on B, t5 far from everybody (false positive)
#   frame 2: t1 on A, t2 on B
#   frame 3: t1 on A, B missed (false negative), t3 far away (false positive)
#   frame 4: t1 on A, t4 on B shifted by 1 px (IoU 90 / 110): B's id switches t2 -> t4
GT = [[f, 1, 0, 0, 10, 10] for f in range(1, 5)] + [[f, 2, 100, 0, 10, 10] for f in range(1, 5)]
TRACKS = [
    [1, 1, 0, 0, 10, 10], [1, 2, 100, 0, 10, 10], [1, 5, 500, 500, 5, 5],
    [2, 1, 0, 0, 10, 10], [2, 2, 100, 0, 10, 10],
    [3, 1, 0, 0, 10, 10], [3, 3, 300, 300, 10, 10],
    [4, 1, 0, 0, 10, 10], [4, 4, 101, 0, 10, 10],
]  # fmt: skip


def test_hand_computed_case() -> None:
    m = evaluate_tracking(GT, TRACKS)
    # CLEAR, per frame: GT = 8 boxes; TP = 4 (A) + 3 (B) = 7; FN = 1 (B, frame 3);
    # FP = 2 (t5, t3); IDSW = 1 (B matched t2, then t4).
    assert (m.num_gt, m.tp, m.fn, m.fp, m.idsw) == (8, 7, 1, 2, 1)
    # MOTA = 1 - (FN + FP + IDSW) / GT = 1 - (1 + 2 + 1) / 8 = 0.5
    assert m.mota == pytest.approx(0.5)
    # MOTP = mean IoU of the 7 matches = (6 * 1 + 90 / 110) / 7
    assert m.motp == pytest.approx((6 + 90 / 110) / 7)
    # Identity: one tracker id per gt id over the whole sequence: A <-> t1 (4 boxes),
    # B <-> t2 (2 boxes): IDTP = 6. IDFN = 8 - 6 = 2 (B in frames 3 and 4);
    # IDFP = 9 tracker boxes - 6 = 3 (t5, t3, t4).
    assert (m.idtp, m.idfn, m.idfp) == (6, 2, 3)
    # IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN) = 12 / (12 + 3 + 2) = 12 / 17
    assert m.idf1 == pytest.approx(12 / 17)
    assert m.idp == pytest.approx(6 / 9)  # IDTP / (IDTP + IDFP)
    assert m.idr == pytest.approx(6 / 8)  # IDTP / (IDTP + IDFN)
    # A is matched in 4/4 frames (mostly tracked: > 80 %), B in 3/4 (partly); B's track
    # breaks at frame 3 and resumes at frame 4: one fragmentation
    assert (m.num_gt_ids, m.mostly_tracked, m.mostly_lost, m.frag) == (2, 1, 0, 1)


def test_perfect_and_empty_outputs() -> None:
    perfect = evaluate_tracking(GT, GT)
    assert (perfect.idf1, perfect.mota, perfect.idsw, perfect.motp) == (1.0, 1.0, 0, 1.0)
    empty = evaluate_tracking(GT, np.zeros((0, 6)))
    assert (empty.idf1, empty.mota, empty.fn, empty.idfn) == (0.0, 0.0, 8, 8)
    assert isinstance(empty, TrackingMetrics) and empty.as_dict()["fn"] == 8


def test_ids_need_not_be_contiguous_and_extra_columns_are_ignored() -> None:
    relabelled = [[r[0], r[1] * 1000 + 7, *r[2:], 0.9, -1, -1, -1] for r in TRACKS]
    assert evaluate_tracking(GT, relabelled) == evaluate_tracking(GT, TRACKS)


def test_iou_threshold_decides_a_match() -> None:
    shifted = [[r[0], r[1], r[2] + 4, *r[3:]] for r in GT]  # IoU 60 / 140 < 0.5
    assert evaluate_tracking(GT, shifted).tp == 0
    assert evaluate_tracking(GT, shifted, iou_threshold=0.4).tp == 8


def test_malformed_rows_are_named() -> None:
    with pytest.raises(ValueError, match="tracker_rows"):
        evaluate_tracking(GT, [[1, 1, 0, 0]])
    with pytest.raises(ValueError, match="twice in one frame"):
        evaluate_tracking(GT, [[1, 1, 0, 0, 10, 10], [1, 1, 5, 5, 10, 10]])


def test_box_iou() -> None:
    iou = box_iou_xywh(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 10, 10], [20, 0, 1, 1],
                                                             [0, 0, 0, 0]]))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0, 0.0]])
