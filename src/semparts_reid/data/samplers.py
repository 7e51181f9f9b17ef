"""The samplers of the library and the trainer: seeded global batches split across ranks.

* :class:`PKSampler` -- global batches of P identities x K images, for labelled (source)
  data.
* :class:`RandomIndexSampler` -- uniformly random global batches, for the unlabelled
  target domain (items carry ``index``, the exemplar-memory slot).

An epoch is ``num_batches`` *global* batches of ``batch_size`` items (over all ranks),
a pure function of ``(seed, epoch)``: epoch ``e`` draws from
``make_generator(seed * 1_000_003 + e)`` and nothing else, so a run restarted at an epoch
boundary replays that epoch exactly. Under ``torch.distributed`` every rank draws the
same global batches and takes its own contiguous slice of each (``batch_size //
world_size`` items), so ``N`` processes see exactly the batches one process would. A
sampler yields this rank's items batch after batch: load them with
``batch_size=sampler.local_batch_size``. To resume in the middle of an epoch, save
:meth:`~_GlobalBatchSampler.state_dict` and restore it with
:meth:`~_GlobalBatchSampler.load_state_dict`.

Example (``dataset``: a re-ID dataset read from disk)::

    >>> sampler = PKSampler(dataset.pids, p=16, k=4, seed=0)     # doctest: +SKIP
    >>> loader = DataLoader(dataset, batch_size=sampler.local_batch_size,  # doctest: +SKIP
    ...                     sampler=sampler, worker_init_fn=seed_worker,
    ...                     generator=make_generator(0))
    >>> for epoch in range(epochs):                               # doctest: +SKIP
    ...     sampler.set_epoch(epoch)
    ...     for batch in loader: ...
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["PKSampler", "RandomIndexSampler", "make_generator", "resolve_rank", "seed_worker"]

EPOCH_STRIDE = 1_000_003  # odd: distinct (seed, epoch) pairs keep distinct generators


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


class _GlobalBatchSampler(Sampler[int]):
    """``num_batches`` global batches of ``batch_size`` items per epoch; this rank's slices.

    Subclasses draw the global batches (:meth:`_draw`); this class holds the
    ``(seed, epoch, start)`` state, the generator of each epoch and the rank split.
    """

    def __init__(
        self,
        batch_size: int,
        num_batches: int,
        seed: int,
        rank: int | None,
        world_size: int | None,
    ) -> None:
        self.rank, self.world_size = resolve_rank(rank, world_size)
        if batch_size < 1 or batch_size % self.world_size:
            raise ValueError(
                f"batch_size={batch_size}: expected a positive multiple of "
                f"world_size={self.world_size} (every rank takes an equal slice of each batch)"
            )
        if num_batches < 1:
            raise ValueError(f"num_batches={num_batches}: expected >= 1")
        self.batch_size, self.num_batches = int(batch_size), int(num_batches)
        self.seed = int(seed)
        self.epoch = 0
        self.start = 0

    @property
    def local_batch_size(self) -> int:
        """Items of each global batch that this rank loads (``batch_size // world_size``)."""
        return self.batch_size // self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Select the batches of ``epoch`` (and restart it from the beginning)."""
        self.epoch = int(epoch)
        self.start = 0

    def state_dict(self, consumed: int = 0) -> dict[str, int]:
        """``{"seed", "epoch", "start"}``; ``consumed`` = items of this rank already used."""
        return {"seed": self.seed, "epoch": self.epoch, "start": int(consumed)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next iteration resumes after ``start`` items."""
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])
        self.start = int(state.get("start", 0))

    def generator(self) -> torch.Generator:
        """The generator of this epoch: ``make_generator(seed * 1_000_003 + epoch)``."""
        return make_generator(self.seed * EPOCH_STRIDE + self.epoch)

    def _draw(self, g: torch.Generator) -> np.ndarray:
        raise NotImplementedError

    def global_batches(self) -> np.ndarray:
        """All batches of this epoch, all ranks: int64 array (num_batches, batch_size)."""
        out = self._draw(self.generator())
        assert out.shape == (self.num_batches, self.batch_size)
        return out

    def local_batches(self) -> np.ndarray:
        """This rank's slice of every global batch: (num_batches, local_batch_size)."""
        lo = self.rank * self.local_batch_size
        return self.global_batches()[:, lo : lo + self.local_batch_size]

    def __len__(self) -> int:
        return self.num_batches * self.local_batch_size

    def __iter__(self) -> Iterator[int]:
        local = self.local_batches().reshape(-1).tolist()
        start, self.start = self.start, 0
        return iter(local[start:])


class PKSampler(_GlobalBatchSampler):
    """Global batches of ``p`` identities with ``k`` images each (``batch_size = p * k``).

    Identities are visited in a fresh random order each epoch (a running stream of
    permutations, so every identity appears before any repeats); each identity's images
    are cycled through in a random order, drawn with replacement only when it has fewer
    than ``k``. With ``world_size`` ranks each rank loads ``p * k / world_size`` items of
    every batch (``p`` a multiple of ``world_size`` keeps identities whole on a rank).

    Args:
        pids: identity of every dataset item (e.g. ``dataset.pids``).
        p: identities per global batch (needs at least ``p`` identities).
        k: images per identity.
        num_batches: global batches per epoch (default: about one pass over the images).
        seed, rank, world_size: see the module docstring; ``rank`` / ``world_size``
            default to the initialised process group (0 / 1 without one).
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
        if p < 1 or k < 1:
            raise ValueError(f"p={p}, k={k}: expected >= 1")
        pid_arr = np.asarray(pids, dtype=np.int64)
        uniq, inverse = np.unique(pid_arr, return_inverse=True)
        if len(uniq) < p:
            raise ValueError(f"p={p} identities per batch but the data has only {len(uniq)}")
        if num_batches is None:
            num_batches = max(1, len(pid_arr) // (p * k))
        super().__init__(p * k, num_batches, seed, rank, world_size)
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse)
        self.groups = np.split(order, np.cumsum(counts)[:-1])  # item indices per identity
        self.p, self.k = int(p), int(k)

    def _draw(self, g: torch.Generator) -> np.ndarray:
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


class RandomIndexSampler(_GlobalBatchSampler):
    """Uniformly random global batches of dataset indices, from a stream of permutations.

    The indices of an epoch are successive random permutations of ``range(num_samples)``
    (every index once before any repeats), cut into ``num_batches`` global batches of
    ``batch_size``. Indices are yielded unchanged: the item's ``index`` field is the
    exemplar-memory slot.

    The defaults make one pass over the data: ``batch_size = world_size`` (each rank
    takes every ``world_size``-th index, ``ceil(n / W)`` of them, completed from the next
    permutation) and ``num_batches = ceil(n / batch_size)``, or ``floor`` with
    ``drop_last=True``.

    Args:
        num_samples: dataset length.
        batch_size: items per global batch (a multiple of ``world_size``).
        num_batches: global batches per epoch (default: one pass, see above).
        shuffle: ``False`` yields ``0, 1, ..., n-1, 0, 1, ...`` instead of permutations.
        drop_last: with the default ``num_batches``, drop an incomplete last batch.
        seed, rank, world_size: see the module docstring.
    """

    def __init__(
        self,
        num_samples: int,
        *,
        batch_size: int | None = None,
        num_batches: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples={num_samples}: expected >= 1")
        rank, world_size = resolve_rank(rank, world_size)
        batch = world_size if batch_size is None else int(batch_size)
        if num_batches is None and batch >= 1:
            num_batches = num_samples // batch if drop_last else -(-num_samples // batch)
            if num_batches < 1:
                raise ValueError(
                    f"num_samples={num_samples} < batch_size={batch} with drop_last: "
                    "expected at least one full batch"
                )
        super().__init__(batch, num_batches or 0, seed, rank, world_size)
        self.num_samples, self.shuffle, self.drop_last = int(num_samples), shuffle, drop_last

    def _draw(self, g: torch.Generator) -> np.ndarray:
        n, total = self.num_samples, self.num_batches * self.batch_size
        reps = -(-total // n)
        if self.shuffle:
            order = torch.cat([torch.randperm(n, generator=g) for _ in range(reps)])
        else:
            order = torch.arange(n).repeat(reps)
        return order[:total].numpy().astype(np.int64).reshape(self.num_batches, self.batch_size)
