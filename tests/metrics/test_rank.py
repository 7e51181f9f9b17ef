"""evaluate_cmc_map against a slow per-query reference, hand-computed cases, tie-breaking."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from eval_reference import per_query_reference

from semparts_reid.metrics import _match_rank
from semparts_reid.metrics._match_rank import hashed_choice
from semparts_reid.metrics.distance import compute_distance
from semparts_reid.metrics.rank import ReIDMetrics, evaluate_cmc_map


def _random_case(rng: np.random.Generator, case: int):
    nq, ng = int(rng.integers(1, 25)), int(rng.integers(1, 60))
    ids, cams = int(rng.integers(1, 8)), int(rng.integers(1, 4))
    qp = rng.integers(0, ids, nq)
    gp = rng.integers(-1, ids, ng)  # -1: junk, 0: distractors
    qc, gc = rng.integers(0, cams, nq), rng.integers(0, cams, ng)
    kind = case % 4
    if kind == 0:  # many exact ties
        dist = rng.integers(0, 4, (nq, ng)).astype(np.float64)
    elif kind == 1:
        dist = rng.random((nq, ng)).astype(np.float32)
    elif kind == 2:  # negative values and -0.0
        dist = rng.standard_normal((nq, ng))
        dist[rng.random((nq, ng)) < 0.2] = -0.0
    else:  # float64 values that collide in float32
        dist = 1.0 + rng.integers(0, 3, (nq, ng)) * 1e-12
    return dist, qp, gp, qc, gc


@pytest.mark.parametrize(
    ("ap_mode", "sort_fraction"), [("standard", 0.35), ("trapezoid", 0.35), ("standard", 0.0),
                                   ("trapezoid", 2.0)],
)  # fmt: skip
def test_matches_per_query_reference(
    ap_mode: str, sort_fraction: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sort_fraction 0 forces the row-sorting path, 2 the candidate-keying path
    monkeypatch.setattr(_match_rank, "_SORT_FRACTION", sort_fraction)
    rng = np.random.default_rng(int(sort_fraction * 10) + (ap_mode == "trapezoid"))
    checked = 0
    for case in range(300):
        dist, qp, gp, qc, gc = _random_case(rng, case)
        junk = (-1,) if case % 5 == 0 else ()
        ref = per_query_reference(dist, qp, gp, qc, gc, 10, ap_mode, junk_pids=junk)
        if ref["num_valid"] == 0:
            with pytest.raises(ValueError):
                evaluate_cmc_map(dist, qp, gp, qc, gc, max_rank=10, junk_pids=junk)
            continue
        chunk = int(rng.integers(1, 9))
        m = evaluate_cmc_map(
            dist, qp, gp, qc, gc, max_rank=10, ap_mode=ap_mode, chunk_size=chunk, junk_pids=junk
        )
        assert m.num_valid_queries == ref["num_valid"]
        assert m.num_queries == len(qp)
        np.testing.assert_allclose(m.cmc, ref["cmc"], rtol=0, atol=1e-9)
        assert m.mAP == pytest.approx(ref["mAP"], abs=1e-9)
        assert m.mINP == pytest.approx(ref["mINP"], abs=1e-9)
        assert m.mrr == pytest.approx(ref["mrr"], abs=1e-9)
        checked += 1
    assert checked > 150


def test_larger_random_case_with_single_camera_queries() -> None:
    rng = np.random.default_rng(7)
    nq, ng = 120, 700
    qp, gp = rng.integers(0, 40, nq), rng.integers(0, 40, ng)
    qc, gc = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    gc[gp < 5] = 0  # ids 0-4 live in camera 0 only: their cam-0 queries have no valid match
    qc[qp < 5] = 0
    dist = rng.random((nq, ng))
    m = evaluate_cmc_map(dist, qp, gp, qc, gc, chunk_size=17)
    ref = per_query_reference(dist, qp, gp, qc, gc, 50)
    assert m.num_valid_queries == ref["num_valid"] < nq
    np.testing.assert_allclose(m.cmc, ref["cmc"], atol=1e-9)
    assert m.mrr == pytest.approx(ref["mrr"], abs=1e-12)
    assert m.mAP == pytest.approx(ref["mAP"], abs=1e-9)
    assert m.mINP == pytest.approx(ref["mINP"], abs=1e-9)


# ---------------------------------------------------------------- hand-computed cases

# one query (pid 1, cam 0); gallery: valid order g0(neg) g1(pos) g3(neg) g4(pos); g2 is junk
HAND_DIST = np.array([[0.1, 0.2, 0.05, 0.3, 0.4]])
HAND = (HAND_DIST, [1], [2, 1, 1, 3, 1], [0], [1, 1, 0, 1, 2])


def test_hand_cmc_ap_minp() -> None:
    m = evaluate_cmc_map(*HAND, max_rank=4)
    np.testing.assert_allclose(m.cmc, [0.0, 1.0, 1.0, 1.0])
    assert m.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)  # 0.5
    assert m.mINP == pytest.approx(2 / 4)
    assert m.mrr == pytest.approx(1 / 2)  # first match at position 1 of the valid list
    assert (m.num_valid_queries, m.num_queries) == (1, 1)


def test_hand_trapezoid_ap() -> None:
    # official compute_AP.m: sum over matches of (1/m) * (p_prev + p_now) / 2
    m = evaluate_cmc_map(*HAND, max_rank=4, ap_mode="trapezoid")
    assert m.mAP == pytest.approx(0.5 * ((0 + 1 / 2) / 2 + (1 / 3 + 2 / 4) / 2))  # 1/3
    top = evaluate_cmc_map(np.array([[0.0, 1.0]]), [1], [1, 2], [0], [1, 1], max_rank=2)
    top_t = evaluate_cmc_map(
        np.array([[0.0, 1.0]]), [1], [1, 2], [0], [1, 1], max_rank=2, ap_mode="trapezoid"
    )
    assert top.mAP == top_t.mAP == 1.0  # p(-1) = 1


def test_hand_two_queries_average_and_invalid_query() -> None:
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.5, 0.5, 0.5]])
    # q0 pid 1: matches g1 (pos 1) -> AP 1/2; q1 pid 2: match g0 at pos 2 -> AP 1/3
    # q2 pid 9: no gallery match -> left out but counted
    m = evaluate_cmc_map(dist, [1, 2, 9], [3, 1, 4], [0, 0, 0], [1, 1, 1], max_rank=3)
    assert m.num_valid_queries == 1 and m.num_queries == 3
    m = evaluate_cmc_map(dist, [1, 2, 9], [2, 1, 4], [0, 0, 0], [1, 1, 1], max_rank=3)
    assert (m.num_valid_queries, m.num_queries) == (2, 3)
    assert m.mAP == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert m.mINP == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert m.mrr == pytest.approx((1 / 2 + 1 / 3) / 2)  # the invalid q2 is left out
    np.testing.assert_allclose(m.cmc, [0.0, 0.5, 1.0])


def test_same_camera_same_pid_removed_but_other_pids_in_same_camera_kept() -> None:
    # g0: same pid + same cam (junk); g1: other pid, same cam (a valid negative)
    m = evaluate_cmc_map(np.array([[0.0, 0.1, 0.2]]), [1], [1, 2, 1], [0], [0, 0, 1], max_rank=3)
    np.testing.assert_allclose(m.cmc, [0.0, 1.0, 1.0])
    assert m.mAP == pytest.approx(0.5)


# ---------------------------------------------------------------- tie-breaking


def test_ties_are_broken_by_gallery_index() -> None:
    # all distances equal: the valid order is the gallery order
    g_pids = [2, 1, 3, 1]
    m = evaluate_cmc_map(np.zeros((1, 4)), [1], g_pids, [0], [1, 1, 1, 1], max_rank=4)
    assert m.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    np.testing.assert_allclose(m.cmc, [0, 1, 1, 1])
    # reversing the gallery order moves the matches to positions 0 and 2
    m = evaluate_cmc_map(np.zeros((1, 4)), [1], g_pids[::-1], [0], [1, 1, 1, 1], max_rank=4)
    assert m.mAP == pytest.approx((1 / 1 + 2 / 3) / 2)
    # a junk item tied before a match does not count
    m = evaluate_cmc_map(np.zeros((1, 3)), [1], [1, 2, 1], [0], [0, 1, 1], max_rank=3)
    assert m.mAP == pytest.approx(1 / 2)


def test_ties_in_float64_below_float32_resolution() -> None:
    base = 0.5
    dist = np.array([[base + 2e-13, base + 1e-13, base, base + 1e-13]])
    # order: g2, g1, g3 (tie with g1, larger index), g0
    m = evaluate_cmc_map(dist, [1], [1, 2, 3, 4], [0], [1, 1, 1, 1], max_rank=4)
    np.testing.assert_allclose(m.cmc, [0, 0, 0, 1])
    m = evaluate_cmc_map(dist, [4], [1, 2, 3, 4], [0], [1, 1, 1, 1], max_rank=4)
    np.testing.assert_allclose(m.cmc, [0, 0, 1, 1])


# ---------------------------------------------------------------- input kinds and paths


def _clustered(seed: int = 3, nq: int = 60, ng: int = 300, dim: int = 16):
    rng = np.random.default_rng(seed)
    cent = rng.normal(size=(30, dim))
    qp, gp = rng.integers(0, 30, nq), rng.integers(0, 30, ng)
    qc, gc = rng.integers(0, 4, nq), rng.integers(0, 4, ng)
    qf = (cent[qp] + rng.normal(size=(nq, dim))).astype(np.float32)
    gf = (cent[gp] + rng.normal(size=(ng, dim))).astype(np.float32)
    return qf, gf, qp, gp, qc, gc


@pytest.mark.parametrize("chunk", [1, 7, 60, 1000])
def test_chunked_equals_unchunked(chunk: int) -> None:
    qf, gf, qp, gp, qc, gc = _clustered()
    dist = compute_distance(qf, gf, "euclidean")
    full = evaluate_cmc_map(dist, qp, gp, qc, gc)
    part = evaluate_cmc_map(dist, qp, gp, qc, gc, chunk_size=chunk)
    assert full.as_dict() == part.as_dict()
    for protocol in ("cuhk03",):
        a = evaluate_cmc_map(dist, qp, gp, qc, gc, protocol=protocol)
        b = evaluate_cmc_map(dist, qp, gp, qc, gc, protocol=protocol, chunk_size=chunk)
        assert a.as_dict() == b.as_dict()


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "sqeuclidean"])
def test_features_path_equals_matrix_path(metric: str) -> None:
    qf, gf, qp, gp, qc, gc = _clustered()
    dist = compute_distance(qf, gf, metric)
    a = evaluate_cmc_map(dist, qp, gp, qc, gc)
    b = evaluate_cmc_map((qf, gf), qp, gp, qc, gc, metric=metric, chunk_size=13)
    c = evaluate_cmc_map(
        (torch.from_numpy(qf), torch.from_numpy(gf)), qp, gp, qc, gc, metric=metric
    )
    assert a.as_dict() == b.as_dict() == c.as_dict()
    d = evaluate_cmc_map((qf, gf), qp, gp, qc, gc, metric=metric, junk_pids=(0, 1))
    e = evaluate_cmc_map(dist, qp, gp, qc, gc, junk_pids=(0, 1))
    assert d.as_dict() == e.as_dict()


def test_numpy_torch_and_dtypes_agree() -> None:
    qf, gf, qp, gp, qc, gc = _clustered()
    dist = compute_distance(qf, gf, "euclidean").astype(np.float64)
    ref = evaluate_cmc_map(dist, qp, gp, qc, gc)
    as_t = evaluate_cmc_map(
        torch.from_numpy(dist), *(torch.from_numpy(x) for x in (qp, gp, qc, gc))
    )
    assert as_t.as_dict() == ref.as_dict()
    listed = evaluate_cmc_map(dist.tolist() and dist, list(qp), list(gp), list(qc), list(gc))
    assert listed.as_dict() == ref.as_dict()
    f32 = evaluate_cmc_map(dist.astype(np.float32), qp, gp, qc, gc)
    assert f32.mAP == pytest.approx(ref.mAP, abs=1e-6)
    half = evaluate_cmc_map(torch.from_numpy(dist).half(), qp, gp, qc, gc)
    assert half.mAP == pytest.approx(ref.mAP, abs=0.05)
    ints = evaluate_cmc_map((dist * 10).astype(np.int64), qp, gp, qc, gc)
    ref_i = per_query_reference((dist * 10).astype(np.int64), qp, gp, qc, gc, 50)
    assert ints.mAP == pytest.approx(ref_i["mAP"], abs=1e-9)


def test_max_rank_beyond_gallery_saturates() -> None:
    m = evaluate_cmc_map(*HAND, max_rank=50)
    assert m.cmc.shape == (50,)
    assert m.cmc[1:].min() == 1.0 and m.rank(50) == 1.0


def test_does_not_modify_input() -> None:
    dist = HAND_DIST.copy()
    evaluate_cmc_map(dist, *HAND[1:])
    np.testing.assert_array_equal(dist, HAND_DIST)


# ---------------------------------------------------------------- cuhk03 single-shot


def _cuhk_reference(dist, qp, gp, qc, gc, max_rank, repeats, seed):
    uniq = np.unique(gp)

    def single_shot(i, order, pids):
        masks = []
        for r in range(repeats):
            picked = set()
            for u, pid in enumerate(uniq):
                cands = np.flatnonzero(gp == pid)
                if pid == qp[i]:
                    cands = cands[gc[cands] != qc[i]]
                size = np.array([len(cands)])
                picked.add(
                    int(cands[hashed_choice(seed, r, np.array([i]), np.array([u]), size)[0]])
                )
            masks.append(np.isin(order, list(picked)))
        return masks

    return per_query_reference(dist, qp, gp, qc, gc, max_rank, single_shot=single_shot)


def test_cuhk03_matches_reference_with_the_same_draws() -> None:
    rng = np.random.default_rng(11)
    for _ in range(5):
        nq, ng = 12, 50
        qp, gp = rng.integers(0, 6, nq), rng.integers(0, 6, ng)
        qc, gc = rng.integers(0, 2, nq), rng.integers(0, 2, ng)
        dist = rng.integers(0, 6, (nq, ng)).astype(np.float64)  # with ties
        m = evaluate_cmc_map(
            dist, qp, gp, qc, gc, max_rank=8, protocol="cuhk03", num_repeats=3, seed=5,
            chunk_size=5,
        )  # fmt: skip
        ref = _cuhk_reference(dist, qp, gp, qc, gc, 8, 3, 5)
        np.testing.assert_allclose(m.cmc, ref["cmc"], atol=1e-12)
        assert m.mAP == pytest.approx(ref["mAP"], abs=1e-12)  # full valid gallery
        assert m.mrr == pytest.approx(ref["mrr"], abs=1e-12)  # full valid gallery too
        market = evaluate_cmc_map(dist, qp, gp, qc, gc, max_rank=8)
        assert m.mrr == market.mrr


def test_cuhk03_hand_case_and_expectation() -> None:
    # query pid 1 cam 0; gallery: g0 pid1 (match, .5), g1 pid2 (.1), g2 pid2 (.9), g3 pid3 (.3)
    dist = np.array([[0.5, 0.1, 0.9, 0.3]])
    args = (dist, [1], [1, 2, 2, 3], [0], [1, 1, 2, 1])
    # pid 2 drawn as .1 -> match at rank 2; as .9 -> rank 1: CMC = [0, 1/2, 1] in expectation
    m = evaluate_cmc_map(*args, max_rank=3, protocol="cuhk03", num_repeats=4000)
    assert m.cmc[0] == 0.0 and m.cmc[2] == 1.0
    assert abs(m.cmc[1] - 0.5) < 0.03
    assert m.mAP == pytest.approx(1 / 3) and m.mINP == pytest.approx(1 / 3)
    assert m.mrr == pytest.approx(1 / 3)  # the market-style ranking, not the draws
    # with one valid image per identity single-shot equals the full protocol
    one = (np.array([[0.5, 0.1, 0.3]]), [1], [1, 2, 3], [0], [1, 1, 1])
    a = evaluate_cmc_map(*one, max_rank=3, protocol="cuhk03")
    b = evaluate_cmc_map(*one, max_rank=3)
    np.testing.assert_allclose(a.cmc, b.cmc)
    np.testing.assert_allclose(a.cmc, [0, 0, 1])


def test_cuhk03_is_seeded() -> None:
    qf, gf, qp, gp, qc, gc = _clustered(seed=9)
    dist = compute_distance(qf, gf)
    a = evaluate_cmc_map(dist, qp, gp, qc, gc, protocol="cuhk03", seed=1)
    b = evaluate_cmc_map(dist, qp, gp, qc, gc, protocol="cuhk03", seed=1)
    c = evaluate_cmc_map(dist, qp, gp, qc, gc, protocol="cuhk03", seed=2)
    assert a.as_dict() == b.as_dict()
    assert not np.array_equal(a.cmc, c.cmc)
    full = evaluate_cmc_map(dist, qp, gp, qc, gc)
    assert a.mAP == full.mAP and a.mINP == full.mINP  # computed on the full valid gallery
    assert not np.array_equal(a.cmc, full.cmc)


def test_hashed_choice_is_uniform() -> None:
    picks = hashed_choice(0, 0, np.arange(60000), np.zeros(60000, np.int64), np.full(60000, 7))
    counts = np.bincount(picks, minlength=7)
    assert picks.min() == 0 and picks.max() == 6
    assert np.abs(counts / 60000 - 1 / 7).max() < 0.01


# ---------------------------------------------------------------- ReIDMetrics


def test_reidmetrics_api() -> None:
    m = evaluate_cmc_map(*HAND, max_rank=10)
    assert isinstance(m, ReIDMetrics)
    assert m.rank(1) == 0.0 and m.rank(2) == 1.0
    d = m.as_dict()
    assert set(d) >= {
        "mAP", "mINP", "mrr", "rank1", "rank5", "rank10", "num_valid_queries", "cmc"
    }
    assert "rank20" not in d and len(d["cmc"]) == 10
    assert json.loads(json.dumps(d)) == d
    s = str(m)
    assert "mAP 50.00%" in s and "MRR 50.00%" in s and "R1 0.00%" in s and "1/1 queries" in s
    with pytest.raises(ValueError, match=r"k must be in \[1, 10\]"):
        m.rank(0)
    with pytest.raises(ValueError, match=r"k must be in \[1, 10\]"):
        m.rank(11)
    with pytest.raises(TypeError):
        m.rank(1.5)  # type: ignore[arg-type]
    assert "trapezoid" in str(evaluate_cmc_map(*HAND, ap_mode="trapezoid"))


def test_trapezoid_never_exceeds_standard_ap() -> None:
    qf, gf, qp, gp, qc, gc = _clustered(seed=4)
    dist = compute_distance(qf, gf)
    std = evaluate_cmc_map(dist, qp, gp, qc, gc)
    trap = evaluate_cmc_map(dist, qp, gp, qc, gc, ap_mode="trapezoid")
    assert trap.mAP < std.mAP
    np.testing.assert_array_equal(trap.cmc, std.cmc)
    assert trap.mINP == std.mINP
