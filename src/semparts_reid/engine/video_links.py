"""A video target's must-links and cannot-links, for the target objectives.

A target read from video (a ``mot:`` dataset, :class:`~semparts_reid.data.MOTDataset`)
knows each training crop's frame, sequence and, where a tracker's output gave one, its
tracklet. :func:`video_constraints_for` turns that into a
:class:`~semparts_reid.memory.VideoConstraints` (crops of one tracklet: one person;
crops of one frame: different people), with the crops that have no tracklet linked by
the appearance-free IoU tracker (:func:`~semparts_reid.data.assign_tracklets`) when the
config asks for it. No identity label is read.
"""

from __future__ import annotations

import logging
from typing import Any

from ..data.tracklets import assign_tracklets
from ..errors import InputError
from ..memory import VideoConstraints
from .config import VideoConfig

__all__ = ["video_constraints_for"]

logger = logging.getLogger(__name__)


def video_constraints_for(target: Any, video: VideoConfig) -> VideoConstraints | None:
    """The constraints of ``target``'s training crops (row ``i`` = memory slot ``i``), or
    None when ``video.video_constraints`` is off.

    Raises:
        InputError: constraints are asked for but the target has no per-crop frame table
            (``train_table`` with ``frame``, ``sequence``, ``tracklet`` and ``box``).
    """
    if not video.video_constraints:
        return None
    table = getattr(target, "train_table", None)
    if table is None or not all(hasattr(table, k) for k in ("frame", "sequence", "tracklet",
                                                              "box")):
        raise InputError(
            f"video_constraints need a video target (e.g. 'mot:/path/seq'); "
            f"{getattr(target, 'name', type(target).__name__)!r} has no per-crop frames and "
            "tracklets (train_table)"
        )
    if len(table.frame) != len(target.train):
        raise InputError(f"target train_table has {len(table.frame)} rows for "
                         f"{len(target.train)} training crops")
    tracklets = assign_tracklets(table) if video.video_tracker == "iou" else table.tracklet
    vc = VideoConstraints(tracklets, table.frame, table.sequence)
    logger.info("video constraints: %d tracklets (%s), %d must-link and %d cannot-link pairs "
                "among %d target crops", vc.num_tracklets,
                "IoU tracker" if video.video_tracker == "iou" else "given",
                vc.must_link_pairs, vc.cannot_link_pairs, len(target.train))
    return vc
