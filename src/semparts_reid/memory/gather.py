"""The all-gather the memories share: rows of every rank, in rank order, sizes may differ.

Pure tensor code over :mod:`torch.distributed`: without an initialised process group
(or with one process) everything here is a no-op, so the memories run unchanged in a
single process. :mod:`semparts_reid.engine.distributed` re-exports :func:`all_gather_rows`.

Example:
    >>> import torch
    >>> world_size()
    1
    >>> t = torch.arange(6).view(3, 2)
    >>> all_gather_rows(t) is t
    True
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["all_gather_rows", "world_size"]


def world_size() -> int:
    """Processes in the default ``torch.distributed`` group; 1 when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def all_gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` (B_r, ...) of every rank along dim 0, in rank order.

    Ranks may hold different batch sizes ``B_r`` (each rank's rows are padded to the
    largest for the collective, and the padding is dropped). No gradient flows through
    the gather.

    Args:
        t: (B_r, ...) tensor on this rank; every rank passes the same trailing shape
            and dtype.

    Returns:
        (sum_r B_r, ...) tensor, or ``t`` itself when :func:`world_size` is 1.
    """
    world = world_size()
    if world == 1:
        return t
    n = torch.tensor([t.shape[0]], device=t.device, dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    top = max(counts)
    if t.shape[0] < top:
        pad = t.new_zeros((top - t.shape[0], *t.shape[1:]))
        t = torch.cat([t, pad], dim=0)
    out = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(out, t.contiguous())
    return torch.cat([o[:c] for o, c in zip(out, counts)], dim=0)
