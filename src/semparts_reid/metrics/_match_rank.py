"""Private kernels of the evaluator: the rank of every true match among the valid gallery.

CMC, AP and mINP depend only on the 0-based position ``r`` of each true match in the
distance-sorted list of *valid* gallery items (junk removed), with ties broken by
gallery index (the order of a stable argsort). These kernels compute exactly those
positions for one block of query rows without ordering the whole gallery:

1. ``vmax`` = the largest match distance of each row (its hardest positive).
2. Only gallery items with ``d <= vmax`` can precede a match. They are selected
   with one comparison pass, junk is dropped, and the survivors of all rows are sorted
   at once as int64 keys ``row << 32 | order-preserving bits of float32(d)``.
3. ``searchsorted`` of each match's key gives the count of valid items strictly
   closer than it. A match whose key is not unique in its row (an exact tie, or two
   float64 values that round to the same float32) is recomputed exactly by a slow
   path that compares the full row in the input precision.

Work is ``O(c * G)`` elementwise plus ``O(log m)`` per selected item (about the rank
of the hardest positive per row on informative distances); memory is ``O(c * G)``.
When more than ``_SORT_FRACTION`` of the block is selected (weak features, whose
hardest positives sit deep in the gallery), rows are instead value-sorted, with junk
set to +inf, and the match distances binary-searched in them: the same positions.
"""

from __future__ import annotations

import numpy as np
import torch

_TIE_BATCH_ELEMS = 1 << 24  # elements per slow-path batch (bounds its memory)
_SORT_FRACTION = 0.35  # above this share of candidates, sort rows instead (see match_ranks)


def sortable_keys(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """int64 keys ordering ``(row, float32(value))`` lexicographically.

    Args:
        values: ``(n,)`` finite floats of any precision.
        rows: ``(n,)`` int64 row indices, ``0 <= row < 2**31``.

    Returns:
        ``(n,)`` int64 keys, monotone non-decreasing in ``value`` within a row; equal
        keys mean equal float32 values.
    """
    f = values.astype(np.float32) + np.float32(0.0)  # -0.0 -> +0.0
    bits = f.view(np.int32).astype(np.int64)
    bits = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits) + (1 << 31)  # in [0, 2**32)
    return (rows.astype(np.int64) << 32) | bits


def match_ranks(
    dist: np.ndarray,
    m_rows: np.ndarray,
    m_cols: np.ndarray,
    j_rows: np.ndarray,
    j_cols: np.ndarray,
) -> np.ndarray:
    """Position of each true match among the valid gallery items of its query.

    Args:
        dist: ``(c, G)`` C-contiguous finite distances of ``c`` queries (float32/64).
        m_rows, m_cols: ``(P,)`` int64 row (in ``[0, c)``) and gallery column of every
            true match, sorted by row.
        j_rows, j_cols: ``(J,)`` int64 row and column of every junk item (removed from
            its query's gallery: see ``_pairs``), sorted by row.

    Returns:
        ``(P,)`` int64: ``#{valid j: d_j < d_m} + #{valid j < m: d_j == d_m}``, i.e. the
        0-based position of the match in a stable ascending sort of the valid items.
    """
    c, G = dist.shape
    n_p = len(m_rows)
    if n_p == 0:
        return np.empty(0, dtype=np.int64)
    v = dist[m_rows, m_cols]
    vmax = np.full(c, -np.inf, dtype=dist.dtype)
    starts = np.flatnonzero(np.r_[True, m_rows[1:] != m_rows[:-1]])
    vmax[m_rows[starts]] = np.maximum.reduceat(v, starts)
    mask = dist <= vmax[:, None]  # rows without a match select nothing
    if len(j_rows):
        mask[j_rows, j_cols] = False
    if np.count_nonzero(mask) > _SORT_FRACTION * mask.size:
        # weak features: most of the gallery precedes the hardest positives, so sorting
        # the rows' values is cheaper than keying every candidate
        del mask
        ranks = _ranks_by_sorting(dist, m_rows, v, starts, j_rows, j_cols)
        tie_idx = np.flatnonzero(ranks < 0)
        if len(tie_idx):
            ranks[tie_idx] = _exact_ranks(dist, m_rows[tie_idx], m_cols[tie_idx], j_rows, j_cols)
        return ranks
    flat = np.flatnonzero(mask)  # candidates that may precede a match, row-major
    del mask
    a_rows = flat // G
    a_keys = sortable_keys(dist.reshape(-1)[flat], a_rows)
    m_keys = sortable_keys(v, m_rows)
    m_order = np.argsort(m_keys, kind="stable")
    m_sorted = m_keys[m_order]
    # b(a) = #{match keys < a}; candidate a precedes match p (in key order) iff
    # b(a) < p, or b(a) == p and a != key_p.
    b = np.searchsorted(m_sorted, a_keys)
    hit = m_sorted[np.minimum(b, n_p - 1)] == a_keys
    hist = np.bincount(b, minlength=n_p + 1)[:n_p]
    equal = np.bincount(b[hit], minlength=n_p)[:n_p]
    before = np.cumsum(hist) - equal
    row_start = np.searchsorted(flat, np.arange(c, dtype=np.int64) * G)
    ranks = np.empty(n_p, dtype=np.int64)
    ranks[m_order] = before - row_start[m_rows[m_order]]
    # a key shared by two candidates: an exact tie, or float64 values equal in float32
    tie = np.empty(n_p, dtype=bool)
    tie[m_order] = equal != 1
    tie_idx = np.flatnonzero(tie)
    if len(tie_idx):
        ranks[tie_idx] = _exact_ranks(dist, m_rows[tie_idx], m_cols[tie_idx], j_rows, j_cols)
    return ranks


def _ranks_by_sorting(
    dist: np.ndarray,
    m_rows: np.ndarray,
    v: np.ndarray,
    starts: np.ndarray,
    j_rows: np.ndarray,
    j_cols: np.ndarray,
) -> np.ndarray:
    """Match positions by sorting each row's values (junk set to +inf) and a batched
    binary search of the match distances; ``-1`` where the value is tied (slow path)."""
    work = dist.copy()
    if len(j_rows):
        work[j_rows, j_cols] = np.inf  # after every finite value: never counted
    work.sort(axis=1)
    counts = np.diff(np.append(starts, len(m_rows)))
    k = np.arange(len(m_rows)) - np.repeat(starts, counts)  # index of a match in its row
    vpad = np.full((dist.shape[0], int(counts.max())), np.inf, dtype=dist.dtype)
    vpad[m_rows, k] = v
    sorted_t, vals_t = torch.from_numpy(work), torch.from_numpy(vpad)
    left = torch.searchsorted(sorted_t, vals_t).numpy()[m_rows, k]
    right = torch.searchsorted(sorted_t, vals_t, right=True).numpy()[m_rows, k]
    return np.where(right - left > 1, -1, left)


def _exact_ranks(
    dist: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    j_rows: np.ndarray,
    j_cols: np.ndarray,
) -> np.ndarray:
    """Slow exact path for matches with tied keys: full-row comparisons in batches.

    ``j_rows`` / ``j_cols`` (sorted by row) are the junk items, left out of the count.
    """
    n, G = len(rows), dist.shape[1]
    out = np.empty(n, dtype=np.int64)
    ar = np.arange(G)
    step = max(1, _TIE_BATCH_ELEMS // max(G, 1))
    for a in range(0, n, step):
        r, j = rows[a : a + step], cols[a : a + step]
        d = dist[r]  # (b, G)
        v = d[np.arange(len(r)), j][:, None]
        invalid = np.zeros((len(r), G), dtype=bool)
        lo, hi = np.searchsorted(j_rows, r), np.searchsorted(j_rows, r, side="right")
        cnt = hi - lo
        take = np.repeat(lo, cnt) + np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        invalid[np.repeat(np.arange(len(r)), cnt), j_cols[take]] = True
        before = (d < v) | ((d == v) & (ar < j[:, None]))
        out[a : a + step] = np.count_nonzero(before & ~invalid, axis=1)
    return out


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_choice(
    seed: int, repeat: int, q_idx: np.ndarray, group: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """Deterministic uniform choice in ``[0, sizes)`` for each (seed, repeat, query, group).

    A counter-based hash rather than a stateful generator, so the draw of a query does
    not depend on how the queries are chunked.

    Args:
        seed, repeat: scalars.
        q_idx: query indices (global), broadcastable against ``group``.
        group: gallery-identity indices.
        sizes: number of candidates (``>= 1``), broadcastable to the result.

    Returns:
        int64 indices, same broadcast shape.
    """
    with np.errstate(over="ignore"):
        base = _mix64(
            np.asarray(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ np.uint64(0x9E3779B97F4A7C15))
        )
        base = _mix64(base + np.uint64(repeat) * np.uint64(0xD1B54A32D192ED03))
        x = base + q_idx.astype(np.uint64) * np.uint64(0xA24BAED4963EE407)
        x = _mix64(x + group.astype(np.uint64) * np.uint64(0x9FB21C651E98DF25))
        hi = x >> np.uint64(32)
        return ((hi * sizes.astype(np.uint64)) >> np.uint64(32)).astype(np.int64)


def single_shot_ranks(
    dist: np.ndarray,
    q_global: np.ndarray,
    match_lists: tuple[np.ndarray, np.ndarray],
    own_group: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray, np.ndarray],
    num_repeats: int,
    seed: int,
) -> np.ndarray:
    """CUHK03 single-gallery-shot first-match ranks, one per (query, repeat).

    In each repeat one gallery image is drawn uniformly per identity (for the query's
    own identity: among its true matches, i.e. other-camera images); the rank is the
    number of drawn images of other identities that come before the drawn match
    (ties broken by gallery index).

    Args:
        dist: ``(c, G)`` distances of the queries ``q_global`` (all with a match).
        q_global: ``(c,)`` global query indices (seed the draws).
        match_lists: ``(starts (c,), cols (P,))``; the matches of row ``i`` are
            ``cols[starts[i]:starts[i] + n_i]`` with ``n_i`` from the next start.
        own_group: ``(c,)`` index of each query's identity in ``groups``.
        groups: ``(order (G,), start (U,), size (U,))``: gallery columns sorted by
            identity and each identity's slice in ``order``.
        num_repeats, seed: repeats and seed of the draws.

    Returns:
        ``(c, num_repeats)`` int64 ranks.
    """
    c = dist.shape[0]
    order, g_start, g_size = groups
    m_start, m_cols = match_lists
    m_count = np.diff(np.append(m_start, len(m_cols)))
    gidx = np.arange(len(g_start))[None, :]
    rows = np.arange(c)
    out = np.empty((c, num_repeats), dtype=np.int64)
    for r in range(num_repeats):
        pick = hashed_choice(seed, r, q_global[:, None], gidx, g_size[None, :])
        chosen = order[g_start[None, :] + pick]  # (c, U): one image per identity
        own_pick = hashed_choice(seed, r, q_global, own_group, m_count)
        jm = m_cols[m_start + own_pick]  # (c,): the drawn true match
        d = np.take_along_axis(dist, chosen, axis=1)
        vm = dist[rows, jm][:, None]
        before = (d < vm) | ((d == vm) & (chosen < jm[:, None]))
        before[rows, own_group] = False  # the own identity is represented by jm
        out[:, r] = np.count_nonzero(before, axis=1)
    return out
