"""Video constraints for target pseudo-labels and ECN neighbourhoods (pure numpy / torch).

A target that comes from video gives free supervision that an image dataset lacks:

* **must-link**: crops of one tracklet (equal tracklet id ``>= 0``) are one person;
* **cannot-link**: two crops of one frame of one sequence are two people.

:class:`VideoConstraints` holds them compactly for ``N`` crops: a compact tracklet id
and a compact frame-group id (one per ``(sequence, frame)``) per crop, and each grouping
as a CSR index (members sorted by group, ``ptr`` offsets); never an ``N × N`` matrix.
A tracklet that holds two crops of one frame (a tracker's error, or a duplicate box)
contradicts the cannot-link: cannot-link wins, and every crop of that frame after the
first (input order) leaves the tracklet (:attr:`VideoConstraints.dropped_members`).

Two consumers:

* :func:`constrain_cluster_labels` corrects clustering pseudo-labels (the cluster
  objective's DBSCAN labels) before the cluster memory is built from them;
* :func:`constrain_neighbours` (or its accumulating wrapper :class:`NeighbourConstraint`)
  turns a batch's similarities to the exemplar memory into ECN's neighbourhood weights
  with tracklet mates added and same-frame slots removed, in the shape
  :meth:`~semparts_reid.memory.ExemplarMemory.loss` uses internally, so it can be passed
  in as an optional argument without changing the default.

Example:
    >>> import numpy as np
    >>> vc = VideoConstraints(tracklets=np.array([0, 0, -1, 1]), frames=np.array([1, 2, 1, 2]))
    >>> vc.must_link_pairs, vc.cannot_link_pairs
    (1, 2)
    >>> labels, stats = constrain_cluster_labels(np.array([0, 1, 0, 1]), vc)
    >>> labels.tolist(), stats.cannot_link_violations_after
    ([0, 0, -1, -1], 0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError

__all__ = [
    "ClusterConstraintStats",
    "NeighbourConstraint",
    "NeighbourStats",
    "VideoConstraints",
    "constrain_cluster_labels",
    "constrain_neighbours",
]


def _int_column(x: Any, name: str, n: int | None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = "(N,)" if n is None else f"({n},)"
        raise InputError(f"{name} of shape {arr.shape}: expected {want}")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise InputError(f"{name}: expected integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _csr(group: np.ndarray, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Members of each group ``0..G-1`` (``-1`` left out): (order, ptr) with group ``g``'s
    members ``order[ptr[g]:ptr[g + 1]]`` in ascending index order."""
    idx = np.flatnonzero(group >= 0)
    order = idx[np.argsort(group[idx], kind="stable")]
    ptr = np.zeros(num_groups + 1, np.int64)
    np.cumsum(np.bincount(group[idx], minlength=num_groups), out=ptr[1:])
    return order, ptr


def _pairs(counts: np.ndarray) -> int:
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


class VideoConstraints:
    """Must-links (same tracklet) and cannot-links (same sequence and frame) of N crops.

    Args:
        tracklets: ``(N,)`` int tracklet id per crop, any value ``< 0``: none.
        frames: ``(N,)`` int frame index per crop.
        sequences: optional ``(N,)`` int sequence id (default: one sequence).

    Attributes:
        tracklet: ``(N,)`` int64 compact tracklet id ``0..T-1`` (``-1``: none), in order
            of the input ids.
        frame_group: ``(N,)`` int64 compact ``(sequence, frame)`` id ``0..G-1``.
        tracklet_order, tracklet_ptr: CSR of the tracklets (``ptr`` has ``T + 1`` entries).
        frame_order, frame_ptr: CSR of the frame groups (``G + 1`` entries).
        dropped_members: crops that left their tracklet because it already held a crop
            of their frame.

    Raises:
        InputError: arrays that are not ``(N,)`` integer arrays of one length.
    """

    def __init__(self, tracklets: Any, frames: Any, sequences: Any = None) -> None:
        tr = _int_column(tracklets, "tracklets", None)
        n = tr.shape[0]
        fr = _int_column(frames, "frames", n)
        sq = np.zeros(n, np.int64) if sequences is None else _int_column(sequences, "sequences", n)
        # (sequence, frame) -> compact frame group
        order = np.lexsort((fr, sq))
        new = np.r_[True, (sq[order][1:] != sq[order][:-1]) | (fr[order][1:] != fr[order][:-1])]
        fg = np.empty(n, np.int64)
        fg[order] = np.cumsum(new) - 1
        num_g = int(new.sum()) if n else 0
        # compact tracklets; cannot-link wins inside a tracklet
        tr = np.where(tr >= 0, tr, -1)
        has = np.flatnonzero(tr >= 0)
        dropped = 0
        if len(has):
            o = has[np.lexsort((has, fg[has], tr[has]))]
            dup = np.r_[False, (tr[o][1:] == tr[o][:-1]) & (fg[o][1:] == fg[o][:-1])]
            dropped = int(dup.sum())
            tr[o[dup]] = -1
        comp = np.full(n, -1, np.int64)
        tracked = tr >= 0
        uniq, inv = np.unique(tr[tracked], return_inverse=True)
        comp[tracked] = inv
        num_t = len(uniq)
        self.tracklet = comp
        self.frame_group = fg
        self.tracklet_order, self.tracklet_ptr = _csr(comp, num_t)
        self.frame_order, self.frame_ptr = _csr(fg, num_g)
        self.dropped_members = dropped
        for arr in (self.tracklet, self.frame_group, self.tracklet_order, self.tracklet_ptr,
                    self.frame_order, self.frame_ptr):  # fmt: skip
            arr.setflags(write=False)
        self._device_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return (
            f"VideoConstraints(num_samples={self.num_samples}, num_tracklets="
            f"{self.num_tracklets}, num_frame_groups={self.num_frame_groups}, must_link_pairs="
            f"{self.must_link_pairs}, cannot_link_pairs={self.cannot_link_pairs})"
        )

    @property
    def num_samples(self) -> int:
        return int(self.tracklet.shape[0])

    @property
    def num_tracklets(self) -> int:
        return int(self.tracklet_ptr.shape[0] - 1)

    @property
    def num_frame_groups(self) -> int:
        return int(self.frame_ptr.shape[0] - 1)

    @property
    def tracklet_sizes(self) -> np.ndarray:
        """``(T,)`` members per tracklet."""
        return np.diff(self.tracklet_ptr)

    @property
    def must_link_pairs(self) -> int:
        """Pairs of crops in one tracklet."""
        return _pairs(self.tracklet_sizes)

    @property
    def cannot_link_pairs(self) -> int:
        """Pairs of crops in one frame of one sequence."""
        return _pairs(np.diff(self.frame_ptr))

    def tracklet_members(self, t: int) -> np.ndarray:
        """Indices of tracklet ``t``'s crops (ascending)."""
        return self.tracklet_order[self.tracklet_ptr[t] : self.tracklet_ptr[t + 1]]

    def frame_members(self, g: int) -> np.ndarray:
        """Indices of frame group ``g``'s crops (ascending)."""
        return self.frame_order[self.frame_ptr[g] : self.frame_ptr[g + 1]]

    def tensors(
        self, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tracklet, frame_group)`` as ``(N,)`` int64 tensors on ``device`` (cached)."""
        dev = torch.device(device) if device is not None else torch.device("cpu")
        key = str(dev)
        if key not in self._device_cache:
            self._device_cache[key] = (
                torch.as_tensor(self.tracklet.copy()).to(dev),
                torch.as_tensor(self.frame_group.copy()).to(dev),
            )
        return self._device_cache[key]


# --------------------------------------------------------------------- cluster labels
@dataclass(frozen=True)
class ClusterConstraintStats:
    """What :func:`constrain_cluster_labels` changed.

    Attributes:
        tracklets_unified: tracklets (>= 2 crops) not wholly in one cluster before, and
            wholly in one after.
        must_links_added: must-link pairs co-clustered after minus before.
        crops_moved: crops moved from one cluster to another by the must-link rule.
        outliers_adopted: outliers (``-1``) given a cluster (tracklet members).
        crops_split_off: crops moved to a new cluster by the cannot-link rule.
        crops_to_outliers: clustered crops left alone in a cluster, made outliers.
        cannot_link_violations_before / _after: same-frame pairs in one cluster.
        clusters_before / clusters_after: clusters (``>= 0`` labels) in and out.
        clusters_added: new clusters (an outlier-only tracklet, a split-off part).
        clusters_removed: input clusters with no crop left.
        rounds: cannot-link splitting rounds.
    """

    tracklets_unified: int = 0
    must_links_added: int = 0
    crops_moved: int = 0
    outliers_adopted: int = 0
    crops_split_off: int = 0
    crops_to_outliers: int = 0
    cannot_link_violations_before: int = 0
    cannot_link_violations_after: int = 0
    clusters_before: int = 0
    clusters_after: int = 0
    clusters_added: int = 0
    clusters_removed: int = 0
    rounds: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _violations(lab: np.ndarray, fg: np.ndarray, num_g: int) -> int:
    cl = lab >= 0
    if not cl.any():
        return 0
    _, counts = np.unique(lab[cl] * max(num_g, 1) + fg[cl], return_counts=True)
    return _pairs(counts)


def _colinked(lab: np.ndarray, tr: np.ndarray) -> int:
    m = (lab >= 0) & (tr >= 0)
    if not m.any():
        return 0
    _, counts = np.unique(tr[m] * (int(lab.max()) + 1) + lab[m], return_counts=True)
    return _pairs(counts)


def _together(lab: np.ndarray, c: VideoConstraints) -> np.ndarray:
    """(T,) bool: every member of the tracklet in one cluster (not an outlier)."""
    if c.num_tracklets == 0:
        return np.zeros(0, bool)
    v = lab[c.tracklet_order]
    starts = c.tracklet_ptr[:-1]
    lo, hi = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
    return (lo == hi) & (lo >= 0)


def _join_conflicts(
    pt: np.ndarray, pc: np.ndarray, lab: np.ndarray, c: VideoConstraints
) -> np.ndarray:
    """(P,) bool: would moving tracklet ``pt[p]`` wholly into cluster ``pc[p]`` put two
    crops of one frame there (counting the crops already in it, not its own)?"""
    num_g = max(c.num_frame_groups, 1)
    fg = c.frame_group
    cl = lab >= 0
    keys, counts = np.unique(lab[cl] * num_g + fg[cl], return_counts=True)
    sizes = c.tracklet_sizes[pt]
    rep = np.repeat(np.arange(len(pt)), sizes)
    offs = np.arange(len(rep)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    mem = c.tracklet_order[c.tracklet_ptr[pt][rep] + offs]
    q = pc[rep] * num_g + fg[mem]
    pos = np.minimum(np.searchsorted(keys, q), max(len(keys) - 1, 0))
    there = np.where(keys[pos] == q, counts[pos], 0) if len(keys) else np.zeros(len(q), np.int64)
    others = there - (lab[mem] == pc[rep])
    return np.bincount(rep, weights=others > 0, minlength=len(pt)) > 0


def _apply_must_links(lab: np.ndarray, c: VideoConstraints, next_id: int) -> tuple[int, int]:
    """Rule 1 of :func:`constrain_cluster_labels`, in place on ``lab``: every tracklet
    into one cluster (new ids from ``next_id``). Returns the next free id and the
    number of clustered crops that moved."""
    tr = c.tracklet
    moved = 0
    t_num = c.num_tracklets
    if t_num:
        m = (tr >= 0) & (lab >= 0)
        span = next_id
        pk, pcount = np.unique(tr[m] * span + lab[m], return_counts=True)
        pt, pc = pk // max(span, 1), pk % max(span, 1)
        target = np.full(t_num, -1, np.int64)
        if len(pk):
            conflict = _join_conflicts(pt, pc, lab, c)
            o = np.lexsort((pc, -pcount, conflict, pt))
            first = o[np.r_[True, pt[o][1:] != pt[o][:-1]]]
            target[pt[first]] = pc[first]
        fresh = np.flatnonzero((target < 0) & (c.tracklet_sizes >= 2))
        target[fresh] = next_id + np.arange(len(fresh))
        next_id += len(fresh)
        has = np.flatnonzero(tr >= 0)
        new_lab = np.where(target[tr[has]] >= 0, target[tr[has]], lab[has])
        moved = int(((lab[has] >= 0) & (new_lab != lab[has])).sum())
        lab[has] = new_lab
    return next_id, moved


def _split_cannot_links(lab: np.ndarray, c: VideoConstraints, next_id: int) -> tuple[int, int, int]:
    """Rule 2 of :func:`constrain_cluster_labels`, in place on ``lab``: split whole
    units off until no cluster holds two crops of one frame (new ids from ``next_id``).
    Returns the next free id, the crops split off and the rounds."""
    n, t_num = len(lab), c.num_tracklets
    tr, fg, num_g = c.tracklet, c.frame_group, max(c.num_frame_groups, 1)
    unit = np.where(tr >= 0, tr, t_num + np.arange(n))
    usize = np.bincount(unit, minlength=t_num + n)
    prio = np.empty(t_num + n, np.int64)
    prio[np.lexsort((np.arange(t_num + n), -usize))] = np.arange(t_num + n)
    split = rounds = 0
    while True:
        idx = np.flatnonzero(lab >= 0)
        key = lab[idx] * num_g + fg[idx]
        o = np.lexsort((prio[unit[idx]], key))
        ks, rows = key[o], idx[o]
        start = np.r_[True, ks[1:] != ks[:-1]] if len(ks) else np.zeros(0, bool)
        grp = np.cumsum(start) - 1
        loser = ~start
        if not loser.any():
            break
        rounds += 1
        win_unit = unit[rows[start]][grp[loser]]
        lose_unit = unit[rows[loser]]
        defeated = np.zeros(t_num + n, bool)
        defeated[lose_unit] = True
        moving = np.zeros(t_num + n, bool)
        moving[lose_unit[~defeated[win_unit]]] = True
        go = np.flatnonzero((lab >= 0) & moving[unit])
        src, inv = np.unique(lab[go], return_inverse=True)
        lab[go] = next_id + inv
        next_id += len(src)
        split += len(go)
    return next_id, split, rounds


def constrain_cluster_labels(
    labels: Any, constraints: VideoConstraints
) -> tuple[np.ndarray, ClusterConstraintStats]:
    """Make clustering pseudo-labels obey the must-links and cannot-links.

    Rules, in order:

    1. **Must-link.** Every tracklet goes wholly into one cluster: among the clusters its
       clustered members are in, the one it can join without putting two crops of one
       frame together (counting the crops already there), then the one holding most of
       its members, then the smallest label. Its other members move there and its
       outliers are adopted. Other crops of the clusters it leaves stay where they are:
       a tracklet never merges two clusters. A tracklet with only outliers becomes a new
       cluster when it has >= 2 crops (a lone outlier stays ``-1``).
    2. **Cannot-link.** A *unit* is a tracklet, or a crop without one. Units are ranked
       by size (crops), then by smaller tracklet id, untracked crops after tracklets (by
       index). In a cluster holding two crops of one frame, the strongest unit there
       keeps the frame; a weaker unit leaves the cluster once it has lost a frame to a
       unit that lost none (so it never leaves for a unit that leaves too). The units
       that leave one cluster in one round form one new cluster, and rounds repeat
       until no cluster holds two crops of one frame (a vectorised pass over all
       clusters per round; the number of rounds is at most the number of units of the
       most crowded cluster, in practice about the most people in one frame). A unit
       is never cut: tracklets stay whole, so the tracklet-consistent side wins.
    3. A cluster that this function created or shrank and that is left with one crop
       becomes an outlier (``-1``); clusters given as singletons stay.
    4. Labels are renumbered ``0..K-1`` in order of their internal id (input clusters
       first, by label; new ones after), ``-1`` kept. Labels with no constraint (every
       tracklet ``-1``, one crop per frame) come back renumbered only.

    The function is idempotent: its output passes through it unchanged.

    Args:
        labels: ``(N,)`` int cluster labels (numpy or torch), ``-1``: outlier.
        constraints: :class:`VideoConstraints` of the same ``N`` crops.

    Returns:
        ``(labels (N,) int64 numpy, stats)``, see :class:`ClusterConstraintStats`.

    Raises:
        InputError: ``labels`` not an ``(N,)`` integer array matching the constraints.
    """
    c = constraints
    lab = _int_column(labels, "labels", c.num_samples)
    lab = np.where(lab >= 0, lab, -1)
    orig = lab.copy()
    n = len(lab)
    tr, fg, num_g = c.tracklet, c.frame_group, max(c.num_frame_groups, 1)
    if n == 0:
        return lab, ClusterConstraintStats()
    first_new = int(lab.max()) + 1 if (lab >= 0).any() else 0
    next_id = first_new
    together_before = _together(lab, c)
    colinked_before = _colinked(lab, tr)
    viol_before = _violations(lab, fg, num_g)
    # 1. must-link
    next_id, moved = _apply_must_links(lab, c, next_id)
    # 2. cannot-link: split whole units off, strongest unit keeps its frames
    next_id, split, rounds = _split_cannot_links(lab, c, next_id)
    # 3. singletons this function made become outliers
    size_now = np.bincount(lab[lab >= 0], minlength=next_id)
    size_in = np.bincount(orig[orig >= 0], minlength=next_id)
    lone = (size_now == 1) & ((np.arange(next_id) >= first_new) | (size_in != 1))
    to_out = (lab >= 0) & lone[np.maximum(lab, 0)]
    lab[to_out] = -1
    # 4. renumber
    present = np.unique(lab[lab >= 0])
    out = np.full(n, -1, np.int64)
    out[lab >= 0] = np.searchsorted(present, lab[lab >= 0])
    in_clusters = np.unique(orig[orig >= 0])
    stats = ClusterConstraintStats(
        tracklets_unified=int(
            (~together_before & _together(lab, c) & (c.tracklet_sizes >= 2)).sum()
        ),
        must_links_added=_colinked(lab, tr) - colinked_before,
        crops_moved=moved,
        outliers_adopted=int(((orig < 0) & (lab >= 0)).sum()),
        crops_split_off=split,
        crops_to_outliers=int(((orig >= 0) & (lab < 0)).sum()),
        cannot_link_violations_before=viol_before,
        cannot_link_violations_after=_violations(lab, fg, num_g),
        clusters_before=len(in_clusters),
        clusters_after=len(present),
        clusters_added=int((present >= first_new).sum()),
        clusters_removed=len(np.setdiff1d(in_clusters, present)),
        rounds=rounds,
    )
    return out, stats


# --------------------------------------------------------------------- ECN neighbours
@dataclass(frozen=True)
class NeighbourStats:
    """Links :func:`constrain_neighbours` changed, as 0-d int64 tensors on the device of
    ``sim`` (reading them is a host synchronisation; :meth:`as_dict` does it). Counts are
    summed over the batch (and over heads when ``sim`` has one).

    Attributes:
        knn_links: k-NN links kept (own slot not counted).
        links_added: tracklet mates given a weight that were not among the k nearest.
        links_removed: same-frame slots that were among the plain k nearest.
        tracklet_links: tracklet mates (weighted ``tracklet_weight``).
    """

    knn_links: torch.Tensor
    links_added: torch.Tensor
    links_removed: torch.Tensor
    tracklet_links: torch.Tensor

    def as_dict(self) -> dict[str, int]:
        return {k: int(v.item()) for k, v in asdict(self).items()}


def constrain_neighbours(
    sim: torch.Tensor,
    indices: torch.Tensor,
    constraints: VideoConstraints,
    k: int,
    *,
    tracklet_weight: float | None = None,
    with_stats: bool = False,
) -> tuple[torch.Tensor, NeighbourStats | None]:
    """ECN's neighbourhood weights with video constraints.

    ECN's neighbourhood invariance (:meth:`~semparts_reid.memory.ExemplarMemory.loss`
    with ``neighbours=True``) takes the ``k`` slots with the largest logits
    (``z.topk(k)``, the own slot may be one), gives each one that is not the own slot
    weight ``1/k``, and adds ``-Σ_j w_j log softmax(z)_j`` to the exemplar term. This
    returns those ``w`` as a dense tensor, with the constraints applied:

    * **cannot-link**: slots of the item's own frame (and sequence) other than its own
      slot are never neighbours: they are masked *before* the top-k, so the ``k``
      nearest admissible slots are taken (the own slot still counts among the ``k``,
      as in ECN);
    * **must-link**: the item's tracklet mates (other slots of its tracklet) get weight
      ``tracklet_weight`` (default ``1/k``, a neighbour's weight), whether or not they
      are among the ``k`` nearest;
    * the own slot has weight 0 here (the exemplar term gives it 1).

    With no constraint (tracklets all ``-1``, one crop per frame) the weights are
    exactly ECN's, so ``per = -logp.gather(own) - (w * logp).sum(-1)`` is bit-for-bit
    ECN's loss. Batched tensor ops on ``sim``'s device; no host synchronisation (the
    stats stay on the device).

    Args:
        sim: ``(B, N)`` or ``(H, B, N)`` similarities (or logits) of a batch's items to
            all ``N`` memory slots.
        indices: ``(B,)`` int slot index of each item (not range-checked: that would
            synchronise; a sampler over the ``N`` slots gives valid ones).
        constraints: :class:`VideoConstraints` of the ``N`` slots.
        k: ECN's ``knn`` (clipped to ``N``; 0: no k-NN links, tracklet links only).
        tracklet_weight: weight of a tracklet mate (default ``1/k``; 1 when ``k == 0``).
        with_stats: also return :class:`NeighbourStats` (one extra top-k).

    Returns:
        ``(weights, stats)``: ``weights`` shaped like ``sim`` (its dtype when floating,
        else float32), ``stats`` ``None`` unless ``with_stats``.

    Raises:
        InputError: a shape that does not match (``sim``'s last dimension must be the
            constraints' ``N``, ``indices`` ``(B,)`` integers).
    """
    if not isinstance(sim, torch.Tensor) or sim.dim() not in (2, 3):
        shape = tuple(sim.shape) if isinstance(sim, torch.Tensor) else type(sim).__name__
        raise InputError(f"sim of shape {shape}: expected a (B, N) or (H, B, N) tensor")
    b, n = int(sim.shape[-2]), int(sim.shape[-1])
    if n != constraints.num_samples:
        raise InputError(
            f"sim has {n} slots (last dimension), the constraints {constraints.num_samples}"
        )
    if (
        not isinstance(indices, torch.Tensor)
        or indices.shape != (b,)
        or indices.is_floating_point()
        or indices.dtype == torch.bool
    ):
        shape = tuple(indices.shape) if isinstance(indices, torch.Tensor) else type(indices)
        raise InputError(f"indices of shape {shape}: expected a ({b},) integer tensor")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise InputError(f"k={k!r}: expected an integer >= 0")
    dev = sim.device
    dtype = sim.dtype if sim.is_floating_point() else torch.float32
    idx = indices.to(device=dev, dtype=torch.long)
    trk, fgp = constraints.tensors(dev)
    t_b, g_b = trk[idx], fgp[idx]
    slots = torch.arange(n, device=dev)
    own = slots[None, :] == idx[:, None]  # (B, N)
    same_frame = (g_b[:, None] == fgp[None, :]) & ~own
    mate = (t_b[:, None] == trk[None, :]) & (t_b[:, None] >= 0) & ~own
    k = min(k, n)
    knn = torch.zeros(sim.shape, dtype=dtype, device=dev)
    if k > 0:
        top = sim.masked_fill(same_frame, float("-inf")).topk(k, dim=-1).indices
        knn.scatter_(-1, top, 1.0 / k)
        knn = knn.masked_fill(same_frame | own, 0.0)  # too few admissible: -inf picks
    tw = (1.0 / k if k > 0 else 1.0) if tracklet_weight is None else float(tracklet_weight)
    weights = knn.masked_fill(mate, tw)  # a Python scalar: no host-to-device copy
    stats = None
    if with_stats:
        heads = sim.shape[0] if sim.dim() == 3 else 1
        in_knn = knn > 0
        removed = torch.zeros((), dtype=torch.long, device=dev)
        if k > 0:
            plain = sim.topk(k, dim=-1).indices
            removed = same_frame.expand(sim.shape).gather(-1, plain).sum()
        stats = NeighbourStats(
            knn_links=in_knn.sum(),
            links_added=(mate & ~in_knn).sum(),
            links_removed=removed,
            tracklet_links=mate.sum() * heads,
        )
    return weights, stats


class NeighbourConstraint:
    """:func:`constrain_neighbours` as a callable ``(sim, indices) -> weights`` that sums
    its stats on the device over calls (read them with :meth:`pop_stats`, e.g. once per
    epoch, the only host synchronisation).

    Args:
        constraints: :class:`VideoConstraints` of the memory's slots.
        k: ECN's ``knn``.
        tracklet_weight: see :func:`constrain_neighbours`.
        track_stats: count links (one extra top-k per call).

    Example:
        >>> vc = VideoConstraints(np.array([0, 0, -1, -1]), np.array([1, 2, 1, 3]))
        >>> fn = NeighbourConstraint(vc, k=1)
        >>> w = fn(torch.eye(4)[[0]], torch.tensor([0]))
        >>> w.tolist(), fn.pop_stats()["links_added"]
        ([[0.0, 1.0, 0.0, 0.0]], 1)
    """

    def __init__(
        self,
        constraints: VideoConstraints,
        k: int,
        *,
        tracklet_weight: float | None = None,
        track_stats: bool = True,
    ) -> None:
        self.constraints = constraints
        self.k = k
        self.tracklet_weight = tracklet_weight
        self.track_stats = track_stats
        self._totals: dict[str, torch.Tensor] = {}

    def __call__(self, sim: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        w, stats = constrain_neighbours(
            sim, indices, self.constraints, self.k,
            tracklet_weight=self.tracklet_weight, with_stats=self.track_stats,
        )  # fmt: skip
        if stats is not None:
            for name, v in asdict(stats).items():
                self._totals[name] = self._totals[name] + v if name in self._totals else v
        return w

    def pop_stats(self) -> dict[str, int]:
        """Counts summed since the last call (zeros when none), then reset."""
        out = {k: int(v.item()) for k, v in self._totals.items()}
        self._totals = {}
        for name in ("knn_links", "links_added", "links_removed", "tracklet_links"):
            out.setdefault(name, 0)
        return out
