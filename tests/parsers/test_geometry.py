"""Cutting a person mask at the shoulders and hips (hand-made poses)."""

from __future__ import annotations

import numpy as np
import pytest

from semparts_reid.layers.parts import BACKGROUND, HEAD, LOWER, UPPER
from semparts_reid.parsers import BLAZEPOSE, cut_person_mask, pose_to_parts


def _upright() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 40x12 mask (the person fills columns 2..9), shoulders at y=10, hips at y=20."""
    mask = np.zeros((40, 12), bool)
    mask[:, 2:10] = True
    return mask, np.array([[3.0, 10.0], [8.0, 10.0]]), np.array([[4.0, 20.0], [7.0, 20.0]])


def test_upright_body_is_cut_across_rows_at_neck_and_waist() -> None:
    mask, shoulders, hips = _upright()
    out = cut_person_mask(mask, shoulders, hips, head_line=-0.1, waist_line=0.8)
    col = out[:, 5]
    # torso length 10 px: head above y = 9, lower from y = 18
    assert (col[:9] == HEAD).all() and col[9] == UPPER
    assert (col[9:18] == UPPER).all() and (col[18:] == LOWER).all()
    assert (out[:, :2] == BACKGROUND).all() and (out[:, 10:] == BACKGROUND).all()
    assert out.dtype == np.uint8 and out.shape == mask.shape
    # every row is one class across the body (the lines are horizontal)
    assert all(len(set(row[2:10].tolist())) == 1 for row in out)


def test_shoulder_and_hip_order_does_not_matter() -> None:
    mask, shoulders, hips = _upright()
    np.testing.assert_array_equal(
        cut_person_mask(mask, shoulders, hips), cut_person_mask(mask, shoulders[::-1], hips[::-1])
    )


def test_a_body_lying_on_its_side_is_cut_across_its_own_axis() -> None:
    """Head to the right: the lines are vertical, so columns are cut, not rows."""
    mask = np.ones((12, 40), bool)
    shoulders = np.array([[30.0, 3.0], [30.0, 8.0]])
    hips = np.array([[20.0, 4.0], [20.0, 7.0]])
    out = cut_person_mask(mask, shoulders, hips, head_line=-0.1, waist_line=0.8)
    assert (out[:, 32:] == HEAD).all() and (out[:, 23:31] == UPPER).all()
    assert (out[:, :22] == LOWER).all()


def test_a_tilted_body_follows_the_tilt() -> None:
    """Leaning 45 degrees: the head boundary is a diagonal line, perpendicular to the axis."""
    mask = np.ones((60, 60), bool)
    s, p = np.array([30.0, 30.0]), np.array([40.0, 40.0])  # axis (1, 1) / sqrt(2)
    out = cut_person_mask(mask, [s, s], [p, p], head_line=-0.1, waist_line=0.8)
    ys, xs = np.mgrid[0:60, 0:60]
    t = ((xs - 30) + (ys - 30)) / 20.0  # (p - S) . (10, 10) / 200
    np.testing.assert_array_equal(out == HEAD, t < -0.1)
    np.testing.assert_array_equal(out == LOWER, t >= 0.8)
    assert out[1, 59] == UPPER  # far along the shoulder line, not above it


def test_arms_hanging_below_the_waist_stay_upper_body() -> None:
    mask, shoulders, hips = _upright()
    arm = np.array([[[2.0, 10.0], [2.0, 17.0], [2.0, 24.0]]])  # down the left edge
    out = cut_person_mask(mask, shoulders, hips, arms=arm, arm_radius=0.12)
    assert out[23, 2] == UPPER and out[23, 3] == UPPER  # within 1.2 px of the wrist line
    assert out[23, 5] == LOWER and out[30, 2] == LOWER  # beside it / below the wrist


def test_outside_the_mask_is_background_and_an_empty_mask_is_all_background() -> None:
    mask, shoulders, hips = _upright()
    assert (cut_person_mask(np.zeros_like(mask), shoulders, hips) == BACKGROUND).all()
    soft = mask.astype(np.float32) * 0.8
    np.testing.assert_array_equal(
        cut_person_mask(soft, shoulders, hips), cut_person_mask(mask, shoulders, hips)
    )


def test_coincident_shoulders_and_hips_cut_along_rows_without_dividing_by_zero() -> None:
    mask = np.ones((10, 4), bool)
    out = cut_person_mask(mask, [[1, 5], [2, 5]], [[1, 5], [2, 5]])
    assert (out[:5] == HEAD).all() and (out[5] == UPPER).all() and (out[6:] == LOWER).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [({"shoulders": np.zeros(2)}, "shoulders has shape"),
     ({"hips": np.full((2, 2), np.nan)}, "hips has shape"),
     ({"head_line": 0.9}, "head_line"),
     ({"arms": np.zeros((2, 2))}, "arms has shape")],
)  # fmt: skip
def test_bad_inputs_are_named(kwargs: dict, match: str) -> None:
    mask, shoulders, hips = _upright()
    args = {"shoulders": shoulders, "hips": hips, **kwargs}
    with pytest.raises(ValueError, match=match):
        cut_person_mask(mask, **args)
    with pytest.raises(ValueError, match="mask has shape"):
        cut_person_mask(np.zeros(5), shoulders, hips)


def test_pose_to_parts_reads_blazepose_and_skips_invisible_arms() -> None:
    mask, shoulders, hips = _upright()
    kp = np.zeros((33, 3))
    kp[:, 2] = 1.0
    b = BLAZEPOSE
    kp[b["left_shoulder"], :2], kp[b["right_shoulder"], :2] = shoulders
    kp[b["left_hip"], :2], kp[b["right_hip"], :2] = hips
    kp[b["left_elbow"], :2], kp[b["left_wrist"], :2] = [2, 17], [2, 24]
    kp[b["right_elbow"], :2], kp[b["right_wrist"], :2] = [9, 17], [9, 24]
    with_arms = pose_to_parts(mask, kp)
    assert with_arms[23, 2] == UPPER and with_arms[23, 9] == UPPER
    kp[b["right_wrist"], 2] = 0.1  # right wrist not visible: that arm is left out
    out = pose_to_parts(mask, kp)
    assert out[23, 2] == UPPER and out[23, 9] == LOWER
    np.testing.assert_array_equal(
        pose_to_parts(mask, kp, min_visibility=1.1), cut_person_mask(mask, shoulders, hips)
    )
    with pytest.raises(ValueError, match="BlazePose"):
        pose_to_parts(mask, np.zeros((5, 3)))
