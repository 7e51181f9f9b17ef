"""Private: ``torch.unique`` with a fixed output size (no host synchronisation)."""

from __future__ import annotations

import torch

__all__ = ["unique_padded"]


def unique_padded(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``torch.unique(idx, return_inverse=True)`` with a fixed output size.

    Args:
        idx: (B,) int64, B >= 1.

    Returns:
        ``uniq`` (B,): the U distinct values in ascending order, then ``B - U`` copies of
        the largest; ``inverse`` (B,): position of each ``idx`` entry in ``uniq`` (as
        ``torch.unique``'s); ``count``: U as a 0-d tensor. Nothing is read back to the
        host, so on a GPU this does not synchronise (``torch.unique`` must, to size its
        output).
    """
    b = idx.numel()
    sorted_idx, order = torch.sort(idx, stable=True)
    starts = torch.ones(b, dtype=torch.bool, device=idx.device)
    starts[1:] = sorted_idx[1:] != sorted_idx[:-1]
    group = torch.cumsum(starts.long(), 0) - 1  # (B,) group of each sorted entry
    inverse = torch.empty_like(group).scatter_(0, order, group)
    count = group[-1] + 1
    # every entry of a group writes the same value, so the scatter is deterministic
    uniq = torch.empty_like(sorted_idx).scatter_(0, group, sorted_idx)
    pad = torch.arange(b, device=idx.device) >= count
    return torch.where(pad, sorted_idx[-1], uniq), inverse, count
