"""``semparts-reid demo`` (``cli/demo.py``, ``experiments/``).

What docs/cli.md says the demo does: per direction one source model (a part model),
direct transfer, then ECN, ECN + parts, clustering and clustering + parts, all adapted
from that same source checkpoint, every method scored with the global and the
global + part features (checked on a recording stand-in trainer); the target's part
maps withheld unless asked for; its seeding, table, figures, and a quick run end to end.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from semparts_reid import experiments as ex
from semparts_reid import viz
from semparts_reid.cli import main
from semparts_reid.errors import InputError
from semparts_reid.metrics.rank import evaluate_cmc_map


class _Recorder:
    """Stands in for DomainAdaptTrainer: records the calls, returns fixed metrics."""

    log: list[tuple[str, Any]] = []

    def __init__(self, model: Any, source: Any, target: Any, config: Any) -> None:
        self.model, self.config = model, config
        self.log.append(("init", (model.arch, config.parts.use_parts, config.parts.part_labels)))
        self.log.append(("detach_masks", model.detach_masks))
        self.log.append(("part_head_weight", config.parts.part_head_weight))
        self.log.append(("objective", (config.target_objective, config.parts.target_part_maps,
                                       config.cluster.cluster_images_per_identity)))

    def train_source(self, epochs: int) -> None:
        self.log.append(("train_source", (self.config.runtime.output_dir, epochs)))

    def load_weights(self, path: Any) -> None:
        self.log.append(("load_weights", Path(path)))

    def adapt(self, epochs: int) -> None:
        self.log.append(("adapt", (self.config.parts.use_parts, self.config.parts.part_labels)))

    def evaluate(self, mode: str = "global") -> Any:
        self.log.append(("evaluate", mode))
        import numpy as np

        pids = np.array([0, 1])
        return evaluate_cmc_map(np.array([[0.1, 0.9], [0.9, 0.1]]), pids, pids,
                                np.zeros(2, int), np.ones(2, int))  # fmt: skip

    def evaluate_modes(self, modes: Any) -> dict[str, Any]:
        return {mode: self.evaluate(mode) for mode in modes}


def test_one_source_model_per_direction_and_both_adaptations_start_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semparts_reid.engine.trainer as trainer_mod

    _Recorder.log = []
    monkeypatch.setattr(trainer_mod, "DomainAdaptTrainer", _Recorder)

    class _Data:
        num_train_pids = 4
        train = list(range(30))  # 7.5 images per identity

    settings = ex.DemoSettings.quick()
    rows, _ = ex.run_direction(settings, _Data(), _Data(), tmp_path, seed=0, device="cpu")
    log = _Recorder.log
    assert [k for k, _ in log].count("train_source") == 1
    inits = [v for k, v in log if k == "init"]
    assert inits[0] == ("semparts_resnet18", True, "auto")  # the source model has parts
    # baselines: global only; parts methods: part loss with the "auto" labels
    assert [v for k, v in log if k == "adapt"] == [
        (False, "none"), (True, "auto"), (False, "none"), (True, "auto")]
    objectives = [v for k, v in log if k == "objective"][1:]
    assert [o[0] for o in objectives] == ["ecn", "ecn", "cluster", "cluster"]
    assert not any(o[1] for o in objectives)  # the target's maps are withheld
    # clustering settings come from the source's images per identity
    assert [o[2] for o in objectives] == [None, None, 7.5, 7.5]
    loads = [v for k, v in log if k == "load_weights"]
    assert loads == [tmp_path / "source" / "source_final.pt"] * 4
    evals = [v for k, v in log if k == "evaluate"]
    assert evals == ["global", "concat"] * 5  # every method with the same two features
    assert list(rows) == [f"{m} ({f})" for m in (
        "Direct transfer", "ECN", "ECN + semantic parts", "Clustering",
        "Clustering + semantic parts") for f in ("global", "global + parts")]


class _EightImages:
    num_train_pids = 4
    train = list(range(8))


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The demo's trainer replaced by :class:`_Recorder`; its (fresh) call log."""
    import semparts_reid.engine.trainer as trainer_mod

    _Recorder.log = []
    monkeypatch.setattr(trainer_mod, "DomainAdaptTrainer", _Recorder)
    return _Recorder.log


def test_target_part_maps_only_on_request(tmp_path: Path, recorded: list[Any]) -> None:
    settings = ex.DemoSettings.quick()
    settings = dataclasses.replace(settings, target_part_maps=True, objectives=("ecn",))
    ex.run_direction(settings, _EightImages(), _EightImages(), tmp_path, seed=0,
                        device="cpu")
    objectives = [v for k, v in recorded if k == "objective"]
    assert len(objectives) == 3 and all(o[1] for o in objectives)
    assert "ground truth" in ex.label_source(settings)
    assert "withheld" in ex.label_source(ex.DemoSettings())


class _Captured(Exception):
    """Stops a run right after the trainer got its model."""


def test_demo_seeds_the_model_initialisation(
    tiny_pair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--seed`` fixes the source model's initial weights, whatever the RNG held before."""
    seen: list[dict[str, torch.Tensor]] = []

    def trainer(model: Any, *args: Any, **kwargs: Any) -> None:
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        raise _Captured

    monkeypatch.setattr("semparts_reid.engine.trainer.DomainAdaptTrainer", trainer)
    source, target = tiny_pair
    for i, seed in enumerate((5, 5, 6)):
        torch.manual_seed(200 + i)
        with pytest.raises(_Captured):
            ex.run_direction(ex.DemoSettings.quick(), source, target, tmp_path, seed, "cpu")

    def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    assert same(seen[0], seen[1])
    assert not same(seen[0], seen[2])


def test_format_table_has_paper_columns() -> None:
    row = {"R1": 0.5, "R5": 0.6, "R10": 0.7, "mAP": 0.4}
    text = ex.format_table({"a -> b": {"ECN (global)": row}, "b -> a": {"ECN (global)": row}})
    assert "a -> b" in text and "b -> a" in text
    assert "R1" in text and "mAP" in text
    assert " 50.0  60.0  70.0   40.0" in text


def test_demo_says_so_without_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> None:
        raise viz.PlotUnavailable("plots need matplotlib: pip install 'semparts-reid[plot]'")

    monkeypatch.setattr(viz, "_pyplot", missing)
    results = {"a -> b": {"ECN (global)": {"cmc": [0.5, 1.0]}}}
    ex.figures.write_figures(tmp_path, results, None)
    assert "figures skipped: plots need matplotlib" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_a_bad_direction_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directions='c2d'"):
        ex.run_demo(tmp_path, directions="c2d")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--direction", "a2b", "--output-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ECN + semantic parts" in text
    payload = json.loads((out / "results.json").read_text())
    rows = payload["results"]["a -> b"]
    assert list(rows) == [f"{m} ({f})" for m in (
        "Direct transfer", "ECN", "ECN + semantic parts", "Clustering",
        "Clustering + semantic parts") for f in ("global", "global + parts")]
    assert "withheld" in payload["target_part_labels"] and "withheld" in text
    for row in rows.values():
        assert 0.0 <= row["mAP"] <= 1.0 and 0.0 <= row["R1"] <= row["R5"] <= row["R10"] <= 1.0
    assert ex.format_table(payload["results"]) in text
    pytest.importorskip("matplotlib")
    assert (out / "cmc.png").stat().st_size > 1000
    assert (out / "part_maps.png").stat().st_size > 1000
    assert (out / "ranked.png").stat().st_size > 1000  # 8 queries of b, top 8, a -> b model
    # what a finished demo leaves: no resume state, only the models a user may reuse
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pt")) == [
        f"a2b/{ex.method_folder(ex.ADAPTATIONS[1])}/adapt_final.pt",
        "a2b/source/source_final.pt"]


def test_prune_keeps_the_source_and_paper_models_only(tmp_path: Path) -> None:
    d = tmp_path / "a2b"
    folders = ["source", *(ex.method_folder(m) for m in ex.ADAPTATIONS)]
    for name in folders:
        (d / name).mkdir(parents=True)
        (d / name / ("source_final.pt" if name == "source" else "adapt_final.pt")).write_bytes(b"x")
    removed = ex.prune_checkpoints(tmp_path, [d])
    kept = sorted(p.parent.name for p in d.rglob("*.pt"))
    assert kept == sorted(["source", ex.method_folder(ex.ADAPTATIONS[1])])
    assert len(removed) == len(ex.ADAPTATIONS) - 1


def test_part_map_loss_can_be_set_apart_from_the_part_features(
    tmp_path: Path, recorded: list[Any]
) -> None:
    """The benchmarks' diagnostic rows: part-map loss without part features, and back."""
    settings = ex.DemoSettings.quick()
    for method in (ex.Adaptation("maps only", "ecn", parts=False, part_map_loss=True),
                   ex.Adaptation("features only", "ecn", parts=True, part_map_loss=False)):
        ex.adapt_from(settings, method, tmp_path / "s.pt", _EightImages(), _EightImages(),
                        tmp_path, 0, "cpu")
    assert [v for k, v in recorded if k == "adapt"] == [(False, "auto"), (True, "none")]
    assert [m.trains_part_maps for m in ex.ADAPTATIONS] == [False, True, False, True]
    # only the demo's ECN + parts method draws the part-map and ranking figures
    assert [ex.is_part_figure_method(m) for m in ex.ADAPTATIONS] == [
        False, True, False, False]
    assert not ex.is_part_figure_method(
        ex.Adaptation("ECN + part features only", "ecn", parts=True, part_map_loss=False))


def test_an_oracle_row_reads_the_target_maps_and_no_demo_method_does(
    tmp_path: Path, recorded: list[Any]
) -> None:
    settings = ex.DemoSettings.quick()
    assert not settings.target_part_maps
    oracle = ex.Adaptation("ECN + semantic parts with target GT maps", "ecn", parts=True,
                             target_part_maps=True)
    for method in (ex.ADAPTATIONS[1], oracle):
        ex.adapt_from(settings, method, tmp_path / "s.pt", _EightImages(), _EightImages(),
                        tmp_path, 0, "cpu")
    assert [v[1] for k, v in recorded if k == "objective"] == [False, True]
    assert not any(m.target_part_maps for m in ex.ADAPTATIONS)


def test_a_detached_row_adapts_with_detached_masks(tmp_path: Path, recorded: list[Any]) -> None:
    settings = ex.DemoSettings.quick()
    detached = ex.Adaptation("ECN + semantic parts, detached masks", "ecn", parts=True,
                               detach_masks=True)
    for method in (ex.ADAPTATIONS[1], detached):
        ex.adapt_from(settings, method, tmp_path / "s.pt", _EightImages(), _EightImages(),
                        tmp_path, 0, "cpu")
    assert [v for k, v in recorded if k == "detach_masks"] == [False, True]
    assert not any(m.detach_masks for m in ex.ADAPTATIONS)


def test_an_override_row_adapts_with_its_setting(
    tmp_path: Path, recorded: list[Any]
) -> None:
    settings = ex.DemoSettings.quick()
    balanced = ex.Adaptation("ECN + semantic parts, part heads 1/3", "ecn", parts=True,
                               overrides=(("part_head_weight", 1 / 3),))
    for method in (ex.ADAPTATIONS[1], balanced):
        ex.adapt_from(settings, method, tmp_path / "s.pt", _EightImages(), _EightImages(),
                        tmp_path, 0, "cpu")
    assert [v for k, v in recorded if k == "part_head_weight"] == [1.0, 1 / 3]
    assert not any(m.overrides for m in ex.ADAPTATIONS)


@pytest.mark.parametrize("overrides, match", [
    ((("no_such_field", 1),), r"overrides \['no_such_field'\]: not TrainConfig fields"),
    ((("part_head_weight", -1.0),), "part_head_weight=-1.0"),
])
def test_an_override_must_name_a_valid_setting(tmp_path: Path, recorded: list[Any],
                                               overrides: Any, match: str) -> None:
    bad = ex.Adaptation("X", "ecn", parts=True, overrides=overrides)
    with pytest.raises(InputError, match=match):
        ex.adapt_from(ex.DemoSettings.quick(), bad, tmp_path / "s.pt", _EightImages(),
                        _EightImages(), tmp_path, 0, "cpu")
