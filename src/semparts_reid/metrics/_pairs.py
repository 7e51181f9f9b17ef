"""Private: which gallery items are true matches and which are junk, for every query.

The rule (``docs/evaluation.md``, "Camera ids and the junk rule"):

* a gallery item with the query's pid is **junk** (removed from that query's gallery)
  when both camera ids are *known* (``>= 0``) and equal: same person, same view;
* an **unknown** camera id (``-1``, :data:`UNKNOWN_CAMERA`) never counts as the same
  camera, so with unknown cameras no true match is dropped as "same camera";
* the **query image itself**, where the caller says it is in the gallery
  (``query_in_gallery``), is junk under every camera rule;
* every other gallery item with the query's pid is a **true match**.

:func:`camera_rule` names which case a whole evaluation is in, for its report.
"""

from __future__ import annotations

import numpy as np

UNKNOWN_CAMERA = -1
#: ``ReIDMetrics.cameras`` values: every camera id known / none usable / some unknown
CAMERA_RULES = ("known", "unknown", "mixed")

Groups = tuple[np.ndarray, np.ndarray, np.ndarray]


def check_cameras(name: str, cams: np.ndarray) -> None:
    """Raise ``ValueError`` if ``cams`` holds a value below ``-1`` (naming the first)."""
    bad = np.flatnonzero(cams < UNKNOWN_CAMERA)
    if bad.size:
        raise ValueError(
            f"{name}[{int(bad[0])}] = {int(cams[bad[0]])}: camera ids are >= 0, or -1 for "
            "an unknown camera"
        )


def camera_rule(q_cams: np.ndarray, g_cams: np.ndarray) -> str:
    """``"known"`` (every id >= 0), ``"unknown"`` (no query/gallery pair has two known
    ids, so no same-camera removal can happen) or ``"mixed"``."""
    q_known, g_known = q_cams >= 0, g_cams >= 0
    if q_known.all() and g_known.all():
        return "known"
    if not q_known.any() or not g_known.any():
        return "unknown"
    return "mixed"


def camera_rule_note(protocol: str, cameras: str) -> str:
    """One line naming ``protocol`` and the camera rule ``cameras`` (for reports)."""
    if cameras == "unknown":
        return (
            f"{protocol} without camera ids: only the query image itself is removed from its "
            "gallery"
        )
    if cameras == "mixed":
        return (
            f"{protocol}, some camera ids unknown: same-identity gallery images from the "
            "query's camera are removed where both camera ids are known, else only the query "
            "image itself"
        )
    return (
        f"{protocol} (cameras known): same-identity gallery images from the query's camera "
        "are removed"
    )


def query_self_index(
    query_in_gallery: object, q_pids: np.ndarray, g_pids: np.ndarray
) -> np.ndarray | None:
    """``(Q,)`` int64 gallery index of each query's own image (``-1``: not in the gallery).

    Raises:
        ValueError: wrong shape, an index outside ``[-1, G)``, or a query whose own
            image carries another pid in the gallery (inconsistent labels).
    """
    if query_in_gallery is None:
        return None
    arr = np.asarray(query_in_gallery)
    if arr.shape != q_pids.shape or arr.dtype.kind not in "iu":
        raise ValueError(
            f"query_in_gallery has shape {arr.shape} and dtype {arr.dtype}: expected "
            f"{q_pids.shape} integers, the gallery index of each query's own image or -1"
        )
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < -1) | (arr >= len(g_pids)))
    if bad.size:
        raise ValueError(
            f"query_in_gallery[{int(bad[0])}] = {int(arr[bad[0]])}: expected -1 or a gallery "
            f"index in [0, {len(g_pids)})"
        )
    has = np.flatnonzero(arr >= 0)
    differ = has[q_pids[has] != g_pids[arr[has]]]
    if differ.size:
        i = int(differ[0])
        raise ValueError(
            f"query {i} is gallery item {int(arr[i])} by query_in_gallery, but their pids "
            f"differ ({int(q_pids[i])} vs {int(g_pids[arr[i]])}): the same image must carry "
            "the same identity"
        )
    return arr


def gallery_pairs(
    q_pids: np.ndarray,
    q_cams: np.ndarray,
    g_pids: np.ndarray,
    g_cams: np.ndarray,
    q_self: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Groups]:
    """All (query, gallery) pairs with the same pid, grouped by query, columns ascending.

    Args:
        q_pids, q_cams: ``(Q,)`` int64 query labels (camera ``-1``: unknown).
        g_pids, g_cams: ``(G,)`` int64 gallery labels.
        q_self: ``(Q,)`` gallery index of each query's own image, or ``-1`` (optional).

    Returns:
        ``(q_idx, g_idx, is_match, own_group, (order, start, size))``: the pairs
        (``q_idx`` ascending), ``is_match`` False for the junk pairs (see the module
        docstring), each query's identity group and the gallery grouped by identity.
    """
    order = np.argsort(g_pids, kind="stable")
    uniq, start, size = np.unique(g_pids[order], return_index=True, return_counts=True)
    pos = np.minimum(np.searchsorted(uniq, q_pids), max(len(uniq) - 1, 0))
    present = uniq[pos] == q_pids if len(uniq) else np.zeros(len(q_pids), bool)
    cnt = np.where(present, size[pos], 0)
    q_idx = np.repeat(np.arange(len(q_pids)), cnt)
    offs = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    g_idx = order[np.repeat(start[pos], cnt) + offs]
    qc, gc = q_cams[q_idx], g_cams[g_idx]
    same_camera = (qc == gc) & (qc >= 0)  # an unknown camera is never "the same camera"
    is_match = ~same_camera
    if q_self is not None:
        is_match &= g_idx != q_self[q_idx]
    return q_idx, g_idx, is_match, pos, (order, start, size)
