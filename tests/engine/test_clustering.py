"""dbscan_labels on a sparse distance equals scikit-learn's dense DBSCAN; settings rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.cluster import DBSCAN

from semparts_reid.engine.clustering import ClusterSettings, cluster_counts, dbscan_labels
from semparts_reid.errors import InputError


def _random_distance(n: int, density: float, seed: int, diagonal: bool) -> sparse.csr_matrix:
    """A symmetric sparse distance in [0, 1), a few explicit zeros off the diagonal,
    grouped so DBSCAN finds several clusters and some outliers."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, max(2, n // 6), n)
    close = (groups[:, None] == groups[None, :]) & (rng.random((n, n)) < 0.8)
    mask = close | (rng.random((n, n)) < density)
    mask = np.triu(mask, 1)
    values = np.where(close, rng.random((n, n)) * 0.5, 0.3 + rng.random((n, n)) * 0.69)
    values[rng.random((n, n)) < 0.02] = 0.0  # explicit zeros: still neighbours
    r, c = np.nonzero(mask)
    v = values[r, c]
    rows, cols, vals = np.r_[r, c], np.r_[c, r], np.r_[v, v]
    if diagonal:
        rows, cols, vals = np.r_[rows, np.arange(n)], np.r_[cols, np.arange(n)], np.r_[vals,
                                                                                     np.zeros(n)]
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _dense_reference(dist: sparse.csr_matrix, eps: float, min_samples: int) -> np.ndarray:
    dense = np.ones(dist.shape)
    coo = dist.tocoo()
    dense[coo.row, coo.col] = coo.data  # stored entries, explicit zeros included
    np.fill_diagonal(dense, 0.0)
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dense)


@pytest.mark.parametrize("seed", range(6))
def test_labels_equal_sklearn_dense_dbscan_with_unstored_pairs_at_one(seed: int) -> None:
    n = [40, 80, 120][seed % 3]
    dist = _random_distance(n, density=0.05, seed=seed, diagonal=seed % 2 == 0)
    for eps, min_samples in ((0.6, 4), (0.4, 3), (0.25, 2), (0.5, 6)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no EfficiencyWarning: rows come sorted
            got = dbscan_labels(dist, eps=eps, min_samples=min_samples)
        want = _dense_reference(dist, eps, min_samples)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.int64
    assert len(set(got.tolist()) - {-1}) >= 2 or (got == -1).any()


def test_input_matrix_is_left_untouched_and_counts_are_reported() -> None:
    dist = _random_distance(30, 0.1, seed=1, diagonal=False)
    before = dist.copy()
    labels = dbscan_labels(dist, eps=0.5, min_samples=3)
    assert (dist != before).nnz == 0 and dist.nnz == before.nnz
    clusters, outliers = cluster_counts(labels)
    assert clusters == labels.max() + 1 and outliers == int((labels == -1).sum())
    assert cluster_counts(np.full(4, -1)) == (0, 4)


def test_every_image_alone_is_an_outlier_and_the_diagonal_counts() -> None:
    empty = sparse.csr_matrix((5, 5))
    assert dbscan_labels(empty, eps=0.5, min_samples=2).tolist() == [-1] * 5
    # min_samples=1: each image is its own core point (the diagonal is a neighbour)
    assert dbscan_labels(empty, eps=0.5, min_samples=1).tolist() == [0, 1, 2, 3, 4]


def test_bad_inputs_are_named() -> None:
    d = sparse.csr_matrix(np.zeros((3, 3)))
    with pytest.raises(InputError, match="eps=1.0: expected 0 < eps < 1"):
        dbscan_labels(d, eps=1.0)
    with pytest.raises(InputError, match="min_samples=0"):
        dbscan_labels(d, min_samples=0)
    with pytest.raises(InputError, match="expected a scipy sparse matrix"):
        dbscan_labels(np.zeros((3, 3)))
    with pytest.raises(InputError, match=r"dist of shape \(3, 2\)"):
        dbscan_labels(sparse.csr_matrix((3, 2)))
    with pytest.raises(InputError, match="distances >= 0"):
        dbscan_labels(sparse.csr_matrix(np.array([[0, -0.5], [-0.5, 0]])))


def test_settings_follow_the_images_per_identity() -> None:
    assert ClusterSettings() == ClusterSettings(eps=0.6, min_samples=4, k1=30, k2=6)
    # cluster-contrast's Market-1501 settings (12,936 images, 751 identities)
    assert ClusterSettings.for_identity_size(12936 / 751) == ClusterSettings()
    small = ClusterSettings.for_identity_size(7)  # the held-out domain of the issue
    assert (small.k1, small.k2, small.eps) == (12, 4, 0.4)
    tiny = ClusterSettings.for_identity_size(1.5)
    assert tiny.min_samples == 2 and tiny.eps == 0.3 and tiny.k1 == 4
    ks = [ClusterSettings.for_identity_size(m) for m in (2, 4, 7, 10, 17, 40)]
    assert [s.k1 for s in ks] == sorted(s.k1 for s in ks)
    assert [s.eps for s in ks] == sorted(s.eps for s in ks)
    with pytest.raises(InputError, match="images_per_identity=0.5"):
        ClusterSettings.for_identity_size(0.5)
