"""Slow, obviously-correct per-query reference evaluators used by the tests and benchmark.

Written from the protocol descriptions (Zheng et al. 2015 for Market-1501, the
official MATLAB ``compute_AP`` loop for the trapezoidal AP, Ye et al. 2021 for mINP,
Li et al. 2014 for CUHK03 single-gallery-shot): one query at a time, a stable argsort
of the valid gallery, explicit loops over the ranked list.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def per_query_reference(
    dist: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    max_rank: int = 50,
    ap_mode: str = "standard",
    junk_pids: tuple[int, ...] = (),
    single_shot: Callable[[int, np.ndarray, np.ndarray], list[np.ndarray]] | None = None,
) -> dict[str, object]:
    """Returns ``{"cmc", "mAP", "mINP", "mrr", "num_valid"}``.

    ``single_shot(query_index, valid_cols_sorted, valid_pids_sorted)``, when given,
    returns one boolean keep-mask over the sorted valid list per repeat (one image per
    identity); CMC is then averaged over those masks (CUHK03 protocol). The reciprocal
    rank of the first match is always taken in the full valid list.
    """
    cmcs, aps, inps, rrs = [], [], [], []
    for i in range(dist.shape[0]):
        invalid = (g_pids == q_pids[i]) & (g_cams == q_cams[i])
        invalid |= np.isin(g_pids, list(junk_pids))
        cols = np.flatnonzero(~invalid)
        order = cols[np.argsort(dist[i, cols], kind="stable")]
        good = g_pids[order] == q_pids[i]
        if not good.any():
            continue
        # CMC
        if single_shot is None:
            first = int(np.flatnonzero(good)[0])
            cmc = np.zeros(max_rank)
            cmc[min(first, max_rank) :] = 1.0
        else:
            cmc = np.zeros(max_rank)
            masks = single_shot(i, order, g_pids[order])
            for keep in masks:
                sub = good[keep]
                first = int(np.flatnonzero(sub)[0])
                one = np.zeros(max_rank)
                one[min(first, max_rank) :] = 1.0
                cmc += one
            cmc /= len(masks)
        cmcs.append(cmc)
        # AP, as a loop over the ranked list
        n_good = int(good.sum())
        hits, ap = 0, 0.0
        old_recall, old_precision = 0.0, 1.0
        for n, g in enumerate(good):
            if g:
                hits += 1
            precision = hits / (n + 1)
            if ap_mode == "standard":
                if g:
                    ap += precision / n_good
            else:  # official Market-1501 compute_AP.m
                recall = hits / n_good
                ap += (recall - old_recall) * (old_precision + precision) / 2
                old_recall, old_precision = recall, precision
            if hits == n_good:
                break
        aps.append(ap)
        hardest = int(np.flatnonzero(good)[-1])
        inps.append(n_good / (hardest + 1))
        # reciprocal rank: walk the ranked list to the first true match
        for n, g in enumerate(good):
            if g:
                rrs.append(1.0 / (n + 1))
                break
    return {
        "cmc": np.mean(cmcs, axis=0) if cmcs else None,
        "mAP": float(np.mean(aps)) if aps else None,
        "mINP": float(np.mean(inps)) if inps else None,
        "mrr": float(np.mean(rrs)) if rrs else None,
        "num_valid": len(aps),
    }
