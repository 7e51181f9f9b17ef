"""The junk rule with unknown camera ids (-1) and the query image itself in the gallery."""

from __future__ import annotations

import numpy as np
import pytest

from semparts_reid.errors import InputError
from semparts_reid.metrics.rank import evaluate_cmc_map

# 2 queries (pids 1, 2) x 5 gallery items (pids 1, 2, 3, 1, 2)
DIST = np.array([[0.1, 0.4, 0.2, 0.3, 0.5], [0.3, 0.5, 0.1, 0.2, 0.4]])
Q_PIDS, G_PIDS = [1, 2], [1, 2, 3, 1, 2]
# by hand: query 0 ranks g0 (match), g2, g3 (match), g1, g4 -> matches at 0 and 2:
#   AP = (1/1 + 2/3) / 2 = 5/6;  query 1 ranks g2, g3, g0, g4 (match), g1 (match):
#   AP = (1/4 + 2/5) / 2 = 0.325
AP_Q0, AP_Q1 = 5 / 6, 0.325


def test_unknown_cameras_keep_every_match() -> None:
    m = evaluate_cmc_map(DIST, Q_PIDS, G_PIDS, [-1, -1], [-1] * 5, max_rank=5)
    assert m.num_valid_queries == 2
    assert m.mAP == pytest.approx((AP_Q0 + AP_Q1) / 2)
    assert m.rank(1) == pytest.approx(0.5)
    assert m.cameras == "unknown"
    assert m.protocol_note == (
        "market1501 without camera ids: only the query image itself is removed from its gallery"
    )
    assert m.as_dict()["cameras"] == "unknown"


def test_equal_known_cameras_drop_every_match_the_market_rule() -> None:
    """What the -1 convention avoids: one known camera everywhere leaves no valid query."""
    with pytest.raises(InputError, match="no valid query"):
        evaluate_cmc_map(DIST, Q_PIDS, G_PIDS, [0, 0], [0] * 5)


def test_query_itself_is_removed() -> None:
    # query 0 is gallery item 0: without it, query 0 ranks g2, g3 (match) -> AP 1/2
    m = evaluate_cmc_map(
        DIST, Q_PIDS, G_PIDS, [-1, -1], [-1] * 5, max_rank=5, query_in_gallery=[0, -1]
    )
    assert m.mAP == pytest.approx((0.5 + AP_Q1) / 2)
    assert m.rank(1) == 0.0 and m.rank(2) == pytest.approx(0.5)
    # with known cameras the same item is removed anyway (same pid, same camera)
    known = evaluate_cmc_map(
        DIST, Q_PIDS, G_PIDS, [0, 1], [0, 0, 0, 1, 0], max_rank=5, query_in_gallery=[0, -1]
    )
    plain = evaluate_cmc_map(DIST, Q_PIDS, G_PIDS, [0, 1], [0, 0, 0, 1, 0], max_rank=5)
    assert known.mAP == plain.mAP and known.cameras == "known"


def test_mixed_known_and_unknown_cameras() -> None:
    # query 0 (camera 0): g0 (camera 0) is junk, g3 (unknown camera) stays a match at
    # position 1 -> AP 1/2; query 1 (unknown camera): nothing removed -> AP 0.325
    m = evaluate_cmc_map(DIST, Q_PIDS, G_PIDS, [0, -1], [0, 1, -1, -1, 1], max_rank=5)
    assert m.num_valid_queries == 2
    assert m.mAP == pytest.approx((0.5 + AP_Q1) / 2)
    assert m.cameras == "mixed"
    assert "where both camera ids are known" in m.protocol_note


def test_known_cameras_note() -> None:
    m = evaluate_cmc_map(DIST, Q_PIDS, G_PIDS, [0, 1], [1, 0, 0, 1, 0], max_rank=5)
    assert m.cameras == "known"
    assert m.protocol_note.startswith("market1501 (cameras known)")


def test_cuhk03_note_names_its_protocol() -> None:
    m = evaluate_cmc_map(
        DIST, Q_PIDS, G_PIDS, [-1, -1], [-1] * 5, max_rank=5, protocol="cuhk03"
    )
    assert m.protocol_note.startswith("cuhk03 without camera ids")


def _reference_ap(
    dist: np.ndarray, qp: np.ndarray, gp: np.ndarray, qc: np.ndarray, gc: np.ndarray,
    q_self: np.ndarray,
) -> tuple[list[float], list[int]]:
    """Per-query AP and first-match rank by a stable sort of each query's valid gallery."""
    aps, firsts = [], []
    for i in range(len(qp)):
        junk = (gp == qp[i]) & (gc == qc[i]) & (qc[i] >= 0)
        if q_self[i] >= 0:
            junk[q_self[i]] = True
        cols = np.flatnonzero(~junk)
        order = cols[np.argsort(dist[i, cols], kind="stable")]
        good = gp[order] == qp[i]
        if not good.any():
            continue
        pos = np.flatnonzero(good)
        aps.append(float(np.mean(np.arange(1, len(pos) + 1) / (pos + 1))))
        firsts.append(int(pos[0]))
    return aps, firsts


@pytest.mark.parametrize("quantise", [0, 4])  # 4 levels: ties everywhere (exact slow path)
@pytest.mark.parametrize("chunk_size", [3, None])
@pytest.mark.parametrize("strong", [False, True])  # random vs informative distances
def test_matches_reference_with_unknown_cameras_and_self(
    quantise: int, chunk_size: int | None, strong: bool
) -> None:
    rng = np.random.default_rng(7)
    q, g, ids = 17, 60, 6
    gp = rng.integers(0, ids, g)
    gc = rng.integers(-1, 3, g)  # cameras 0..2 and unknown
    q_self = np.full(q, -1)
    q_self[:8] = rng.choice(g, 8, replace=False)  # 8 queries are gallery images
    qp = np.where(q_self >= 0, gp[q_self], rng.integers(0, ids, q))
    qc = np.where(q_self >= 0, gc[q_self], rng.integers(-1, 3, q))
    dist = rng.random((q, g))
    if strong:
        dist = dist + 2.0 * (qp[:, None] != gp[None, :])
    if quantise:
        dist = np.floor(dist * quantise) / quantise
    m = evaluate_cmc_map(
        dist, qp, gp, qc, gc, max_rank=g, chunk_size=chunk_size, query_in_gallery=q_self
    )
    aps, firsts = _reference_ap(dist, qp, gp, qc, gc, q_self)
    assert m.num_valid_queries == len(aps)
    assert m.mAP == pytest.approx(np.mean(aps), abs=1e-12)
    assert m.rank(1) == pytest.approx(np.mean(np.array(firsts) == 0))
    assert m.cameras == "mixed"


def test_query_in_gallery_after_junk_pids() -> None:
    """``junk_pids`` removes gallery columns; the query's own index follows the shift."""
    dist = np.concatenate([np.array([[0.0], [0.0]]), DIST], axis=1)  # a pid -1 column first
    m = evaluate_cmc_map(
        dist, Q_PIDS, [-1, *G_PIDS], [-1, -1], [-1] * 6, max_rank=5, junk_pids=(-1,),
        query_in_gallery=[1, -1],
    )
    assert m.mAP == pytest.approx((0.5 + AP_Q1) / 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"q_camids": [-2, 0]}, r"q_camids\[0\] = -2"),
        ({"g_camids": [0, 0, -5, 0, 0]}, r"g_camids\[2\] = -5"),
        ({"query_in_gallery": [0]}, "query_in_gallery has shape"),
        ({"query_in_gallery": [5, -1]}, r"query_in_gallery\[0\] = 5"),
        ({"query_in_gallery": [1, -1]}, "pids differ"),
    ],
)
def test_bad_camera_and_self_inputs(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"q_camids": [0, 1], "g_camids": [1, 0, 0, 1, 0]}
    args.update(kwargs)
    extra = {"query_in_gallery": args.pop("query_in_gallery")} if "query_in_gallery" in args else {}
    with pytest.raises(ValueError, match=message):
        evaluate_cmc_map(DIST, Q_PIDS, G_PIDS, args["q_camids"], args["g_camids"], **extra)
