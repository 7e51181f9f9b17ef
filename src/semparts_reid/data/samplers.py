"""Samplers that split across ``torch.distributed`` ranks with equal lengths, and seeding.

* :class:`PKSampler` -- P identities x K images per batch, for labelled (source) data.
* :class:`RandomIndexSampler` -- a shuffled pass over dataset indices, for the unlabelled
  target domain (items carry ``index``, the exemplar-memory slot).

Both are deterministic functions of ``(seed, epoch)``: call :meth:`set_epoch` before
each epoch, save :meth:`state_dict` in a checkpoint, and :meth:`load_state_dict` resumes
the exact same order (``start`` skips the items already consumed in that epoch).
Every rank draws the same global order and takes its own equal-length share.

Example:
    >>> sampler = PKSampler(dataset.pids, p=16, k=4, seed=0)     # doctest: +SKIP
    >>> loader = DataLoader(dataset, batch_size=64, sampler=sampler,
    ...                     worker_init_fn=seed_worker, generator=make_generator(0))
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["PKSampler", "RandomIndexSampler", "make_generator", "resolve_rank", "seed_worker"]


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Fill missing ``rank`` / ``world_size`` from the process group (0, 1 without one)."""
    dist = torch.distributed
    active = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if active else 1
    if rank is None:
        rank = dist.get_rank() if active else 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank={rank}, world_size={world_size}: expected 0 <= rank < world_size")
    return int(rank), int(world_size)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from torch's worker seed.

    Torch seeds each worker with ``base_seed + worker_id`` where ``base_seed`` comes from
    the DataLoader's ``generator``; with :func:`make_generator` a seeded run is reproducible.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``, for ``DataLoader(generator=...)``.

    Any Python int is accepted: it is reduced modulo ``2**64`` (torch's seed range), which
    leaves seeds in ``[0, 2**64)`` unchanged and maps negative ones as torch does. Derived
    seeds such as ``seed * 1_000_003 + epoch`` therefore never overflow, and distinct
    ``(seed, epoch)`` pairs keep distinct generators (the multiplier is odd).
    """
    g = torch.Generator()
    g.manual_seed(int(seed) % 2**64)
    return g


class _EpochSampler(Sampler[int]):
    """Shared (seed, epoch, start) state and rank split."""

    def __init__(self, seed: int, rank: int | None, world_size: int | None) -> None:
        self.seed = int(seed)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the order of ``epoch`` (and restart it from the beginning)."""
        self.epoch = int(epoch)
        self.start = 0

    def state_dict(self, consumed: int = 0) -> dict[str, int]:
        """``{"seed", "epoch", "start"}``; ``consumed`` = items of this rank already used."""
        return {"seed": self.seed, "epoch": self.epoch, "start": int(consumed)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next iteration resumes after ``start`` items."""
        self.seed, self.epoch, self.start = int(state["seed"]), int(state["epoch"]), 0
        self.start = int(state.get("start", 0))

    def _generator(self) -> torch.Generator:
        return make_generator(self.seed * 1_000_003 + self.epoch)

    def _local(self) -> list[int]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        local = self._local()
        start, self.start = self.start, 0
        return iter(local[start:])


class PKSampler(_EpochSampler):
    """Batches of ``p`` identities with ``k`` images each (use ``batch_size = p * k``).

    Identities are visited in a fresh random order each epoch (a running stream of
    permutations, so every identity appears before any repeats); each identity's images
    are cycled through in a random order, drawn with replacement only when it has fewer
    than ``k``. An epoch has ``num_batches`` global batches (default: about one pass over
    the images); rank ``r`` of ``world_size`` takes batches ``r, r + W, ...``, every rank
    the same number, each a full P x K batch.

    Args:
        pids: identity of every dataset item (e.g. ``dataset.pids``).
        p: identities per batch (needs at least ``p`` identities).
        k: images per identity.
        num_batches: global batches per epoch (rounded down to a multiple of world_size).
        seed, rank, world_size: see the module docstring.
    """

    def __init__(
        self,
        pids: Sequence[int],
        p: int,
        k: int,
        *,
        num_batches: int | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__(seed, rank, world_size)
        if p < 1 or k < 1:
            raise ValueError(f"p={p}, k={k}: expected >= 1")
        pid_arr = np.asarray(pids, dtype=np.int64)
        uniq, inverse = np.unique(pid_arr, return_inverse=True)
        if len(uniq) < p:
            raise ValueError(f"p={p} identities per batch but the data has only {len(uniq)}")
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse)
        self.groups = np.split(order, np.cumsum(counts)[:-1])  # item indices per identity
        self.p, self.k = int(p), int(k)
        total = num_batches if num_batches is not None else max(1, len(pid_arr) // (p * k))
        self.num_batches = max(1, total // self.world_size) * self.world_size
        if num_batches is not None and num_batches < 1:
            raise ValueError(f"num_batches={num_batches}: expected >= 1")

    def __len__(self) -> int:
        return self.num_batches // self.world_size * self.p * self.k

    def global_batches(self) -> np.ndarray:
        """All batches of this epoch, all ranks: int64 array (num_batches, p * k)."""
        g = self._generator()
        n_ids, need = len(self.groups), self.num_batches * self.p
        reps = -(-need // n_ids)
        stream = torch.cat([torch.randperm(n_ids, generator=g) for _ in range(reps)])[:need]
        stream_np = stream.numpy().reshape(self.num_batches, self.p)
        # per identity: its images in a random cyclic order; successive visits continue it
        visits = np.zeros(n_ids, np.int64)
        out = np.empty((self.num_batches, self.p, self.k), np.int64)
        perms = [g_idx[torch.randperm(len(g_idx), generator=g).numpy()] for g_idx in self.groups]
        for b in range(self.num_batches):  # cheap per-batch bookkeeping (p entries each)
            for j, ident in enumerate(stream_np[b]):
                items = perms[ident]
                if len(items) >= self.k:
                    pos = (visits[ident] * self.k + np.arange(self.k)) % len(items)
                    out[b, j] = items[pos]
                else:
                    pick = torch.randint(len(items), (self.k,), generator=g).numpy()
                    out[b, j] = items[pick]
                visits[ident] += 1
        return out.reshape(self.num_batches, self.p * self.k)

    def _local(self) -> list[int]:
        return self.global_batches()[self.rank :: self.world_size].reshape(-1).tolist()


class RandomIndexSampler(_EpochSampler):
    """Every dataset index once per epoch, shuffled, split equally across ranks.

    With ``world_size`` ranks each rank gets ``ceil(n / W)`` indices (the global order is
    padded by wrapping around, like ``DistributedSampler``) or ``floor(n / W)`` with
    ``drop_last=True``. Indices are yielded unchanged: the item's ``index`` field is the
    exemplar-memory slot.
    """

    def __init__(
        self,
        num_samples: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__(seed, rank, world_size)
        if num_samples < 1:
            raise ValueError(f"num_samples={num_samples}: expected >= 1")
        self.num_samples, self.shuffle, self.drop_last = int(num_samples), shuffle, drop_last
        w = self.world_size
        self.per_rank = num_samples // w if drop_last else -(-num_samples // w)
        if self.per_rank < 1:
            raise ValueError(f"num_samples={num_samples} < world_size={w} with drop_last")

    def __len__(self) -> int:
        return self.per_rank

    def _local(self) -> list[int]:
        n, total = self.num_samples, self.per_rank * self.world_size
        if self.shuffle:
            order = torch.randperm(n, generator=self._generator())
        else:
            order = torch.arange(n)
        if total > n:
            order = torch.cat([order, order[: total - n]])
        return order[:total][self.rank :: self.world_size].tolist()
