"""Layer 0 target-domain memories (pure tensor code, no I/O, no global state).

* :mod:`.exemplar`: :class:`ExemplarMemory` (ECN's exemplar / camera / neighbourhood
  invariance, one slot per target image and head) and its momentum schedules
  (:class:`LinearMomentum`, any ``MomentumSchedule`` callable ``epoch -> alpha``).
* :mod:`.gather`: :func:`all_gather_rows`, the all-gather the memories use so every rank
  applies the same update, and its :func:`world_size` probe.
"""

from __future__ import annotations

from .exemplar import ExemplarMemory, LinearMomentum, MomentumSchedule
from .gather import all_gather_rows, world_size

__all__ = ["ExemplarMemory", "LinearMomentum", "MomentumSchedule", "all_gather_rows", "world_size"]
