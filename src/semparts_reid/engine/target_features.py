"""The target training features an objective re-clusters on, extracted once across ranks.

Under ``torchrun`` each rank extracts every ``world``-th image (``records[rank::world]``)
and the shards are all-gathered and put back in record order, so every rank holds the
same :class:`~semparts_reid.inference.PartFeatures` of the whole target training set
for the price of ``1 / world`` of the extraction. A shard is extracted by its own rank's
replica: the weights are the same everywhere, the BatchNorm running statistics are each
process's own (as in evaluation under DDP). In one process this is just the extraction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..inference.extractor import PartFeatures
from .distributed import all_gather_rows

__all__ = ["gather_split_features"]


def gather_split_features(
    extract: Callable[[Sequence[Any]], PartFeatures],
    records: Sequence[Any],
    *,
    rank: int = 0,
    world: int = 1,
    device: torch.device | str = "cpu",
) -> PartFeatures:
    """Features of all ``records``, each rank extracting one shard.

    Args:
        extract: ``records -> PartFeatures`` (e.g. ``extract_split`` with an extractor).
        records: the ``(path, pid, camid)`` records, the same list on every rank.
        rank, world: this process and the number of processes.
        device: where the shards travel for the all-gather (the trainer's device: a CUDA
            device under NCCL).

    Returns:
        ``PartFeatures`` of every record in order (``global_feat (N, D)``,
        ``part_feats (N, K, D)``, ``visibility (N, K)``; float32 on the CPU).
    """
    if world <= 1:
        return extract(records)
    n = len(records)
    if n < world:
        raise ValueError(f"{n} target images cannot be shared among {world} processes")
    mine = extract(records[rank::world])
    g, p, v = mine.global_feat, mine.part_feats, mine.visibility
    k, d = p.shape[1], g.shape[1]
    rows = torch.cat([g, p.flatten(1), v], dim=1).to(device)  # (n_r, D + K D + K)
    allrows = all_gather_rows(rows).cpu()  # shards in rank order
    order = torch.as_tensor(np.concatenate([np.arange(r, n, world) for r in range(world)]))
    out = torch.empty_like(allrows)
    out[order] = allrows
    pids = np.array([int(r[1]) for r in records], dtype=np.int64)
    camids = np.array([int(r[2]) for r in records], dtype=np.int64)
    return PartFeatures(
        out[:, :d].contiguous(), out[:, d:d + k * d].reshape(n, k, d).contiguous(),
        out[:, d + k * d:].contiguous(), pids, camids, [str(r[0]) for r in records],
    )
