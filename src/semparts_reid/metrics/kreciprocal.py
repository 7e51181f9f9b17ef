"""Sparse k-reciprocal encoding (Zhong et al., CVPR 2017) and the Jaccard distance on it.

One encoding serves re-ranking (:func:`~semparts_reid.metrics.rerank.re_ranking`) and
clustering (:func:`jaccard_distance`, for DBSCAN). For ``N`` items with a distance ``d``:

1. ``N(p, k)``: the ``k + 1`` nearest items of ``p`` (``p`` itself normally first),
   ordered by ``(d, index)``: ties are broken by the smaller index.
2. ``R(p, k) = {g in N(p, k) : p in N(g, k)}``: the k-reciprocal neighbours.
3. ``R*(p) = R(p, k1)``, plus ``R(c, round(k1 / 2))`` for every ``c`` in ``R(p, k1)`` with
   ``|R(c, round(k1 / 2)) & R(p, k1)| > 2/3 |R(c, round(k1 / 2))|`` (``round``: numpy's,
   half to even; the comparison in float64 as ``n > 2.0 / 3 * m``).
4. ``V[p, g] = exp(-d(p, g)) / sum_{g' in R*(p)} exp(-d(p, g'))`` for ``g in R*(p)``,
   0 elsewhere: each row sums to 1.
5. Local query expansion (``k2 > 1``): ``V[p] <- (1 / k2) sum_{n in N(p, k2 - 1)} V[n]``
   (the ``k2`` nearest, ``p`` included).
6. Jaccard distance ``d_J(p, g) = 1 - sum_j min(V[p, j], V[g, j]) / sum_j max(V[p, j],
   V[g, j])``; as rows sum to 1, ``sum max = 2 - sum min``. Pairs whose encodings share no
   column have ``d_J = 1``.

Clustering (:func:`jaccard_distance`, :func:`k_reciprocal_encoding`, the convention of
cluster-contrast / SpCL): features are L2-normalised and ``d`` is the squared euclidean
distance on them, ``d = ||f_p - f_g||^2 = 2 - 2 cos(f_p, f_g)`` (``metric`` can pick the
cosine or euclidean distance instead; all three rank neighbours alike). One difference
with their code: ``N(p, k)`` has ``k + 1`` items here as in the paper and in re-ranking,
where theirs searches ``k`` (self included).

Re-ranking uses ``d = M``: the distance squared and divided by its maximum over the
item's row (torchreid's convention, see :mod:`~semparts_reid.metrics.rerank`).

Memory: ``V`` is a ``scipy.sparse.csr_matrix`` with at most ``|R*(p)| <= (k1 + 1)
(round(k1 / 2) + 2)`` non-zeros per row before, and ``k2`` times that after, query
expansion: ``O(N k)``. Neighbours come from an exact tiled search (:mod:`.knn`):
``O(b^2 + N k)``. :func:`jaccard_distance` stores only pairs whose encodings overlap.
Nothing of size ``N x N`` is ever allocated, and no Python loop runs over the items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import InputError
from . import knn

__all__ = ["jaccard_distance", "k_reciprocal_encoding"]

Lookup = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``lookup(p, j)``: ``d(p[i], j[i])`` for arrays of item indices."""


def _check_int(name: str, val: object, lo: int, hi: int, n: int) -> int:
    if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or not lo <= val <= hi:
        raise InputError(f"{name} must be an int in [{lo}, {hi}] for {n} items, got {val!r}")
    return int(val)


def check_k(k1: object, k2: object, n: int) -> tuple[int, int]:
    """Validate ``1 <= k1 < n`` and ``1 <= k2 <= k1 + 1`` (errors name the value)."""
    k1 = _check_int("k1", k1, 1, n - 1, n)
    return k1, _check_int("k2", k2, 1, k1 + 1, n)


def _reciprocal(nn: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``(N, k + 1)`` bool: ``nn[p, t]`` is a k-reciprocal neighbour of ``p``."""
    out = np.empty(nn.shape, dtype=bool)
    for a in range(0, nn.shape[0], chunk):
        blk = nn[a : a + chunk]
        out[a : a + chunk] = (nn[blk] == np.arange(a, a + len(blk))[:, None, None]).any(-1)
    return out


def _csr(pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]], shape: tuple[int, int],
         dtype: type = np.float64) -> sp.csr_matrix:
    """Stack ``(counts per row, indices, data)`` row chunks into one CSR matrix."""
    counts = np.concatenate([c for c, _, _ in pieces]) if pieces else np.zeros(0, np.int64)
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    small = shape[1] < 2**31 and indptr[-1] < 2**31
    indices = np.concatenate([i.astype(np.int32 if small else np.int64, copy=False)
                              for _, i, _ in pieces]) if pieces else np.zeros(0, np.int64)
    data = np.concatenate([d.astype(dtype, copy=False) for _, _, d in pieces]) if pieces \
        else np.zeros(0, dtype)
    if small:
        indptr = indptr.astype(np.int32)
    return sp.csr_matrix((data, indices, indptr), shape=shape)


def _unique_sorted(key: np.ndarray) -> np.ndarray:
    """``np.unique`` of int64 keys (sorted), without its extra outputs."""
    key = np.sort(key)
    return key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key


def encode(nn: np.ndarray, k1: int, k2: int, lookup: Lookup, *, chunk: int = 1024
           ) -> sp.csr_matrix:
    """The query-expanded encoding ``V`` (steps 2-5) from exact neighbour lists.

    Args:
        nn: ``(N, K)`` neighbour indices, nearest first, ``K >= max(k1 + 1, k2)``.
        k1, k2: as in the module docstring.
        lookup: ``d(p, j)`` of any pairs (the members of ``R*(p)``).

    Returns:
        ``(N, N)`` float64 CSR matrix, rows summing to 1 (or empty).
    """
    n = nn.shape[0]
    kh = int(np.around(k1 / 2.0))
    nn = nn.astype(np.int32 if n < 2**31 else np.int64, copy=False)
    fwd, half = nn[:, : k1 + 1], nn[:, : kh + 1]
    rec, rec_h = _reciprocal(fwd), _reciprocal(half)
    pieces = []
    for a in range(0, n, chunk):
        f, r = fwd[a : a + chunk], rec[a : a + chunk]
        c = len(f)
        hs, hr = half[f], rec_h[f]  # (c, k1+1, kh+1): R(candidate, kh) of each candidate
        in_r = ((hs[..., None] == f[:, None, None, :]) & r[:, None, None, :]).any(-1)
        n_in, n_half = (in_r & hr).sum(-1), hr.sum(-1)
        take = (r & (n_in > 2.0 / 3 * n_half))[..., None] & hr
        rows = np.concatenate([np.nonzero(r)[0], np.nonzero(take)[0]])
        cols = np.concatenate([f[r], hs[take]])
        key = _unique_sorted(rows.astype(np.int64) * n + cols)  # R*(p) as a set
        p, j = np.divmod(key, n)
        w = np.exp(-lookup(p + a, j).astype(np.float64))
        w /= np.bincount(p, weights=w, minlength=c)[p]
        pieces.append((np.bincount(p, minlength=c), j, w))
    v = _csr(pieces, (n, n))
    if k2 > 1:
        qe = sp.csr_matrix(
            (np.full(n * k2, 1.0 / k2), nn[:, :k2].ravel(), np.arange(0, n * k2 + 1, k2)),
            shape=(n, n),
        )
        v = (qe @ v).tocsr()
    return v


def sum_min_chunks(
    v: sp.csr_matrix, cols: sp.csr_matrix, *, triples: int = 1 << 18, cells: int | None = None
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
    """``sum_j min(v[p, j], cols[j, g])`` for the pairs that share a ``j``, by row chunks.

    Args:
        v: ``(R, N)`` CSR rows (the encodings of the rows).
        cols: ``(N, M)`` CSR: ``cols[j]`` lists the items ``g`` with ``V[g, j] != 0``.
        triples: bound on the ``(p, j, g)`` triples expanded at once (memory).
        cells: also bound ``rows x M`` per chunk (for a dense accumulator).

    Yields:
        ``(start, stop, rows, g, mins)``: one ``(rows[i], g[i], mins[i])`` triple per shared
        column, ``rows`` local to the chunk; the caller sums duplicates.
    """
    per_col = np.diff(cols.indptr)
    nz_rows = np.repeat(np.arange(v.shape[0]), np.diff(v.indptr))
    cost = np.cumsum(np.bincount(nz_rows, weights=per_col[v.indices], minlength=v.shape[0]))
    max_rows = v.shape[0] if cells is None else max(1, cells // max(1, cols.shape[1]))
    a = 0
    while a < v.shape[0]:
        done = cost[a - 1] if a else 0.0
        b = int(np.searchsorted(cost, done + triples, side="right"))
        b = min(max(b, a + 1), a + max_rows, v.shape[0])
        lo, hi = int(v.indptr[a]), int(v.indptr[b])
        js, vs = v.indices[lo:hi], v.data[lo:hi]
        rr = np.repeat(np.arange(b - a), np.diff(v.indptr[a : b + 1]))
        start, cnt = cols.indptr[js].astype(np.int64), per_col[js]
        pos = np.repeat(start - (np.cumsum(cnt) - cnt), cnt) + np.arange(int(cnt.sum()))
        mins = np.minimum(np.repeat(vs, cnt), cols.data[pos])
        yield a, b, np.repeat(rr, cnt), cols.indices[pos], mins
        a = b


def _validated_neighbours(neighbours: object, distances: object, k: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    nb, ds = np.asarray(neighbours), np.asarray(distances, dtype=np.float64)
    if nb.ndim != 2 or not np.issubdtype(nb.dtype, np.integer):
        raise InputError(f"neighbours must be an (N, K) integer array, got {nb.dtype} "
                         f"of shape {nb.shape}")
    n = nb.shape[0]
    if ds.shape != nb.shape:
        raise InputError(f"distances must have the shape of neighbours {nb.shape}, got "
                         f"{ds.shape}")
    if nb.shape[1] < k:
        raise InputError(f"neighbours has K={nb.shape[1]} columns; k1 + 1 and k2 need {k}")
    if n and (nb.min() < 0 or nb.max() >= n):
        raise InputError(f"neighbours must index the {n} items (0..{n - 1}), got values in "
                         f"[{nb.min()}, {nb.max()}]")
    if not np.isfinite(ds).all():
        raise InputError("distances hold NaN/inf; expected finite distances")
    by_idx = np.argsort(nb, axis=1, kind="stable")
    nb, ds = np.take_along_axis(nb, by_idx, 1), np.take_along_axis(ds, by_idx, 1)
    if n and (np.diff(nb, axis=1) == 0).any():
        raise InputError("neighbours repeats an item within a row; expected distinct items")
    by_d = np.argsort(ds, axis=1, kind="stable")  # order (distance, index)
    return np.take_along_axis(nb, by_d, 1).astype(np.int64), np.take_along_axis(ds, by_d, 1)


def candidate_lookup(
    idx: np.ndarray, val: np.ndarray, missing: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> Lookup:
    """``lookup(p, j)`` from per-row candidate lists, ``missing(p, j)`` for the rest."""
    n = idx.shape[0]
    by_idx = np.argsort(idx, axis=1)
    keys = (np.arange(n, dtype=np.int64)[:, None] * n + np.take_along_axis(idx, by_idx, 1))
    keys, vals = keys.ravel(), np.take_along_axis(val, by_idx, 1).ravel()

    def lookup(p: np.ndarray, j: np.ndarray) -> np.ndarray:
        q = p.astype(np.int64) * n + j
        pos = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
        found = keys[pos] == q
        out = np.where(found, vals[pos], 0.0)
        if not found.all():
            out[~found] = missing(p[~found], j[~found])
        return out

    return lookup


def k_reciprocal_encoding(
    features: np.ndarray | torch.Tensor | None = None,
    k1: int = 30,
    k2: int = 6,
    *,
    neighbours: np.ndarray | None = None,
    distances: np.ndarray | None = None,
    metric: str = "sqeuclidean",
    normalize: bool = True,
    device: str | torch.device | None = None,
    backend: str = "torch",
    block: int = 2048,
) -> sp.csr_matrix:
    """The sparse, query-expanded k-reciprocal encoding ``V`` (module docstring, 1-5).

    Args:
        features: ``(N, D)`` features (numpy or torch, any device); or ``None`` when
            ``neighbours`` are given.
        k1: size of the k-reciprocal neighbourhoods, ``1 <= k1 < N``.
        k2: query-expansion size, ``1 <= k2 <= k1 + 1`` (1: none).
        neighbours: ``(N, K)`` precomputed neighbour indices (``K >= max(k1 + 1, k2)``,
            each row holding the item itself), with ``distances (N, K)``: the ``d`` of
            the weights (e.g. ``2 - 2 cos``). Rows are re-ordered by ``(distance,
            index)``. A pair ``(p, j)`` of ``R*(p)`` absent from row ``p`` takes its
            distance from ``features`` when given, else from row ``j``; lists of
            ~``2 (k1 + 1)`` rarely miss any.
        metric: ``"sqeuclidean"`` (``2 - 2 cos`` on normalised features), ``"cosine"``
            or ``"euclidean"``; ``d`` in the weights.
        normalize: L2-normalise the features first.
        device: where the neighbour search runs (default: the features' device).
        backend: ``"torch"`` (tiled matmul + top-k) or ``"faiss"`` (optional extra).
        block: tile side of the search (memory ``O(block^2)``).

    Returns:
        ``scipy.sparse.csr_matrix`` of shape ``(N, N)``, float64, ``O(N k)`` non-zeros;
        each non-empty row sums to 1.

    Raises:
        InputError: bad ``k1``/``k2``, features or neighbour lists; neighbour lists
            without ``features`` that lack a distance ``R*`` needs.
    """
    prov = None
    if features is not None:
        prov = knn.FeatureTiles([features], metric, block=block, device=device,
                                 normalize=normalize, names=["features"])
        n = prov.n
    elif neighbours is not None:
        n = int(np.shape(neighbours)[0])
    else:
        raise InputError("k_reciprocal_encoding needs features or neighbours (+ distances)")
    k1, k2 = check_k(k1, k2, n)
    k = max(k1 + 1, k2)
    if neighbours is not None:
        if distances is None:
            raise InputError("neighbours needs distances (N, K) too: they weight V")
        idx, val = _validated_neighbours(neighbours, distances, k)
        if idx.shape[0] != n:
            raise InputError(f"neighbours has {idx.shape[0]} rows for {n} features")
        from_row_j = candidate_lookup(idx, val, _raise_missing)  # called as (j, p)

        def missing(p: np.ndarray, j: np.ndarray) -> np.ndarray:
            return from_row_j(j, p) if prov is None else _pair_distance(prov, p, j)

        lookup = candidate_lookup(idx, val, missing)
    else:
        assert prov is not None
        idx, val = _search(prov, k, backend)
        lookup = candidate_lookup(idx, val, lambda p, j: _pair_distance(prov, p, j))
    return encode(idx, k1, k2, lookup)


def _raise_missing(j: np.ndarray, p: np.ndarray) -> np.ndarray:
    raise InputError(
        f"the neighbour lists lack the distance of {len(p)} pair(s) of R*(p) in both rows "
        f"(e.g. items {int(p[0])} and {int(j[0])}); pass longer lists (about 2 (k1 + 1) "
        "columns) or the features"
    )


def _pair_distance(prov: knn.FeatureTiles, p: np.ndarray, j: np.ndarray) -> np.ndarray:
    return prov.pairs(p, j)


def _search(prov: knn.FeatureTiles, k: int, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(indices, distances)`` candidates ``(N, kc)``, first ``k`` exact."""
    kc = min(prov.n, 2 * k)
    if backend == "torch":
        val, idx, _ = knn.search(prov, kc)
    elif backend == "faiss":
        val, idx = knn.faiss_candidates(prov, kc)
    else:
        raise InputError(f"backend must be 'torch' or 'faiss', got {backend!r}")
    return knn.order(prov, val, idx, k, lambda x, _: x)


def jaccard_distance(
    features: np.ndarray | torch.Tensor,
    *,
    k1: int = 30,
    k2: int = 6,
    metric: str = "sqeuclidean",
    normalize: bool = True,
    max_distance: float | None = None,
    device: str | torch.device | None = None,
    backend: str = "torch",
    block: int = 2048,
    sort_rows: bool = True,
) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distances among ``features``, for clustering.

    Args:
        features: ``(N, D)`` features (numpy or torch, any device).
        k1, k2, metric, normalize, device, backend, block: see
            :func:`k_reciprocal_encoding` (defaults: cluster-contrast's k1 30, k2 6).
        max_distance: keep only entries ``<= max_distance`` (e.g. DBSCAN's ``eps``) to
            save memory; ``None`` keeps every overlapping pair.
        sort_rows: order each row's entries by increasing distance (ties by column), as
            scikit-learn's precomputed sparse neighbours expect (no warning, no copy);
            ``False`` gives sorted column indices.

    Returns:
        ``scipy.sparse.csr_matrix`` ``(N, N)``, float32. Stored entries are the Jaccard
        distances ``d_J`` of the pairs whose encodings overlap, zeros stored explicitly;
        the diagonal is always stored, with value 0. **A pair that is not stored has
        distance 1.** Feed it to ``sklearn.cluster.DBSCAN(metric="precomputed")``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> f = np.repeat(np.eye(3, 8), 4, axis=0) + 0.05 * rng.normal(size=(12, 8))
        >>> d = jaccard_distance(f, k1=3, k2=1)  # 3 groups of 4
        >>> d.shape, d.dtype
        ((12, 12), dtype('float32'))
        >>> sorted(d[0].indices.tolist())  # stored: item 0's group; the rest: distance 1
        [0, 1, 2, 3]
    """
    if max_distance is not None and not 0.0 <= float(max_distance) <= 1.0:
        raise InputError(f"max_distance must be in [0, 1] or None, got {max_distance!r}")
    v = k_reciprocal_encoding(features, k1, k2, metric=metric, normalize=normalize,
                              device=device, backend=backend, block=block)
    n = v.shape[0]
    cols = v.T.tocsr()
    pieces = []
    idx_t = np.int32 if n < 2**31 else np.int64
    for a, b, rr, g, mins in sum_min_chunks(v, cols):
        c = b - a
        diag = np.arange(c)
        key = np.concatenate([rr * n + g, diag * n + a + diag])  # the diagonal, always
        o = np.argsort(key)
        key, w = key[o], np.concatenate([mins, np.zeros(c)])[o]
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        s = np.add.reduceat(w, first)  # sum_j min, one per pair
        rows, cols_k = np.divmod(key[first], n)
        d = np.clip(1.0 - s / (2.0 - s), 0.0, 1.0).astype(np.float32)
        on_diag = cols_k == rows + a
        d[on_diag] = 0.0
        if max_distance is not None:
            keep = (d <= max_distance) | on_diag
            rows, cols_k, d = rows[keep], cols_k[keep], d[keep]
        if sort_rows:  # by distance within each row, ties by column (a stable sort on
            # the row and the bits of the float32 distance, monotone for d >= 0)
            o = np.argsort(rows << 32 | d.view(np.int32).astype(np.int64), kind="stable")
            rows, cols_k, d = rows[o], cols_k[o], d[o]
        pieces.append((np.bincount(rows, minlength=c), cols_k.astype(idx_t), d))
    return _csr(pieces, (n, n), np.float32)
