"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017).

For the ``N = Q + G`` query and gallery items, with ``D`` the ``(N, N)`` distance matrix:

1. ``D`` is squared and each row divided by its maximum (the convention of the
   authors' released code, for which ``lambda_value = 0.3`` was tuned).
2. ``N(p, k)``: the ``k + 1`` nearest items of ``p`` (``p`` included; ties by index).
   ``R(p, k) = {g in N(p, k) : p in N(g, k)}`` (k-reciprocal neighbours).
3. ``R*(p)``: ``R(p, k1)`` plus, for each ``c`` in it, ``R(c, round(k1 / 2))`` when more
   than 2/3 of that set already lies in ``R(p, k1)``.
4. ``V[p, g] = exp(-D[p, g]) / sum_{g' in R*(p)} exp(-D[p, g'])`` on ``R*(p)``, else 0.
5. Local query expansion: ``V[p] <- mean of V[n] over the k2 nearest n of p``.
6. Jaccard distance ``d_J(p, g) = 1 - sum min(V_p, V_g) / sum max(V_p, V_g)``.
7. Result: ``(1 - lambda_value) * d_J + lambda_value * D`` for query x gallery pairs.

Memory: the method is ``O((Q + G)^2)`` by nature (the neighbourhoods are computed among
queries *and* gallery). Peak is about ``12 * (Q + G)^2`` bytes (three dense float32
``(N, N)`` arrays); above ``max_n`` items :func:`re_ranking` raises rather than
exhausting memory: raise the limit knowingly, or re-rank a shortlist.
"""

from __future__ import annotations

import numpy as np
import torch

from .distance import compute_distance

__all__ = ["re_ranking", "re_ranking_from_features"]

DEFAULT_MAX_N = 16384  # (Q + G) limit: ~3.2 GB peak


def _np(name: str, x: object) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} of shape {x.shape} holds NaN/inf; expected finite distances")
    return x


def _nearest(dist: np.ndarray, k: int, rows_per_chunk: int = 1024) -> np.ndarray:
    """Indices of the ``k`` smallest entries of each row, ascending, ties by index."""
    t = torch.from_numpy(dist)
    out = np.empty((dist.shape[0], k), dtype=np.int64)
    for a in range(0, dist.shape[0], rows_per_chunk):
        block = t[a : a + rows_per_chunk]
        idx = torch.topk(block, k, dim=1, largest=False, sorted=False).indices
        idx = idx.sort(dim=1).values  # by index, then stable by value
        vals = block.gather(1, idx)
        order = torch.sort(vals, dim=1, stable=True).indices
        out[a : a + rows_per_chunk] = idx.gather(1, order).numpy()
    return out


def _reciprocal(nn: np.ndarray) -> np.ndarray:
    """``(N, k + 1)`` mask: ``nn[p, i]`` is a k-reciprocal neighbour of ``p``."""
    p = np.arange(nn.shape[0])[:, None, None]
    return (nn[nn] == p).any(axis=-1)


def re_ranking(
    q_g_dist: np.ndarray | torch.Tensor,
    q_q_dist: np.ndarray | torch.Tensor,
    g_g_dist: np.ndarray | torch.Tensor,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    max_n: int = DEFAULT_MAX_N,
    chunk_size: int = 256,
) -> np.ndarray | torch.Tensor:
    """Re-rank query-gallery distances with k-reciprocal encoding.

    Args:
        q_g_dist: ``(Q, G)`` query-gallery distances (smaller is closer).
        q_q_dist: ``(Q, Q)`` query-query distances.
        g_g_dist: ``(G, G)`` gallery-gallery distances.
        k1: neighbourhood size of the k-reciprocal sets (``1 <= k1 < Q + G``).
        k2: local query-expansion size (``1 <= k2 <= k1 + 1``; 1 disables it).
        lambda_value: weight of the original distance, in ``[0, 1]``.
        max_n: refuse ``Q + G > max_n`` (memory is ``~12 (Q + G)^2`` bytes).
        chunk_size: rows processed at a time in the vectorised steps.

    Returns:
        ``(Q, G)`` re-ranked distances, float32; a torch tensor if ``q_g_dist`` is one.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> q, g = rng.normal(size=(4, 8)), rng.normal(size=(30, 8))
        >>> d = lambda a, b: ((a[:, None] - b[None]) ** 2).sum(-1) ** 0.5
        >>> re_ranking(d(q, g), d(q, q), d(g, g), k1=5, k2=3).shape
        (4, 30)
    """
    as_torch = isinstance(q_g_dist, torch.Tensor)
    qg, qq, gg = _np("q_g_dist", q_g_dist), _np("q_q_dist", q_q_dist), _np("g_g_dist", g_g_dist)
    nq, ng = qg.shape
    if qq.shape != (nq, nq):
        raise ValueError(f"q_q_dist must have shape ({nq}, {nq}) for {nq} queries, got {qq.shape}")
    if gg.shape != (ng, ng):
        raise ValueError(f"g_g_dist must have shape ({ng}, {ng}) for {ng} gallery, got {gg.shape}")
    n = nq + ng
    if nq == 0 or ng == 0:
        raise ValueError(f"q_g_dist must have Q >= 1 and G >= 1, got shape {qg.shape}")
    if n > max_n:
        raise ValueError(
            f"re-ranking {nq} queries + {ng} gallery = {n} items needs ~{12 * n * n / 2**30:.1f} "
            f"GiB (O((Q+G)^2)); this exceeds max_n={max_n}. Raise max_n knowingly or re-rank "
            "a shortlist of the gallery."
        )
    for name, val, lo, hi in (("k1", k1, 1, n - 1), ("k2", k2, 1, k1 + 1)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or not lo <= val <= hi:
            raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {val!r}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value!r}")

    dist = np.empty((n, n), dtype=np.float32)
    dist[:nq, :nq], dist[:nq, nq:], dist[nq:, :nq], dist[nq:, nq:] = qq, qg, qg.T, gg
    np.square(dist, out=dist)
    row_max = dist.max(axis=1, keepdims=True)
    dist /= np.where(row_max > 0, row_max, 1.0)

    k1h = int(np.around(k1 / 2.0))
    nn = _nearest(dist, max(k1 + 1, k2))
    fwd, half = nn[:, : k1 + 1], nn[:, : k1h + 1]
    rec, rec_h = _reciprocal(fwd), _reciprocal(half)

    v = np.zeros((n, n), dtype=np.float32)
    for a in range(0, n, chunk_size):
        rows = np.arange(a, min(a + chunk_size, n))
        c = len(rows)
        f, r = fwd[rows], rec[rows]  # (c, k1+1)
        cand_set = half[f]  # (c, k1+1, k1h+1): half-neighbourhood of each candidate
        cand_ok = rec_h[f]
        in_r = ((cand_set[..., None] == f[:, None, None, :]) & r[:, None, None, :]).any(-1)
        n_half = cand_ok.sum(-1)
        qualify = r & ((in_r & cand_ok).sum(-1) > 2.0 / 3.0 * n_half)
        member = np.zeros((c, n), dtype=bool)
        ri = np.repeat(np.arange(c)[:, None], f.shape[1], axis=1)
        member[ri[r], f[r]] = True
        take = qualify[..., None] & cand_ok
        ri3 = np.broadcast_to(np.arange(c)[:, None, None], cand_set.shape)
        member[ri3[take], cand_set[take]] = True
        w = np.where(member, np.exp(-dist[rows]), 0.0)
        v[rows] = w / w.sum(axis=1, keepdims=True)

    if k2 > 1:
        v_qe = np.empty_like(v)
        for a in range(0, n, chunk_size):
            v_qe[a : a + chunk_size] = v[nn[a : a + chunk_size, :k2]].mean(axis=1)
        v = v_qe

    jaccard = _jaccard(v[:nq], v[nq:], chunk_size)
    final = (1.0 - lambda_value) * jaccard + lambda_value * dist[:nq, nq:]
    final = final.astype(np.float32)
    return torch.from_numpy(final) if as_torch else final


def _jaccard(vq: np.ndarray, vg: np.ndarray, chunk_size: int) -> np.ndarray:
    """``1 - sum min / sum max`` between rows of ``vq (Q, N)`` and ``vg (G, N)``.

    Rows sum to 1, so ``sum max = 2 - sum min``. ``sum min`` is accumulated only over
    the columns where both rows are non-zero (an inverted index of ``vg``'s columns).
    """
    nq, ng = vq.shape[0], vg.shape[0]
    col, grow = np.nonzero(vg.T)  # gallery rows of each column, grouped by column
    col_ptr = np.searchsorted(col, np.arange(vg.shape[1] + 1))
    out = np.empty((nq, ng), dtype=np.float64)
    for a in range(0, nq, chunk_size):
        qi, j = np.nonzero(vq[a : a + chunk_size])
        cnt = col_ptr[j + 1] - col_ptr[j]
        rep = np.repeat(np.arange(len(j)), cnt)
        pos = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        g = grow[col_ptr[j][rep] + pos]
        jj = j[rep]
        vals = np.minimum(vq[a + qi[rep], jj], vg[g, jj])
        c = min(chunk_size, nq - a)
        s = np.bincount(qi[rep] * ng + g, weights=vals, minlength=c * ng).reshape(c, ng)
        out[a : a + c] = 1.0 - s / (2.0 - s)
    return out


def re_ranking_from_features(
    query: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    metric: str = "euclidean",
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    max_n: int = DEFAULT_MAX_N,
) -> np.ndarray | torch.Tensor:
    """:func:`re_ranking` from ``(Q, D)`` query and ``(G, D)`` gallery features.

    The three distance matrices are computed with
    :func:`~semparts_reid.metrics.distance.compute_distance` and ``metric``; the
    result's type follows the inputs (torch if either is a tensor).
    """
    nq, ng = int(query.shape[0]), int(gallery.shape[0])
    if nq + ng > max_n:  # fail before allocating the (G, G) matrix
        raise ValueError(
            f"re-ranking {nq} + {ng} = {nq + ng} items exceeds max_n={max_n} "
            "(memory is O((Q+G)^2)); raise max_n knowingly or re-rank a shortlist"
        )
    qg = compute_distance(query, gallery, metric)
    qq = compute_distance(query, query, metric)
    gg = compute_distance(gallery, gallery, metric)
    return re_ranking(qg, qq, gg, k1, k2, lambda_value, max_n=max_n)
