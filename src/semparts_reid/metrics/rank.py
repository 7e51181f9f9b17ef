"""CMC, mAP and mINP under the Market-1501 and CUHK03 re-ID evaluation protocols.

See ``docs/evaluation.md`` for the protocol, the two AP variants, mINP, tie-breaking and
memory bounds. In short, for each query:

* **valid gallery**: every gallery item except those with the query's pid *and* camera,
  where both camera ids are known (``-1`` is an unknown camera, never "the same"), the
  query image itself where ``query_in_gallery`` says where it is, and optionally those
  whose pid is in ``junk_pids`` (e.g. Market's ``-1``); see ``_pairs``;
* **true matches**: valid items with the query's pid; a query without any is left out
  of the averages and counted (``num_queries - num_valid_queries``);
* the valid items are ordered by ascending distance, **ties broken by gallery index**
  (the order of a stable argsort);
* with ``r_1 < ... < r_m`` the 0-based positions of the ``m`` matches:
  CMC(k) = ``[r_1 < k]``; AP = ``mean_t t / (r_t + 1)`` (non-interpolated);
  INP = ``m / (r_m + 1)`` (fast-reid's mINP); RR = ``1 / (r_1 + 1)`` (MRR is its
  mean); trapezoidal AP (official Market-1501 MATLAB code) =
  ``mean_t (p(r_t - 1) + p(r_t)) / 2`` with ``p(-1) = 1``.

The work is chunked over queries and never orders the whole gallery: only the position
of each match among the valid items is computed (see ``_match_rank``). Peak memory is
``O(chunk_size * G)``; from features the ``(Q, G)`` matrix never exists whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ._eval_inputs import (
    as_dist_tensor,
    check_finite_distances,
    check_int,
    labels,
    matrix_blocks,
    to_numpy_block,
)
from ._match_rank import match_ranks, single_shot_ranks
from ._pairs import (
    CAMERA_RULES,
    UNKNOWN_CAMERA,
    Groups,
    camera_rule,
    camera_rule_note,
    check_cameras,
    gallery_pairs,
    query_self_index,
)
from .blocks import DistanceBlocks
from .distance import prepared_blocks

__all__ = [
    "AP_MODES",
    "CAMERA_RULES",
    "PROTOCOLS",
    "UNKNOWN_CAMERA",
    "ReIDMetrics",
    "evaluate_cmc_map",
]

PROTOCOLS: tuple[str, ...] = ("market1501", "cuhk03")
AP_MODES: tuple[str, ...] = ("standard", "trapezoid")
_BLOCK_ELEMS = 1 << 22  # default chunk: about 4M distances (16 MB in float32) per block


@dataclass(frozen=True)
class ReIDMetrics:
    """Result of :func:`evaluate_cmc_map`. Scores are fractions in ``[0, 1]``.

    Attributes:
        cmc: ``(max_rank,)`` float64 cumulative match characteristic; ``cmc[k - 1]`` is
            the rank-k accuracy.
        mAP: mean average precision over the valid queries (``ap_mode`` variant).
        mINP: mean inverse negative penalty over the valid queries.
        num_valid_queries: queries with at least one true match (those averaged).
        num_queries: all queries given.
        protocol: ``"market1501"`` or ``"cuhk03"``.
        ap_mode: ``"standard"`` or ``"trapezoid"``.
        cameras: the camera rule that ran: ``"known"`` (same-identity gallery images
            from the query's camera removed), ``"unknown"`` (no usable camera ids: only
            the query image itself removed) or ``"mixed"``; :attr:`protocol_note` says
            it in words.
        mrr: mean reciprocal rank ``1 / (r_1 + 1)`` of the first true match over the
            valid queries (same junk rule as the CMC; for ``"cuhk03"`` on the full valid
            gallery, like mAP). NaN only in a ``ReIDMetrics`` built by hand without it.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int
    protocol: str = "market1501"
    ap_mode: str = "standard"
    mrr: float = float("nan")
    cameras: str = "known"
    _ks: tuple[int, ...] = field(default=(1, 5, 10, 20), repr=False)

    @property
    def protocol_note(self) -> str:
        """One line naming the protocol and the camera rule that ran."""
        return camera_rule_note(self.protocol, self.cameras)

    def rank(self, k: int) -> float:
        """Rank-k accuracy (``k`` is 1-based: ``rank(1)`` is the rank-1 accuracy)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"k must be an int, got {type(k).__name__}")
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"k must be in [1, {len(self.cmc)}] (max_rank), got {k}")
        return float(self.cmc[k - 1])

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary: mAP, mINP, MRR, rank-1/5/10/20 (when within
        max_rank), query counts, protocol, AP mode and the full CMC as a list."""
        out: dict[str, Any] = {"mAP": self.mAP, "mINP": self.mINP, "mrr": self.mrr}
        for k in self._ks:
            if k <= len(self.cmc):
                out[f"rank{k}"] = self.rank(k)
        out.update(
            num_valid_queries=self.num_valid_queries,
            num_queries=self.num_queries,
            protocol=self.protocol,
            ap_mode=self.ap_mode,
            cameras=self.cameras,
            cmc=[float(x) for x in self.cmc],
        )
        return out

    def __str__(self) -> str:
        ranks = "  ".join(f"R{k} {100 * self.rank(k):.2f}%" for k in self._ks if k <= len(self.cmc))
        ap = "mAP" if self.ap_mode == "standard" else "mAP (trapezoid)"
        return (
            f"{self.protocol}: {ap} {100 * self.mAP:.2f}%  mINP {100 * self.mINP:.2f}%  "
            f"MRR {100 * self.mrr:.2f}%  "
            f"{ranks}  ({self.num_valid_queries}/{self.num_queries} queries with a match)"
        )


def evaluate_cmc_map(
    distmat_or_feats: np.ndarray
    | torch.Tensor
    | tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]
    | DistanceBlocks,
    q_pids: Sequence[int] | np.ndarray | torch.Tensor,
    g_pids: Sequence[int] | np.ndarray | torch.Tensor,
    q_camids: Sequence[int] | np.ndarray | torch.Tensor,
    g_camids: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    metric: str = "cosine",
    max_rank: int = 50,
    protocol: str = "market1501",
    ap_mode: str = "standard",
    chunk_size: int | None = None,
    num_repeats: int = 10,
    seed: int = 0,
    junk_pids: Sequence[int] = (),
    query_in_gallery: Sequence[int] | np.ndarray | None = None,
) -> ReIDMetrics:
    """Evaluate retrieval with CMC, mAP and mINP under a re-ID protocol.

    Args:
        distmat_or_feats: a ``(Q, G)`` distance matrix (numpy or torch, smaller is
            closer), or a tuple ``(query_feats (Q, D), gallery_feats (G, D))`` from which
            distances are computed block by block with ``metric``, or a
            :class:`~semparts_reid.metrics.blocks.DistanceBlocks` that yields the
            distances a block of query rows at a time (no ``(Q, G)`` matrix is held).
        q_pids, g_pids: ``(Q,)`` / ``(G,)`` integer identities (gallery distractors such
            as Market's pid 0 are ordinary non-matching identities).
        q_camids, g_camids: ``(Q,)`` / ``(G,)`` integer camera ids, ``-1`` where the
            camera is unknown. A gallery image of the query's pid is junk when both
            camera ids are known and equal; an unknown camera never counts as the same
            camera (``ReIDMetrics.cameras`` / ``protocol_note`` report which rule ran).
        metric: ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"``; features path only.
        max_rank: length of the CMC curve. Positions past the number of valid gallery
            items are allowed: the curve is cumulative, so it stays at its last value
            (1.0, every valid query has a match by then).
        protocol: ``"market1501"`` (all valid gallery items) or ``"cuhk03"``
            (single-gallery-shot CMC: one random image per gallery identity, averaged
            over ``num_repeats`` seeded draws; mAP and mINP use the full valid gallery).
        ap_mode: ``"standard"`` (non-interpolated AP, torchreid/fast-reid) or
            ``"trapezoid"`` (official Market-1501 MATLAB code / ECN evaluator).
        chunk_size: query rows per block; ``None`` picks about 4M distances per block
            (16M from features).
            Peak extra memory is ``O(chunk_size * G)``.
        num_repeats, seed: draws of the ``cuhk03`` protocol (ignored otherwise). Draws
            are a counter-based hash of ``(seed, repeat, query, identity)``, so results do
            not depend on ``chunk_size``.
        junk_pids: gallery pids removed for every query (e.g. ``(-1,)`` to reproduce the
            official Market-1501 script on a gallery that still holds junk images).
        query_in_gallery: ``(Q,)`` gallery index of each query's own image, ``-1``
            where it is not in the gallery; that item is removed from the query's
            gallery under every camera rule (its pid must be the query's).
            :func:`~semparts_reid.inference.evaluate_model` passes it from the image
            paths. Without it, with unknown cameras, an image that is both a query and a
            gallery item would be its own true match at distance 0.

    Tensors on an accelerator are fine: distances from features are computed on their
    device and each block is ranked on the CPU (one ``(chunk_size, G)`` block at a time).

    Returns:
        :class:`ReIDMetrics`.

    Raises:
        ValueError: wrong ndim or mismatched lengths, NaN/inf distances or features, an
            empty gallery or query set, no query with a valid match, a camera id below
            ``-1``, a bad ``query_in_gallery``, bad options.
        TypeError: non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> dist = np.array([[0.1, 0.5, 0.3], [0.9, 0.2, 0.4]])
        >>> m = evaluate_cmc_map(dist, [1, 2], [1, 2, 1], [0, 0], [1, 1, 1], max_rank=3)
        >>> m.rank(1), round(m.mAP, 4), m.num_valid_queries
        (1.0, 1.0, 2)
    """
    max_rank, num_repeats, seed, chunk_size = _checked_options(
        protocol, ap_mode, max_rank, num_repeats, seed, chunk_size
    )
    inputs = _distance_inputs(distmat_or_feats)
    num_q, num_g = inputs.num_q, inputs.num_g

    qp = labels("q_pids", q_pids, num_q, "query")
    gp = labels("g_pids", g_pids, num_g, "gallery")
    qc = labels("q_camids", q_camids, num_q, "query")
    gc = labels("g_camids", g_camids, num_g, "gallery")
    check_cameras("q_camids", qc)
    check_cameras("g_camids", gc)
    q_self = query_self_index(query_in_gallery, qp, gp)

    gp, gc, q_self, keep_np = _drop_junk_pids(gp, gc, q_self, junk_pids, num_g)
    g_eff = len(gp)
    if chunk_size is None:  # larger blocks from features: the matmul runs faster on them
        chunk_size = max(1, (_BLOCK_ELEMS * (4 if inputs.feats is not None else 1)) // g_eff)
    blocks = _numpy_blocks(inputs, metric, chunk_size, keep_np)

    q_idx, g_idx, is_match, own_group, groups = gallery_pairs(qp, qc, gp, gc, q_self)
    mq, mg = q_idx[is_match], g_idx[is_match]
    jq, jg = q_idx[~is_match], g_idx[~is_match]
    n_match = np.bincount(mq, minlength=num_q)
    num_valid = int((n_match > 0).sum())
    if num_valid == 0:
        raise InputError(
            f"no valid query: none of the {num_q} queries has a gallery item with the same "
            "pid in another camera (or, where a camera id is -1 = unknown, other than the "
            "query image itself); check q_pids/g_pids and q_camids/g_camids"
        )
    ss_ranks = np.empty((num_valid, num_repeats), dtype=np.int64) if protocol == "cuhk03" else None
    ranks = _rank_blocks(
        blocks, (mq, mg, jq, jg), n_match, (own_group, groups, num_repeats, seed), ss_ranks, inputs
    )
    result = _aggregate(mq, ranks, n_match, num_q, ss_ranks, max_rank, protocol, ap_mode)
    return replace(result, cameras=camera_rule(qc, gc))


def _checked_options(
    protocol: str,
    ap_mode: str,
    max_rank: int,
    num_repeats: int,
    seed: int,
    chunk_size: int | None,
) -> tuple[int, int, int, int | None]:
    """The options of :func:`evaluate_cmc_map`, checked: ``(max_rank, num_repeats, seed,
    chunk_size)``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if ap_mode not in AP_MODES:
        raise ValueError(f"ap_mode must be one of {AP_MODES}, got {ap_mode!r}")
    max_rank = check_int("max_rank", max_rank, 1)
    num_repeats = check_int("num_repeats", num_repeats, 1)
    seed = check_int("seed", seed, 0)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size, 1)
    return max_rank, num_repeats, seed, chunk_size


@dataclass(frozen=True)
class _DistanceInputs:
    """What :func:`evaluate_cmc_map` was given, checked: exactly one of ``streamed``
    (distance blocks), ``feats`` (query and gallery features) and ``dist`` (a matrix)
    is set; ``source`` names it in error messages."""

    num_q: int
    num_g: int
    source: str
    streamed: DistanceBlocks | None = None
    feats: tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor] | None = None
    dist: torch.Tensor | None = None


def _distance_inputs(distmat_or_feats: object) -> _DistanceInputs:
    """Check the distances (or features) argument and say what it is and its shape."""
    if isinstance(distmat_or_feats, DistanceBlocks):
        num_q, num_g = distmat_or_feats.shape
        inputs = _DistanceInputs(
            num_q, num_g, f"distance blocks {distmat_or_feats.shape}", streamed=distmat_or_feats
        )
    elif isinstance(distmat_or_feats, (tuple, list)):
        if len(distmat_or_feats) != 2:
            raise ValueError(
                "distmat_or_feats as a sequence must be (query_feats, gallery_feats), "
                f"got {len(distmat_or_feats)} items"
            )
        qf, gf = distmat_or_feats
        for name, f in (("query_feats", qf), ("gallery_feats", gf)):
            if not isinstance(f, (np.ndarray, torch.Tensor)) or f.ndim != 2:
                raise ValueError(
                    f"{name} must be a 2-D array (N, D), got "
                    f"{type(f).__name__} of shape {tuple(getattr(f, 'shape', ()))}"
                )
        num_q, num_g = int(qf.shape[0]), int(gf.shape[0])
        source = f"distances computed from features ({num_q}, {num_g})"
        inputs = _DistanceInputs(num_q, num_g, source, feats=(qf, gf))
    else:
        if not isinstance(distmat_or_feats, (np.ndarray, torch.Tensor)):
            raise TypeError(
                "distmat_or_feats must be a (Q, G) numpy array / torch tensor or a "
                f"(query_feats, gallery_feats) tuple, got {type(distmat_or_feats).__name__}"
            )
        dist = as_dist_tensor(distmat_or_feats)
        inputs = _DistanceInputs(int(dist.shape[0]), int(dist.shape[1]), "distmat", dist=dist)
    shape_txt = f"({inputs.num_q}, {inputs.num_g})"
    if inputs.num_q == 0:
        raise InputError(f"no queries: distances have shape {shape_txt}, expected Q >= 1")
    if inputs.num_g == 0:
        raise InputError(f"empty gallery: distances have shape {shape_txt}, expected G >= 1")
    return inputs


def _drop_junk_pids(
    gp: np.ndarray,
    gc: np.ndarray,
    q_self: np.ndarray | None,
    junk_pids: Sequence[int],
    num_g: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Remove the gallery items whose pid is in ``junk_pids``.

    Returns the gallery pids and cameras left, ``q_self`` re-indexed into them, and the
    kept gallery columns (``None`` when nothing was removed).
    """
    keep_np: np.ndarray | None = None
    if len(junk_pids):
        keep_mask = ~np.isin(gp, np.asarray(list(junk_pids), dtype=np.int64))
        if not keep_mask.all():
            keep_np = np.flatnonzero(keep_mask)
            if keep_np.size == 0:
                raise InputError(f"empty gallery: all {num_g} gallery pids are in junk_pids")
            gp, gc = gp[keep_np], gc[keep_np]
            if q_self is not None:  # gallery indices after the junk-pid columns are gone
                new_index = np.full(num_g, -1, dtype=np.int64)
                new_index[keep_np] = np.arange(len(keep_np))
                q_self = np.where(q_self >= 0, new_index[q_self], -1)
    return gp, gc, q_self, keep_np


def _numpy_blocks(
    inputs: _DistanceInputs, metric: str, chunk_size: int, keep_np: np.ndarray | None
) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(start, stop, block)`` numpy distance blocks of ``chunk_size`` query rows, over
    the kept gallery columns ``keep_np`` (all where ``None``)."""
    if inputs.streamed is not None:
        cols = keep_np
        return (
            (a, b, to_numpy_block(blk) if cols is None else to_numpy_block(blk)[:, cols])
            for a, b, blk in inputs.streamed.iter(chunk_size)
        )
    if inputs.feats is not None:
        qf, gf = inputs.feats
        if keep_np is not None:
            gf = gf[torch.from_numpy(keep_np)] if isinstance(gf, torch.Tensor) else gf[keep_np]
        _, _, tblocks = prepared_blocks(qf, gf, metric, chunk_size)
        return ((a, b, to_numpy_block(blk)) for a, b, blk in tblocks)
    assert inputs.dist is not None
    return matrix_blocks(inputs.dist, chunk_size, keep_np)


def _rank_blocks(
    blocks: Iterator[tuple[int, int, np.ndarray]],
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_match: np.ndarray,
    single_shot: tuple[np.ndarray, Groups, int, int],
    ss_ranks: np.ndarray | None,
    inputs: _DistanceInputs,
) -> np.ndarray:
    """Position of every true match among its query's valid gallery items, block by block.

    ``pairs`` is ``(mq, mg, jq, jg)``: the query and gallery indices of the true-match
    pairs and of the junk pairs of :func:`~._pairs.gallery_pairs`, grouped by query.
    ``ss_ranks`` (cuhk03 only, ``(V, num_repeats)``) is filled in place with the
    single-shot ranks of ``single_shot = (own_group, groups, num_repeats, seed)``. Rows
    of a block are ranked on a thread pool; every block is checked for NaN/inf first.
    """
    mq, mg, jq, jg = pairs
    own_group, groups, num_repeats, seed = single_shot
    num_q, num_g = inputs.num_q, inputs.num_g
    valid = n_match > 0
    ranks = np.empty(len(mq), dtype=np.int64)
    valid_pos = np.cumsum(valid) - 1

    def rank_rows(block: np.ndarray, start: int, lo: int, hi: int) -> None:
        """Fill the outputs for global query rows [lo, hi) held in block[lo - start:]."""
        sub = block[lo - start : hi - start]
        ma, mb = np.searchsorted(mq, [lo, hi])
        ja, jb = np.searchsorted(jq, [lo, hi])
        ranks[ma:mb] = match_ranks(sub, mq[ma:mb] - lo, mg[ma:mb], jq[ja:jb] - lo, jg[ja:jb])
        if ss_ranks is not None:
            rows = np.flatnonzero(valid[lo:hi])
            if rows.size:
                m_first = np.searchsorted(mq, lo + rows) - ma
                ss_ranks[valid_pos[lo + rows]] = single_shot_ranks(
                    sub[rows], lo + rows, (m_first, mg[ma:mb]), own_group[lo + rows],
                    groups, num_repeats, seed,
                )  # fmt: skip

    n_threads = max(1, min(torch.get_num_threads(), os.cpu_count() or 1))
    with ThreadPoolExecutor(n_threads) as pool:
        for start, stop, block in blocks:
            check_finite_distances(block, start, (num_q, num_g), inputs.source)
            cuts = np.linspace(start, stop, min(n_threads, stop - start) + 1).astype(int)
            list(
                pool.map(
                    rank_rows,
                    *zip(*((block, start, lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:]))),
                )
            )
    return ranks


def _aggregate(
    mq: np.ndarray,
    ranks: np.ndarray,
    n_match: np.ndarray,
    num_q: int,
    ss_ranks: np.ndarray | None,
    max_rank: int,
    protocol: str,
    ap_mode: str,
) -> ReIDMetrics:
    """Per-query AP/INP/reciprocal rank/first rank from the match positions, then averages.

    The reciprocal rank uses the first match's position in the full valid gallery, for
    both protocols (the cuhk03 single-shot ranks feed only the CMC).
    """
    order = np.lexsort((ranks, mq))
    q, r = mq[order], ranks[order].astype(np.float64)
    first = np.cumsum(n_match) - n_match  # first pair of each query in `order`
    t = np.arange(1, len(q) + 1, dtype=np.float64) - first[q]  # 1-based match count
    prec = t / (r + 1.0)
    if ap_mode == "trapezoid":
        prev = np.where(r > 0, (t - 1.0) / np.maximum(r, 1.0), 1.0)
        prec = 0.5 * (prev + prec)
    valid = n_match > 0
    m = n_match[valid].astype(np.float64)
    ap = np.bincount(q, weights=prec, minlength=num_q)[valid] / m
    last = r[first[valid] + n_match[valid] - 1]
    inp = m / (last + 1.0)
    rr = 1.0 / (r[first[valid]] + 1.0)  # the first match of each valid query
    if ss_ranks is None:
        hits = r[first[valid]].astype(np.int64)[:, None]  # first-match rank, (V, 1)
    else:
        hits = ss_ranks
    hist = np.bincount(np.minimum(hits, max_rank).ravel(), minlength=max_rank + 1)[:max_rank]
    cmc = np.cumsum(hist) / float(hits.size)
    return ReIDMetrics(
        cmc=cmc,
        mAP=float(ap.mean()),
        mINP=float(inp.mean()),
        num_valid_queries=int(valid.sum()),
        num_queries=num_q,
        protocol=protocol,
        ap_mode=ap_mode,
        mrr=float(rr.mean()),
    )
