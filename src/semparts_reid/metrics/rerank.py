"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), for any number of queries and gallery items.

For the ``N = Q + G`` query and gallery items, with ``D = [[qq, qg], [qg^T, gg]]``:

1. ``M[i, j] = D[j, i]^2 / max_l D[l, i]^2`` in float32: squared, divided by the
   maximum of its column, transposed -- exactly torchreid 0.2.5's
   ``torchreid.reid.utils.rerank.re_ranking`` (for a symmetric ``D``: row ``i`` over its
   maximum), for which ``lambda_value = 0.3`` was tuned.
2. The sparse k-reciprocal encoding ``V`` on ``M`` (:mod:`~semparts_reid.metrics.kreciprocal`,
   steps 1-5: neighbours ordered by ``(M, index)``, ``R*``, ``exp(-M)`` weights, query
   expansion with ``k2``).
3. The Jaccard distance ``d_J`` on query x gallery pairs only.
4. Result: ``(1 - lambda_value) * d_J + lambda_value * M`` on query x gallery, float32.

It equals torchreid's ``re_ranking`` (to ~1e-7 on random inputs; where exact distance
ties straddle a neighbourhood's edge, torchreid's unstable ``argsort`` picks an arbitrary
one and this picks the smaller index).

Memory: no ``(N, N)`` array. Neighbours come from an exact tiled search
(:mod:`.knn`), ``V`` has ``O(N k)`` non-zeros and the Jaccard distance is accumulated a
block of queries at a time into the ``(Q, G)`` result. :func:`re_ranking_from_features`
never builds a gallery x gallery matrix either: at Market-1501 scale (3,368 x 15,913,
dim 2048) it needs little more than the ``(Q, G)`` float32 result (~214 MB).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import InputError
from . import knn
from ._tiles import np_of
from .kreciprocal import candidate_lookup, check_k, encode, sum_min_chunks

__all__ = ["re_ranking", "re_ranking_from_features"]

DEFAULT_MAX_N: int | None = None  # no limit: memory is O(N k + Q G), not O(N^2)


def _np(name: str, x: object) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = (x if x.dtype in (torch.float32, torch.float64) else x.float()).numpy()
    if not isinstance(x, np.ndarray):
        raise InputError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise InputError(f"{name} must be 2-D, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64 if np.issubdtype(x.dtype, np.integer) else np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{name} of shape {x.shape} holds NaN/inf; expected finite distances")
    return x


def _check(nq: int, ng: int, k1: int, k2: int, lambda_value: float, max_n: int | None
           ) -> tuple[int, int]:
    n = nq + ng
    if nq == 0 or ng == 0:
        raise InputError(f"re-ranking needs Q >= 1 queries and G >= 1 gallery, got {nq} x {ng}")
    if max_n is not None and n > max_n:
        raise InputError(f"re-ranking {nq} queries + {ng} gallery = {n} items exceeds "
                         f"max_n={max_n} (a limit you set; the default is none)")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise InputError(f"lambda_value must be in [0, 1], got {lambda_value!r}")
    return check_k(k1, k2, n)


def _sq32(x: np.ndarray) -> np.ndarray:
    """``x ** 2`` in ``x``'s precision, then float32 (torchreid's ``power().astype``)."""
    return np.square(x).astype(np.float32, copy=False)


def _rerank(
    prov: knn.Provider,
    nq: int,
    k1: int,
    k2: int,
    lambda_value: float,
    qg_squared: Callable[[np.ndarray], None] | None,
) -> np.ndarray:
    """The algorithm of the module docstring on a tile provider; ``(Q, G)`` float32.

    ``qg_squared(out)`` fills ``out`` with ``float32(qg ** 2)``; ``None``: the provider's
    tiles do it during the search (features).
    """
    n, ng = prov.n, prov.n - nq
    out = np.empty((nq, ng), dtype=np.float32)

    def store(rows: tuple[int, int], cols: tuple[int, int], t: torch.Tensor) -> None:
        if rows[0] < nq <= cols[0]:  # a query x gallery tile
            x, dst = np_of(t), out[rows[0] : rows[1], cols[0] - nq : cols[1] - nq]
            if x.dtype == np.float32:
                np.square(x, out=dst)
            else:
                dst[...] = _sq32(x)

    k = max(k1 + 1, k2)
    val, idx, row_max = knn.search(prov, min(n, 2 * k), on_tile=None if qg_squared else store)
    max_sq = _sq32(row_max)
    max_sq[max_sq == 0] = 1.0  # an all-zero row stays as it is

    def transform(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        m = max_sq[rows]
        return _sq32(x) / (m[:, None] if x.ndim == 2 else m)

    nn, tv = knn.order(prov, val, idx, k, transform)
    lookup = candidate_lookup(nn, tv, lambda p, j: transform(prov.pairs(p, j), p))
    v = encode(nn[:, :k], k1, k2, lookup)
    if qg_squared is not None:
        qg_squared(out)
    out /= max_sq[:nq, None]  # M on query x gallery
    # (1 - lam) d_J + lam M, in float32 as torchreid: d_J = 1 except on overlapping pairs
    lam, keep = np.float32(lambda_value), np.float32(1.0 - lambda_value)
    cols = v[nq:].T.tocsr()  # (N, G): the gallery items of each column
    for a, b, rr, g, mins in sum_min_chunks(v[:nq], cols, cells=1 << 22):
        key = rr * ng + g  # duplicates: one per shared column; all get the pair's sum
        s = np.bincount(key, weights=mins, minlength=(b - a) * ng)[key]
        jac = (1.0 - s / (2.0 - s)).astype(np.float32)
        block = out[a:b]
        block *= lam
        m_lam = block[rr, g]
        block += keep
        block[rr, g] = jac * keep + m_lam
    return out


def re_ranking(
    q_g_dist: np.ndarray | torch.Tensor,
    q_q_dist: np.ndarray | torch.Tensor,
    g_g_dist: np.ndarray | torch.Tensor,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    max_n: int | None = DEFAULT_MAX_N,
    chunk_size: int = 1024,
) -> np.ndarray | torch.Tensor:
    """Re-rank query-gallery distances with k-reciprocal encoding (module docstring).

    Args:
        q_g_dist: ``(Q, G)`` query-gallery distances (smaller is closer).
        q_q_dist: ``(Q, Q)`` query-query distances.
        g_g_dist: ``(G, G)`` gallery-gallery distances. The three are read in place
            (float32 or float64 kept), never concatenated.
        k1: neighbourhood size of the k-reciprocal sets (``1 <= k1 < Q + G``).
        k2: local query-expansion size (``1 <= k2 <= k1 + 1``; 1 disables it).
        lambda_value: weight of the original distance, in ``[0, 1]``.
        max_n: optional limit on ``Q + G`` (``None``: none; memory is not ``O(N^2)``).
        chunk_size: items per row block of the neighbour search.

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
        raise InputError(f"q_q_dist must have shape ({nq}, {nq}) for {nq} queries, got {qq.shape}")
    if gg.shape != (ng, ng):
        raise InputError(f"g_g_dist must have shape ({ng}, {ng}) for {ng} gallery, got {gg.shape}")
    k1, k2 = _check(nq, ng, k1, k2, lambda_value, max_n)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InputError(f"chunk_size must be a positive int, got {chunk_size!r}")
    dt = np.result_type(qg, qq, gg)
    qg, qq, gg = (x.astype(dt, copy=False) for x in (qg, qq, gg))

    def qg_squared(out: np.ndarray) -> None:
        for a in range(0, nq, chunk_size):
            out[a : a + chunk_size] = np.square(qg[a : a + chunk_size]).astype(np.float32)

    prov = knn.MatrixTiles(qg, qq, gg, block=chunk_size)
    final = _rerank(prov, nq, k1, k2, lambda_value, qg_squared)
    return torch.from_numpy(final) if as_torch else final


def re_ranking_from_features(
    query: np.ndarray | torch.Tensor,
    gallery: np.ndarray | torch.Tensor,
    metric: str = "euclidean",
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    max_n: int | None = DEFAULT_MAX_N,
    device: str | torch.device | None = None,
    block: int = 2048,
) -> np.ndarray | torch.Tensor:
    """:func:`re_ranking` from ``(Q, D)`` query and ``(G, D)`` gallery features.

    The distances are those of
    :func:`~semparts_reid.metrics.distance.compute_distance` with ``metric``, computed
    in ``(block, block)`` tiles (on ``device``: default the features' device) and made
    exactly symmetric (the upper tiles, transposed below); no gallery x gallery matrix is
    held. :func:`~semparts_reid.metrics.knn.dense_matrix` of the same tiles, split into
    ``qg``, ``qq`` and ``gg``, gives :func:`re_ranking` (and torchreid) the identical
    input.

    Returns:
        ``(Q, G)`` float32 on the CPU; a torch tensor if either input is one.
    """
    for name, x in (("query", query), ("gallery", gallery)):
        if not isinstance(x, (np.ndarray, torch.Tensor)) or x.ndim != 2:
            raise InputError(f"{name} must be a (N, D) numpy array or tensor, got "
                             f"{type(x).__name__} of shape {getattr(x, 'shape', None)}")
    nq, ng = int(query.shape[0]), int(gallery.shape[0])
    k1, k2 = _check(nq, ng, k1, k2, lambda_value, max_n)
    prov = knn.FeatureTiles([query, gallery], metric, block=block, device=device,
                             names=["query", "gallery"])
    final = _rerank(prov, nq, k1, k2, lambda_value, None)
    as_torch = isinstance(query, torch.Tensor) or isinstance(gallery, torch.Tensor)
    return torch.from_numpy(final) if as_torch else final
