"""Cutting a person mask into head / upper body / lower body from a pose (pure numpy).

The body axis runs from the shoulder midpoint ``S`` to the hip midpoint ``P``; every
pixel gets its position along that axis in torso lengths,
``t = (p - S) . (P - S) / |P - S|^2`` (0 on the shoulder line, 1 on the hip line, both
lines perpendicular to the axis, so a tilted or leaning body is cut across its own axis
rather than along image rows). Person-mask pixels are then

* **head** where ``t < head_line`` (default -0.1: the neck begins a little above the
  shoulder joints),
* **lower** where ``t >= waist_line`` (default 0.8: the waist lies above the hip
  joints, which sit at the top of the thighs),
* **upper** in between,

and, with ``arms``, mask pixels within ``arm_radius`` torso lengths of an arm
(shoulder -> elbow -> wrist) are **upper** wherever they are, so hands hanging beside the
thighs or raised above the head stay with the upper body. Pixels outside the mask are
background. Coordinates are ``(x, y)`` in pixels of the mask, pixel centres at integer
coordinates (pixel ``[i, j]`` is at ``x = j, y = i``).

:data:`BLAZEPOSE` names the landmarks of MediaPipe's 33-point BlazePose topology used
here; :func:`pose_to_parts` takes such an array directly.
"""

from __future__ import annotations

import numpy as np

from ..layers.parts import BACKGROUND, HEAD, LOWER, UPPER

__all__ = ["BLAZEPOSE", "cut_person_mask", "pose_to_parts"]

#: BlazePose (MediaPipe pose) landmark indices used to cut the mask
BLAZEPOSE: dict[str, int] = {
    "nose": 0,
    "left_shoulder": 11, "right_shoulder": 12,
    "left_elbow": 13, "right_elbow": 14,
    "left_wrist": 15, "right_wrist": 16,
    "left_hip": 23, "right_hip": 24,
}  # fmt: skip


def _point_pair(name: str, value: np.ndarray) -> np.ndarray:
    arr = np.asarray(value, np.float64)
    if arr.shape != (2, 2) or not np.isfinite(arr).all():
        raise ValueError(f"{name} has shape {arr.shape}: expected finite (2, 2) (x, y) pairs")
    return arr


def _segment_distance(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of the points ``(px, py)`` to the segment ``a -> b``."""
    d = b - a
    den = float(d @ d)
    t = np.zeros_like(px) if den == 0 else ((px - a[0]) * d[0] + (py - a[1]) * d[1]) / den
    t = np.clip(t, 0.0, 1.0)
    return np.hypot(px - a[0] - t * d[0], py - a[1] - t * d[1])


def cut_person_mask(
    mask: np.ndarray,
    shoulders: np.ndarray,
    hips: np.ndarray,
    *,
    arms: np.ndarray | None = None,
    head_line: float = -0.1,
    waist_line: float = 0.8,
    arm_radius: float = 0.12,
) -> np.ndarray:
    """Label the pixels of a person mask head / upper / lower from shoulders and hips.

    Args:
        mask: (H, W) bool (or numbers, ``> 0`` is the person).
        shoulders: (2, 2) the two shoulders' ``(x, y)`` in pixels (order free).
        hips: (2, 2) the two hips' ``(x, y)``.
        arms: optional (A, 3, 2): for each of A arms its shoulder, elbow and wrist.
        head_line: axis position (torso lengths from the shoulder line, down positive)
            above which the mask is head.
        waist_line: axis position from which the mask is lower body.
        arm_radius: half-width of an arm, in torso lengths.

    Returns:
        uint8 (H, W): 0 background, 1 head, 2 upper, 3 lower.

    Example:
        >>> m = np.ones((8, 3), bool)
        >>> cut_person_mask(m, [[0, 2], [2, 2]], [[0, 5], [2, 5]])[:, 1].tolist()
        [1, 1, 2, 2, 2, 3, 3, 3]
    """
    person = np.asarray(mask)
    if person.ndim != 2:
        raise ValueError(f"mask has shape {person.shape}: expected (H, W)")
    if not head_line < waist_line:
        raise ValueError(f"head_line={head_line} must be below waist_line={waist_line}")
    s = _point_pair("shoulders", shoulders).mean(axis=0)
    p = _point_pair("hips", hips).mean(axis=0)
    axis = p - s
    length2 = float(axis @ axis)
    if length2 < 1e-6:  # shoulders on the hips: no axis, cut along image rows, 1 px torso
        axis, length2 = np.array([0.0, 1.0]), 1.0
    out = np.full(person.shape, BACKGROUND, np.uint8)
    ys, xs = np.nonzero(person > 0)
    if ys.size == 0:
        return out
    px, py = xs.astype(np.float64), ys.astype(np.float64)
    t = ((px - s[0]) * axis[0] + (py - s[1]) * axis[1]) / length2
    part = np.where(t < head_line, HEAD, np.where(t >= waist_line, LOWER, UPPER)).astype(np.uint8)
    if arms is not None:
        limbs = np.asarray(arms, np.float64)
        if limbs.ndim != 3 or limbs.shape[1:] != (3, 2):
            raise ValueError(f"arms has shape {limbs.shape}: expected (A, 3, 2)")
        radius = arm_radius * np.sqrt(length2)
        for limb in limbs:
            if not np.isfinite(limb).all():
                continue
            near = (_segment_distance(px, py, limb[0], limb[1]) <= radius) | (
                _segment_distance(px, py, limb[1], limb[2]) <= radius
            )
            part[near] = UPPER
    out[ys, xs] = part
    return out


def pose_to_parts(
    mask: np.ndarray,
    keypoints: np.ndarray,
    *,
    min_visibility: float = 0.5,
    **kwargs: float,
) -> np.ndarray:
    """:func:`cut_person_mask` from a BlazePose landmark array.

    Args:
        mask: (H, W) person mask.
        keypoints: (33, 3) BlazePose landmarks ``(x, y, visibility)`` in pixels of
            ``mask`` (or (33, 2) without visibility: every landmark visible).
        min_visibility: an arm is used only where its elbow and wrist are at least this
            visible; shoulders and hips are always used.
        **kwargs: ``head_line``, ``waist_line``, ``arm_radius`` of :func:`cut_person_mask`.
    """
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim != 2 or kp.shape[0] < 25 or kp.shape[1] not in (2, 3):
        raise ValueError(f"keypoints has shape {kp.shape}: expected (33, 3) BlazePose")
    vis = kp[:, 2] if kp.shape[1] == 3 else np.ones(len(kp))
    b = BLAZEPOSE
    arms = [
        kp[[b[f"{side}_shoulder"], b[f"{side}_elbow"], b[f"{side}_wrist"]], :2]
        for side in ("left", "right")
        if min(vis[b[f"{side}_elbow"]], vis[b[f"{side}_wrist"]]) >= min_visibility
    ]
    return cut_person_mask(
        mask,
        kp[[b["left_shoulder"], b["right_shoulder"]], :2],
        kp[[b["left_hip"], b["right_hip"]], :2],
        arms=np.stack(arms) if arms else None,
        **kwargs,
    )
