"""Ranked gallery lists for a few queries: what ``semparts-reid visrank`` and the demo draw.

:func:`rank_gallery` extracts the features of the chosen queries and of the gallery
through a :class:`~semparts_reid.inference.FeatureExtractor`, computes the distances of
a retrieval mode (``global``, ``concat`` or ``parts``, as in
:func:`~semparts_reid.inference.evaluate_model`) and keeps each query's ``top_k``
gallery items. :func:`top_k_ranked` does the last step on any distance matrix.

The junk rule is the evaluator's (``docs/evaluation.md``): a gallery item with the
query's identity is **junk** when both camera ids are known (``>= 0``) and equal, when
it is the query image itself, or when its pid is in ``junk_pids``; every other item
with the query's identity is a **true match**. Ties are ordered by gallery index, as in
the evaluator, so rank ``n`` here is the position the CMC counts.

Example:
    >>> from semparts_reid.data import build_dataset
    >>> from semparts_reid.inference import load_model_from_checkpoint, rank_gallery
    >>> ds = build_dataset("synthetic:b?size=tiny")  # doctest: +SKIP
    >>> res = rank_gallery(load_model_from_checkpoint("ckpt.pt"), ds.query, ds.gallery,
    ...                    num_queries=8, top_k=10)  # doctest: +SKIP
    >>> res.ranks.shape  # doctest: +SKIP
    (8, 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError
from ._resolve import resolved_extractor
from .evaluation import (
    check_mode,
    distance_matrix,
    extract_split,
    query_gallery_index,
)
from .extractor import FeatureExtractor, PartFeatures

__all__ = ["RankedResults", "pick_queries", "rank_gallery", "top_k_ranked"]


@dataclass
class RankedResults:
    """The top of the ranked gallery list of ``Q`` queries.

    Attributes:
        query_indices: ``(Q,)`` int64 positions of the queries in the query records.
        ranks: ``(Q, k)`` int64 gallery indices, nearest first (ties by gallery index).
        distances: ``(Q, k)`` float distances of those items.
        matches: ``(Q, k)`` bool, a true match (same identity, not junk).
        junk: ``(Q, k)`` bool, a junk item (all ``False`` with ``include_junk=False``).
    """

    query_indices: np.ndarray
    ranks: np.ndarray
    distances: np.ndarray
    matches: np.ndarray
    junk: np.ndarray


def pick_queries(total: int, num_queries: int, *, seed: int | None = None) -> np.ndarray:
    """``min(num_queries, total)`` query positions, ascending: evenly spaced over
    ``[0, total)``, or a seeded random sample when ``seed`` is given.

    Raises:
        InputError: ``total < 1`` or ``num_queries < 1``.
    """
    if total < 1:
        raise InputError("query: no images to pick queries from")
    if isinstance(num_queries, bool) or not isinstance(num_queries, (int, np.integer)) \
            or num_queries < 1:
        raise InputError(f"num_queries={num_queries!r}: expected an int >= 1")
    n = min(int(num_queries), total)
    if seed is not None:
        return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
    return np.unique(np.linspace(0, total - 1, n).round().astype(np.int64))


def _labels(name: str, values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name}: expected ({n},) integers, got shape {arr.shape} and dtype "
                         f"{arr.dtype}")
    return arr.astype(np.int64)


def top_k_ranked(
    dist: np.ndarray | torch.Tensor,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    top_k: int = 10,
    *,
    include_junk: bool = True,
    junk_pids: Sequence[int] = (),
    query_in_gallery: Any = None,
) -> RankedResults:
    """Each query's ``top_k`` gallery items of a ``(Q, G)`` distance matrix.

    Args:
        dist: ``(Q, G)`` finite distances, smaller is closer.
        q_pids, g_pids, q_camids, g_camids: ``(Q,)`` / ``(G,)`` integer labels; camera
            ``-1`` is unknown and never "the same camera".
        top_k: items kept per query (at most what every query has).
        include_junk: keep junk items in the list, flagged in ``junk`` (a figure greys
            them out); ``False`` drops them, as the evaluator does.
        junk_pids: gallery pids that are junk for every query.
        query_in_gallery: optional ``(Q,)`` gallery index of each query's own image
            (``-1``: not in the gallery); that item is junk.

    Returns:
        :class:`RankedResults` with ``query_indices = arange(Q)``.

    Raises:
        InputError: a wrong shape or label, non-finite distances, ``top_k < 1``.
    """
    d = dist.detach().cpu().numpy() if isinstance(dist, torch.Tensor) else np.asarray(dist)
    if d.ndim != 2 or min(d.shape) < 1:
        raise InputError(f"dist: expected a (Q, G) matrix with Q, G >= 1, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise InputError("dist: holds NaN or infinite distances")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise InputError(f"top_k={top_k!r}: expected an int >= 1")
    nq, ng = d.shape
    qp, qc = _labels("q_pids", q_pids, nq), _labels("q_camids", q_camids, nq)
    gp, gc = _labels("g_pids", g_pids, ng), _labels("g_camids", g_camids, ng)
    same = gp[None, :] == qp[:, None]
    junk = same & (qc[:, None] >= 0) & (gc[None, :] == qc[:, None])
    if len(junk_pids):
        junk |= np.isin(gp, np.asarray(list(junk_pids), dtype=np.int64))[None, :]
    if query_in_gallery is not None:
        own = _labels("query_in_gallery", query_in_gallery, nq)
        if own.min() < -1 or own.max() >= ng:
            raise InputError(f"query_in_gallery: indices must lie in [-1, {ng}), got "
                             f"[{own.min()}, {own.max()}]")
        rows = np.flatnonzero(own >= 0)
        junk[rows, own[rows]] = True
    key = d.astype(np.float64)
    if not include_junk:
        key = np.where(junk, np.inf, key)  # after every finite distance
    order = np.argsort(key, axis=1, kind="stable")  # ties by gallery index
    available = ng - (int(junk.sum(1).max()) if not include_junk else 0)
    k = min(int(top_k), available)
    if k < 1:
        raise InputError("every gallery item is junk for some query: nothing to rank")
    ranks = order[:, :k]
    return RankedResults(
        query_indices=np.arange(nq, dtype=np.int64),
        ranks=ranks.astype(np.int64),
        distances=np.take_along_axis(d, ranks, axis=1),
        matches=np.take_along_axis(same & ~junk, ranks, axis=1),
        junk=np.take_along_axis(junk, ranks, axis=1),
    )


def rank_gallery(
    model_or_extractor: nn.Module | FeatureExtractor,
    query: Sequence[Any],
    gallery: Sequence[Any],
    *,
    num_queries: int | None = None,
    query_indices: Sequence[int] | np.ndarray | None = None,
    seed: int | None = None,
    top_k: int = 10,
    mode: str = "global",
    metric: str = "cosine",
    part_weight: float = 0.5,
    include_junk: bool = True,
    junk_pids: Sequence[int] = (),
    gallery_features: PartFeatures[Tensor] | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    batch_size: int = 64,
    num_workers: int | None = None,
    progress: bool | None = None,
) -> RankedResults:
    """Top-``k`` gallery lists of a few queries, from a model or an extractor.

    Args:
        model_or_extractor: a model or a ready :class:`FeatureExtractor` (as for
            :func:`~semparts_reid.inference.evaluate_model`); a model's train mode is
            restored afterwards.
        query, gallery: ``(path, pid, camid)`` records (``ImageRecord``).
        num_queries: how many queries to pick with :func:`pick_queries` (evenly spaced,
            or seeded by ``seed``); default all. Only those are extracted.
        query_indices: the query positions to use instead (in this order).
        top_k, include_junk, junk_pids: see :func:`top_k_ranked`; a query's own image
            among the gallery (the same file, :func:`query_gallery_index`) is junk.
        mode, metric, part_weight: the retrieval distance, as in ``evaluate_model``.
        gallery_features: features of ``gallery`` already extracted (with parts for
            ``concat`` / ``parts``), to skip extracting them again.
        device, precision, batch_size, num_workers, progress: how to build the
            extractor for a model.

    Returns:
        :class:`RankedResults`; ``query_indices`` are positions in ``query``.

    Raises:
        InputError: empty records, a bad index, mode, metric or ``top_k``.
    """
    check_mode(mode, metric)  # before any extraction
    if query_indices is not None:
        picks = np.asarray(query_indices, dtype=np.int64).reshape(-1)
        if picks.size == 0 or picks.min() < 0 or picks.max() >= len(query):
            raise InputError(f"query_indices: expected positions in [0, {len(query)}), got "
                             f"{picks.tolist()[:8]}")
    else:
        picks = pick_queries(len(query), num_queries or len(query), seed=seed)
    if gallery_features is not None and len(gallery_features) != len(gallery):
        raise InputError(f"gallery_features: {len(gallery_features)} rows for "
                         f"{len(gallery)} gallery records")
    chosen = [query[int(i)] for i in picks]
    parts = mode != "global"
    with resolved_extractor(model_or_extractor, device=device, precision=precision,
                            batch_size=batch_size, num_workers=num_workers,
                            progress=progress) as extractor:
        qf = extract_split(extractor, chosen, parts=parts, split="query")
        gf = (gallery_features if gallery_features is not None
              else extract_split(extractor, gallery, parts=parts, split="gallery"))
    dist = distance_matrix(qf, gf, mode, metric, part_weight=part_weight)
    own = query_gallery_index([str(r[0]) for r in chosen], [str(r[0]) for r in gallery])
    (q_pids, q_camids), (g_pids, g_camids) = qf.labels("query"), gf.labels("gallery")
    res = top_k_ranked(dist, q_pids, g_pids, q_camids, g_camids, top_k,
                       include_junk=include_junk, junk_pids=junk_pids, query_in_gallery=own)
    res.query_indices = picks
    return res
