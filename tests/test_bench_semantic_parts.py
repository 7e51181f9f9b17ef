"""The accuracy benchmark's summary and targets, and the cluster diagnostics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from bench_loading import load_benchmark


def _rows(ecn: float, parts: float, dt: float, cl: float, clp: float) -> dict[str, dict]:
    rows = {}
    for name, m in (("Direct transfer", dt), ("ECN", ecn), ("ECN + semantic parts", parts),
                    ("Clustering", cl), ("Clustering + semantic parts", clp)):
        for feat in ("global", "global + parts"):
            rows[f"{name} ({feat})"] = {"R1": m, "mAP": m}
    return rows


def test_median_over_seeds_and_targets_per_feature() -> None:
    bench = load_benchmark("bench_semantic_parts")
    maps = {"mIoU": 0.75, "head": 0.6, "prior_mIoU": 0.6, "image_specific": 0.2}
    per_seed = [
        {"a -> b": {"rows": _rows(0.30, 0.33, 0.20, 0.45, 0.48), "part_maps_adapted": maps},
         "a -> c": {"rows": _rows(0.30, 0.29, 0.20, 0.30, 0.30)}},
        {"a -> b": {"rows": _rows(0.30, 0.31, 0.20, 0.45, 0.47), "part_maps_adapted": maps},
         "a -> c": {"rows": _rows(0.30, 0.31, 0.20, 0.30, 0.30)}},
        {"a -> b": {"rows": _rows(0.10, 0.50, 0.20, 0.45, 0.60), "part_maps_adapted": maps},
         "a -> c": {"rows": _rows(0.30, 0.30, 0.20, 0.30, 0.30)}},
    ]
    summary = bench.summarise(per_seed)
    mAP = summary["a -> b"]["rows"]["ECN + semantic parts (global)"]["mAP"]
    assert mAP == {"median": pytest.approx(33.0), "min": pytest.approx(31.0),
                   "max": pytest.approx(50.0), "seeds": 3}
    result = {t.name: t.met for t in bench.targets(summary)}
    assert result["a -> b, global: ECN + parts - ECN (mAP)"]  # median +3 >= +2
    assert result["a -> b, global: ECN + parts - direct transfer (mAP)"]  # +13 >= +10
    assert not result["a -> c, global: clustering + parts - ECN + parts (mAP)"]  # 0 < +10
    assert result["a -> c, global + parts: ECN + parts - ECN (mAP)"]  # 0 >= 0 on c
    assert "a -> c: head IoU" not in result  # c has no maps to score
    assert result["a -> b: head IoU"] and result["a -> b: part-map mIoU (ECN + parts model)"]


def test_cluster_diagnostics_against_the_true_identities(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    diag = load_benchmark("cluster_diagnostics")
    labels = torch.tensor([0, 0, 0, 1, 1, -1, -1, 2])
    true = np.array([5, 5, 6, 7, 7, 7, 8, 9])
    path = tmp_path / "adapt_final.pt"
    torch.save({"objective": {"labels": labels, "agreement": torch.full((8, 3), 0.5)},
                "config": {"cluster_min_samples": 2}}, path)
    out = diag.diagnose(path, true)
    assert out["clusters"] == 3 and out["outlier_fraction"] == pytest.approx(0.25)
    assert out["mean_purity"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert out["identities_split"] == 0  # 7 is in cluster 1 and an outlier: one cluster
    assert out["identities_below_min_samples"] == 3  # 6, 8 and 9 have one image each
    assert out["mean_agreement_head_upper_lower"] == [0.5, 0.5, 0.5]


def test_rows_of_fewer_seeds_are_summarised_over_those_and_say_so() -> None:
    bench = load_benchmark("bench_semantic_parts")
    full = _rows(0.30, 0.33, 0.20, 0.45, 0.48)
    ecn_only = {k: v for k, v in full.items() if not k.startswith("Clustering")}
    per_seed = [{"a -> b": {"rows": full}}, {"a -> b": {"rows": ecn_only}},
                {"a -> b": {"rows": ecn_only}}]
    summary = bench.summarise(per_seed)
    assert summary["a -> b"]["rows"]["Clustering (global)"]["mAP"]["seeds"] == 1
    assert summary["a -> b"]["rows"]["ECN (global)"]["mAP"]["seeds"] == 3
    names = [t.name for t in bench.targets(summary)]
    assert "a -> b, global: clustering + parts - clustering (mAP) [1 seed]" in names
    assert "a -> b, global: ECN + parts - ECN (mAP)" in names


def test_diagnostic_rows_run_on_the_synthetic_pair_only() -> None:
    bench = load_benchmark("bench_semantic_parts")
    from semparts_reid import experiments as ex

    settings = ex.DemoSettings()
    names = [m.name for m in bench._methods(settings, "b", diagnostics=True)]
    assert names[:4] == [m.name for m in ex.ADAPTATIONS]
    assert names[4:] == ["ECN + part-map loss only", "ECN + part features only",
                         "Clustering + part-map loss only"]
    assert [m.name for m in bench._methods(settings, "c", diagnostics=True)] == names[:4]
    assert [m.name for m in bench._methods(settings, "b", diagnostics=False)] == names[:4]
    maps_only, features_only, cluster_maps_only = bench.DIAGNOSTICS
    assert (maps_only.parts, maps_only.trains_part_maps) == (False, True)
    assert (features_only.parts, features_only.trains_part_maps) == (True, False)
    assert cluster_maps_only.objective == "cluster"
    assert (cluster_maps_only.parts, cluster_maps_only.trains_part_maps) == (False, True)
    ecn_only = dataclasses.replace(settings, objectives=("ecn",))
    assert len(bench._methods(ecn_only, "b", diagnostics=True)) == 4


def test_diagnostics_on_c_and_extend_needs_the_source_checkpoints(tmp_path: Path) -> None:
    bench = load_benchmark("bench_semantic_parts")
    from semparts_reid import experiments as ex

    settings = ex.DemoSettings()
    on_c = [m.name for m in bench._methods(settings, "c", diagnostics=True, on_c=True)]
    assert on_c[4:] == ["ECN + part-map loss only", "ECN + part features only",
                        "Clustering + part-map loss only"]
    record = {f"{s} -> {t}": {"rows": {}} for s, t in bench.DIRECTIONS}
    with pytest.raises(FileNotFoundError, match="no source checkpoint to extend from"):
        bench.extend_seed(record, 0, settings, tmp_path, tmp_path / "c",
                          lambda t: bench._methods(settings, t, True, True), workers=1)


def test_oracle_rows_read_the_target_maps_on_the_synthetic_pair_only() -> None:
    bench = load_benchmark("bench_semantic_parts")
    from semparts_reid import experiments as ex

    settings = ex.DemoSettings()
    names = [m.name for m in bench._methods(settings, "b", diagnostics=False, oracle=True)]
    assert names[4:] == ["ECN + semantic parts with target GT maps",
                         "ECN + part-map loss only with target GT maps"]
    assert len(bench._methods(settings, "c", diagnostics=False, oracle=True)) == 4
    assert all(m.target_part_maps for m in bench.ORACLE)
    full, maps_only = bench.ORACLE
    assert (full.parts, full.trains_part_maps) == (True, True)
    assert (maps_only.parts, maps_only.trains_part_maps) == (False, True)


def test_diagnostic_rows_part_maps_are_summarised_per_row() -> None:
    bench = load_benchmark("bench_semantic_parts")
    rows = _rows(0.3, 0.3, 0.2, 0.3, 0.3)
    per_seed = [{"a -> b": {"rows": rows, "part_maps_rows": {
        "X": {"mIoU": v, "head": v / 2}}}} for v in (0.8, 0.6, 0.7)]
    oracle = bench.summarise(per_seed)["a -> b"]["part_maps_rows"]["X"]
    assert oracle["mIoU"] == {"median": 0.7, "min": 0.6, "max": 0.8, "seeds": 3}
    assert oracle["head"]["median"] == pytest.approx(0.35)


def test_detached_rows_run_everywhere_with_detached_masks() -> None:
    bench = load_benchmark("bench_semantic_parts")
    from semparts_reid import experiments as ex

    settings = ex.DemoSettings()
    for target in ("b", "c"):
        names = [m.name for m in bench._methods(settings, target, False, groups=["detached"])]
        assert names[4:] == ["ECN + semantic parts, detached masks"]
    (row,) = bench.DETACHED
    assert row.parts and row.trains_part_maps and row.detach_masks and not row.target_part_maps


def test_balanced_heads_rows_run_everywhere_for_the_chosen_objectives() -> None:
    bench = load_benchmark("bench_semantic_parts")
    from semparts_reid import experiments as ex

    settings = ex.DemoSettings()
    for target in ("b", "c"):
        names = [m.name for m in bench._methods(settings, target, False, groups=["balanced-heads"])]
        assert names[4:] == ["ECN + semantic parts, part heads 1/3",
                             "Clustering + semantic parts, part heads 1/3"]
    ecn_only = dataclasses.replace(settings, objectives=("ecn",))
    names = [m.name for m in bench._methods(ecn_only, "b", False, groups=["balanced-heads"])]
    assert names == ["ECN", "ECN + semantic parts", "ECN + semantic parts, part heads 1/3"]
    for row in bench.BALANCED:
        assert row.parts and row.trains_part_maps
        assert row.overrides == (("part_head_weight", pytest.approx(1 / 3)),)
        assert not (row.detach_masks or row.target_part_maps)


def test_refinement_rows_switch_one_piece_each() -> None:
    bench = load_benchmark("bench_semantic_parts")
    from semparts_reid import experiments as ex

    settings = ex.DemoSettings()
    names = [m.name for m in bench._methods(settings, "c", False, groups=["refinement"])]
    assert names[4:] == [m.name for m in bench.REFINEMENT] and len(names) == 9
    assert [dict(m.overrides) for m in bench.REFINEMENT] == [
        {"cluster_refine_global": False},
        {"cluster_part_smoothing": True},
        {"cluster_part_smoothing": True, "cluster_refine_global": False},
        {"cluster_part_smoothing": True, "part_head_weight": pytest.approx(1 / 3)},
        {"cluster_part_smoothing": True, "cluster_agreement_k": 8}]
    assert all(m.objective == "cluster" and m.parts for m in bench.REFINEMENT)
    ecn_only = dataclasses.replace(settings, objectives=("ecn",))
    assert len(bench._methods(ecn_only, "b", False, groups=["refinement"])) == 2


def test_diagnostic_part_maps_are_scored_once_for_rows_that_train_maps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = load_benchmark("bench_semantic_parts")
    from semparts_reid import experiments as ex

    settings = ex.DemoSettings()
    loaded: list[str] = []
    monkeypatch.setattr(bench, "build_dataset", lambda spec: spec)
    monkeypatch.setattr(bench, "load_model_from_checkpoint",
                        lambda path: loaded.append(Path(path).parent.name) or path)
    monkeypatch.setattr(bench, "score_part_maps", lambda model, target, size, limit: {
        "mIoU": 0.5})
    record = {f"{s} -> {t}": {"rows": {}} for s, t in bench.DIRECTIONS}
    record["a -> b"]["part_maps_rows"] = {"ECN + part-map loss only": {"mIoU": 0.9}}

    def methods_of(t: str) -> list:
        return bench._methods(settings, t, True, True, oracle=True, groups=["detached"])

    bench.score_diagnostic_part_maps(record, 0, settings, tmp_path, tmp_path / "c", methods_of)
    trains_maps = ["ECN + part-map loss only", "Clustering + part-map loss only",
                   "ECN + semantic parts with target GT maps",
                   "ECN + part-map loss only with target GT maps",
                   "ECN + semantic parts, detached masks"]
    assert list(record["b -> a"]["part_maps_rows"]) == trains_maps  # not "features only"
    assert record["a -> b"]["part_maps_rows"]["ECN + part-map loss only"] == {"mIoU": 0.9}
    assert "part_maps_rows" not in record["a -> c"]  # no ground truth on c
    assert len(loaded) == 2 * len(trains_maps) - 1


def test_part_triplet_rows_swap_the_part_identity_losses_for_a_triplet_loss() -> None:
    bench = load_benchmark("bench_semantic_parts")
    from semparts_reid import experiments as ex

    settings = ex.DemoSettings()
    names = [m.name for m in bench._methods(settings, "c", False, groups=["part-triplet"])]
    assert names[4:] == [m.name for m in bench.PART_TRIPLET]
    ecn, maps_only, gilt = bench.PART_TRIPLET
    assert dict(ecn.overrides) == dict(maps_only.overrides) == {"triplet_weight": 1.0}
    assert not ecn.trains_part_maps and maps_only.trains_part_maps and not maps_only.parts
    assert gilt.parts and gilt.trains_part_maps
    assert dict(gilt.overrides) == {"triplet_weight": 1.0, "triplet_parts": True,
                                    "part_head_weight": 0.0}
