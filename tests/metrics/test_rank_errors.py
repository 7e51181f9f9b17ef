"""Bad inputs to evaluate_cmc_map raise errors that name the argument and its shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semparts_reid.metrics.rank import evaluate_cmc_map

DIST = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
LABELS = ([1, 2], [1, 2, 3], [0, 0], [1, 1, 1])


def test_ok_baseline() -> None:
    assert evaluate_cmc_map(DIST, *LABELS, max_rank=3).num_valid_queries == 2


@pytest.mark.parametrize(
    ("labels", "pattern"),
    [
        (([1, 2, 3], *LABELS[1:]), r"q_pids has shape \(3,\) but there are 2 query"),
        ((LABELS[0], [1, 2], *LABELS[2:]), r"g_pids has shape \(2,\) but there are 3 gallery"),
        ((*LABELS[:2], [0], LABELS[3]), r"q_camids has shape \(1,\) .* expected \(2,\)"),
        ((*LABELS[:3], [1, 1]), r"g_camids has shape \(2,\) .* expected \(3,\)"),
        (([[1, 2]], *LABELS[1:]), r"q_pids must be 1-D .* got shape \(1, 2\)"),
        (([1.5, 2], *LABELS[1:]), r"q_pids must hold integers, got shape \(2,\)"),
    ],
)
def test_label_errors(labels: tuple, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        evaluate_cmc_map(DIST, *labels)


def test_float_integral_labels_are_accepted() -> None:
    m = evaluate_cmc_map(DIST, np.array([1.0, 2.0]), *LABELS[1:], max_rank=3)
    assert m.num_valid_queries == 2


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("as_torch", [False, True])
def test_non_finite_distances(bad: float, as_torch: bool) -> None:
    d = DIST.copy()
    d[1, 2] = bad
    arg = torch.from_numpy(d) if as_torch else d
    with pytest.raises(
        ValueError, match=r"distmat of shape \(2, 3\) holds 1\+ NaN/inf .* \[1, 2\]"
    ):
        evaluate_cmc_map(arg, *LABELS)


def test_non_finite_at_junk_position_still_rejected() -> None:
    d = DIST.copy()
    d[0, 0] = np.nan  # (pid 1, cam 0) vs (pid 1, cam 1): a valid match, but check junk too
    with pytest.raises(ValueError, match="NaN/inf"):
        evaluate_cmc_map(d, *LABELS)


def test_huge_but_finite_values_are_fine() -> None:
    d = np.full((2, 3), 3e38, dtype=np.float32)  # the sum overflows, the values do not
    d[0, 0] = 1.0
    m = evaluate_cmc_map(d, *LABELS, max_rank=3)
    assert m.rank(1) == 0.5


def test_non_finite_features() -> None:
    qf, gf = np.ones((2, 4)), np.ones((3, 4))
    qf[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"query of shape \(2, 4\) holds 1 NaN/inf"):
        evaluate_cmc_map((qf, gf), *LABELS)


def test_shapes() -> None:
    with pytest.raises(ValueError, match=r"distmat must have shape \(num_query, num_gallery\)"):
        evaluate_cmc_map(np.zeros(3), *LABELS)
    with pytest.raises(ValueError, match=r"empty gallery: distances have shape \(2, 0\)"):
        evaluate_cmc_map(np.zeros((2, 0)), [1, 2], [], [0, 0], [])
    with pytest.raises(ValueError, match=r"no queries: distances have shape \(0, 3\)"):
        evaluate_cmc_map(np.zeros((0, 3)), [], LABELS[1], [], LABELS[3])
    with pytest.raises(ValueError, match=r"query_feats must be a 2-D array .* shape \(4,\)"):
        evaluate_cmc_map((np.zeros(4), np.zeros((3, 4))), *LABELS)
    with pytest.raises(ValueError, match="same feature dimension"):
        evaluate_cmc_map((np.zeros((2, 4)), np.zeros((3, 5))), *LABELS)
    with pytest.raises(ValueError, match="must be .query_feats, gallery_feats., got 3 items"):
        evaluate_cmc_map((DIST, DIST, DIST), *LABELS)
    with pytest.raises(TypeError, match="distmat_or_feats must be"):
        evaluate_cmc_map("dist", *LABELS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="all 3 gallery pids are in junk_pids"):
        evaluate_cmc_map(DIST, *LABELS, junk_pids=(1, 2, 3))


def test_no_valid_query() -> None:
    # every query's only same-pid gallery image is in the same camera
    with pytest.raises(ValueError, match="no valid query: none of the 2 queries"):
        evaluate_cmc_map(DIST, [1, 2], [1, 2, 3], [1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="no valid query"):
        evaluate_cmc_map(DIST, [7, 8], *LABELS[1:])


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"protocol": "duke"}, "protocol must be one of"),
        ({"ap_mode": "11point"}, "ap_mode must be one of"),
        ({"max_rank": 0}, "max_rank must be an int >= 1, got 0"),
        ({"max_rank": 2.0}, "max_rank must be an int"),
        ({"chunk_size": 0}, "chunk_size must be an int >= 1"),
        ({"num_repeats": 0}, "num_repeats must be an int >= 1"),
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"metric": "manhattan"}, "metric must be one of"),
    ],
)
def test_option_errors(kwargs: dict, pattern: str) -> None:
    arg = (np.ones((2, 4)), np.ones((3, 4))) if "metric" in kwargs else DIST
    with pytest.raises(ValueError, match=pattern):
        evaluate_cmc_map(arg, *LABELS, **kwargs)
