"""``benchmarks/bench_kreciprocal.py``: its references and its targets. Behaviour only: no
assert here depends on how fast anything ran (the quick run itself takes ~1 min)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from bench_loading import load_benchmark as _load
from semparts_reid.experiments import targets
from semparts_reid.metrics import jaccard_distance, knn


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("bench_kreciprocal")


@pytest.fixture(scope="module")
def targets_mod() -> ModuleType:
    return targets


def test_torchreid_gets_the_matrices_our_tiles_search(bench: ModuleType) -> None:
    qf, gf, *_ = bench.make_data(30, 70, 8, 3, dim=16, seed=0)
    qg, qq, gg = bench._split_matrices(qf, gf)
    d = knn.dense_matrix(knn.FeatureTiles([qf, gf], "euclidean")).numpy()
    np.testing.assert_array_equal(qg, d[:30, 30:])
    np.testing.assert_array_equal(qq, d[:30, :30])
    np.testing.assert_array_equal(gg, d[30:, 30:])
    fn, where = bench.torchreid_rerank()
    assert fn is None or callable(fn), where


def test_dense_reference_equals_the_sparse_jaccard(bench: ModuleType) -> None:
    f, *_ = bench.make_data(90, 0, 6, 3, dim=16, seed=1)
    dense = bench.dense_jaccard_reference(f, 6, 3)
    sparse = jaccard_distance(f, k1=6, k2=3)
    ours = np.ones((90, 90), np.float32)
    rows = np.repeat(np.arange(90), np.diff(sparse.indptr))
    ours[rows, sparse.indices] = sparse.data
    np.testing.assert_allclose(ours, dense, atol=1e-6)


def _market(speedup: float = 12.0, time_s: float = 7.0, diff: float = 3e-7) -> dict[str, Any]:
    return {"ours": {"time_s": time_s, "peak_rss_mib": 1100.0}, "speedup": speedup,
            "max_abs_diff": diff}


def _jac(t16: float = 12.0, t100: float = 200.0, diff: float = 1e-6) -> dict[str, Any]:
    return {"16522": {"time_s": t16, "peak_rss_mib": 1500.0},
            "100000": {"time_s": t100, "peak_rss_mib": 5000.0},
            "dense": {"max_abs_diff": diff}}


def test_all_targets_met_exits_zero(bench: ModuleType, targets_mod: ModuleType) -> None:
    ts = bench.targets(_market(), {"time_s": 100.0, "peak_rss_mib": 5000.0}, _jac())
    assert len(ts) == 11 and targets_mod.report(ts) == 0


@pytest.mark.parametrize(
    ("market", "jac", "missed"),
    [
        (_market(speedup=9.5), _jac(), "speed-up vs torchreid"),
        (_market(time_s=9.2), _jac(), "Market re-ranking: time"),
        (_market(diff=2e-5), _jac(), "max |ours - torchreid|"),
        (_market(), _jac(t100=250.0), "Jaccard + DBSCAN, 100000: time"),
        (_market(), _jac(diff=float("nan")), "dense reference"),
    ],
)
def test_a_missed_target_prints_missed(
    bench: ModuleType, targets_mod: ModuleType, capsys: pytest.CaptureFixture[str],
    market: dict[str, Any], jac: dict[str, Any], missed: str,
) -> None:
    assert targets_mod.report(bench.targets(market, None, jac)) == targets_mod.MISSED_EXIT
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[MISSED] ")]
    assert len(lines) == 1 and missed in lines[0]


def test_without_torchreid_only_ours_is_checked(bench: ModuleType) -> None:
    ts = bench.targets({"ours": {"time_s": 1.0, "peak_rss_mib": 1.0}}, None, None)
    assert [t.name for t in ts] == ["Market re-ranking: time (distances included)",
                                    "Market re-ranking: peak RSS"]
