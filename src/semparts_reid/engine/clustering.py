"""Pseudo-identities of the target: DBSCAN on the sparse k-reciprocal Jaccard distance.

:func:`cluster_features` is the per-epoch step of a clustering objective:
:func:`semparts_reid.metrics.kreciprocal.jaccard_distance` gives a sparse ``(N, N)``
matrix (stored entries: pairs whose k-reciprocal encodings overlap; every other pair is
at distance 1), and :func:`dbscan_labels` runs scikit-learn's
``DBSCAN(metric="precomputed")`` on it. Images DBSCAN leaves unclustered get label
``-1`` (outliers: no target loss that epoch).

Why scikit-learn: its DBSCAN takes a sparse precomputed matrix and only touches the
stored entries (O(nnz) memory, never ``N x N``), which is what makes the sparse
Jaccard distance pay off; a hand-written DBSCAN would need its own tests against it.

Settings. Cluster-contrast's defaults (``eps 0.6, min_samples 4, k1 30, k2 6``) were
chosen for Market-1501, about 17 images per identity. They do not transfer to a domain
with few images per identity: on a held-out domain of about 7 images per identity they
merged 120 identities into 9 clusters, while ``k1 10-15, k2 4, eps 0.4`` found about
60 clusters. :meth:`ClusterSettings.for_identity_size` derives all four from the
expected number of images per identity (a prior the user states, e.g. the labelled
source domain's, never measured on evaluation identities), anchored on those two
measurements.

Example:
    >>> import numpy as np
    >>> from scipy import sparse
    >>> d = sparse.csr_matrix(np.array([[0, .1, 0], [.1, 0, 0], [0, 0, 0]]))
    >>> dbscan_labels(d, eps=0.5, min_samples=2).tolist()  # unstored pairs: distance 1
    [0, 0, -1]
    >>> ClusterSettings.for_identity_size(7)
    ClusterSettings(eps=0.4, min_samples=4, k1=12, k2=4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from ..errors import InputError

__all__ = ["ClusterSettings", "cluster_counts", "cluster_features", "dbscan_labels"]


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


@dataclass(frozen=True)
class ClusterSettings:
    """DBSCAN and Jaccard-distance settings (cluster-contrast's defaults).

    Attributes:
        eps: DBSCAN radius on the Jaccard distance, in ``(0, 1)``.
        min_samples: images (itself included) within ``eps`` that make an image a core
            point.
        k1, k2: k-reciprocal neighbours and query-expansion neighbours of the encoding.
    """

    eps: float = 0.6
    min_samples: int = 4
    k1: int = 30
    k2: int = 6

    def __post_init__(self) -> None:
        if not (isinstance(self.eps, (int, float)) and 0.0 < self.eps < 1.0):
            raise InputError(
                f"eps={self.eps!r}: expected 0 < eps < 1 (pairs the sparse distance does not "
                "store are at distance 1, so eps >= 1 would make every pair neighbours)"
            )
        for name in ("min_samples", "k1", "k2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}={value!r}: expected an int >= 1")

    @classmethod
    def for_identity_size(cls, images_per_identity: float) -> ClusterSettings:
        """Settings for a domain with about ``images_per_identity`` images per person.

        With ``m`` images per identity:

        * ``k1 = clamp(round(1.75 m), 4, 30)``: the reciprocal neighbourhood should
          cover an identity's images with some slack, and no more (a ``k1`` far above
          ``m`` pulls other identities into every encoding and DBSCAN chains them);
        * ``k2 = clamp(round(k1 / 3), 1, 6)``;
        * ``eps`` linear in ``m`` from 0.4 at 7 to 0.6 at 17.2, clamped to
          ``[0.3, 0.6]``;
        * ``min_samples = clamp(round(m / 2), 2, 4)`` (an identity smaller than
          ``min_samples`` can never form a cluster of its own).

        The rule reproduces cluster-contrast's settings on Market-1501 (17.2 images per
        identity: ``k1 30, k2 6, eps 0.6, min_samples 4``) and the settings that worked
        on a held-out domain of about 7 per identity (``k1 12, k2 4, eps 0.4``).
        Estimate ``m`` without the evaluation identities: e.g. the labelled source
        domain's images per identity, or the capture set-up (cameras x tracklets).
        """
        m = float(images_per_identity)
        if not (math.isfinite(m) and m >= 1.0):
            raise InputError(f"images_per_identity={images_per_identity!r}: expected >= 1")
        k1 = int(_clamp(round(1.75 * m), 4, 30))
        k2 = int(_clamp(round(k1 / 3), 1, 6))
        eps = round(_clamp(0.4 + 0.2 * (m - 7.0) / 10.2, 0.3, 0.6), 3)
        min_samples = int(_clamp(round(m / 2), 2, 4))
        return cls(eps=eps, min_samples=min_samples, k1=k1, k2=k2)


def dbscan_labels(
    dist: Any, *, eps: float = 0.6, min_samples: int = 4, n_jobs: int | None = None
) -> np.ndarray:
    """DBSCAN on a sparse precomputed distance where unstored pairs are "not neighbours".

    The matrix is copied, its diagonal set to explicit zeros (an image is its own
    neighbour, as in a dense matrix, so ``min_samples`` counts it) and each row sorted
    by value (scikit-learn's precomputed-graph format); the labels equal scikit-learn's
    dense DBSCAN on the same distances with every unstored off-diagonal pair at 1.0.

    Args:
        dist: ``(N, N)`` scipy sparse matrix of distances >= 0.
        eps: neighbourhood radius, ``0 < eps < 1``.
        min_samples: neighbours (itself included) of a core point.
        n_jobs: scikit-learn's ``n_jobs`` for the neighbourhood queries.

    Returns:
        ``(N,)`` int64 labels, ``0..C-1`` for clusters and ``-1`` for outliers.
    """
    from scipy import sparse
    from sklearn.cluster import DBSCAN

    ClusterSettings(eps=eps, min_samples=min_samples)  # validates both
    if not sparse.issparse(dist):
        raise InputError(f"dist: expected a scipy sparse matrix, got {type(dist).__name__}")
    n = dist.shape[0]
    if dist.shape != (n, n):
        raise InputError(f"dist of shape {dist.shape}: expected a square (N, N) matrix")
    coo = sparse.coo_matrix(dist)
    if coo.nnz and (not np.isfinite(coo.data).all() or coo.data.min() < 0):
        raise InputError("dist: expected finite distances >= 0")
    off = coo.row != coo.col
    diag = np.arange(n)
    graph = sparse.csr_matrix(
        (
            np.concatenate([coo.data[off].astype(np.float64), np.zeros(n)]),
            (np.concatenate([coo.row[off], diag]), np.concatenate([coo.col[off], diag])),
        ),
        shape=(n, n),
    )
    graph.sum_duplicates()
    rows = np.repeat(diag, np.diff(graph.indptr))
    order = np.lexsort((graph.data, rows))  # each row ascending by distance
    graph.data, graph.indices = graph.data[order], graph.indices[order]
    graph.has_sorted_indices = False
    model = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed", n_jobs=n_jobs)
    return np.asarray(model.fit_predict(graph), dtype=np.int64)


def cluster_features(
    features: Tensor, settings: ClusterSettings | None = None, *, n_jobs: int | None = None
) -> np.ndarray:
    """Pseudo-labels of ``features`` ``(N, D)``: Jaccard distance, then DBSCAN.

    Returns:
        ``(N,)`` int64 labels (``-1``: outlier).
    """
    from ..metrics.kreciprocal import jaccard_distance

    s = settings if settings is not None else ClusterSettings()
    dist = jaccard_distance(features, k1=s.k1, k2=s.k2, max_distance=s.eps)
    return dbscan_labels(dist, eps=s.eps, min_samples=s.min_samples, n_jobs=n_jobs)


def cluster_counts(labels: np.ndarray | Tensor) -> tuple[int, int]:
    """``(clusters, outliers)`` of a label vector (``-1``: outlier)."""
    lab = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    return (int(lab.max()) + 1 if lab.size and lab.max() >= 0 else 0), int((lab < 0).sum())
