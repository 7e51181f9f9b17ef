"""What docs/cli.md says the demo does: per direction one source model (a part model),
direct transfer with global and global + part features, then ECN and ECN + parts both
adapted from that same source checkpoint. Checked on a recording stand-in trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from semparts_reid import demo
from semparts_reid.metrics.rank import evaluate_cmc_map


class _Recorder:
    """Stands in for DomainAdaptTrainer: records the calls, returns fixed metrics."""

    log: list[tuple[str, Any]] = []

    def __init__(self, model: Any, source: Any, target: Any, config: Any) -> None:
        self.model, self.config = model, config
        self.log.append(("init", (model.arch, config.use_parts, config.part_labels)))

    def train_source(self, epochs: int) -> None:
        self.log.append(("train_source", (self.config.output_dir, epochs)))

    def load_weights(self, path: Any) -> None:
        self.log.append(("load_weights", Path(path)))

    def adapt(self, epochs: int) -> None:
        self.log.append(("adapt", (self.config.use_parts, self.config.part_labels)))

    def evaluate(self, mode: str = "global") -> Any:
        self.log.append(("evaluate", mode))
        import numpy as np

        pids = np.array([0, 1])
        return evaluate_cmc_map(np.array([[0.1, 0.9], [0.9, 0.1]]), pids, pids,
                                np.zeros(2, int), np.ones(2, int))  # fmt: skip


def test_one_source_model_per_direction_and_both_adaptations_start_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semparts_reid.engine.trainer as trainer_mod

    _Recorder.log = []
    monkeypatch.setattr(trainer_mod, "DomainAdaptTrainer", _Recorder)

    class _Data:
        num_train_pids = 4

    settings = demo.DemoSettings.quick()
    rows, _ = demo._run_direction(settings, _Data(), _Data(), tmp_path, seed=0, device="cpu")
    log = _Recorder.log
    assert [k for k, _ in log].count("train_source") == 1
    inits = [v for k, v in log if k == "init"]
    assert inits[0] == ("semparts_resnet18", True, "auto")  # the source model has parts
    assert ("semparts_resnet18", False, "none") in inits[1:]  # ECN: global only
    assert ("semparts_resnet18", True, "auto") in inits[1:]  # ECN + parts
    assert [v for k, v in log if k == "adapt"] == [(False, "none"), (True, "auto")]
    loads = [v for k, v in log if k == "load_weights"]
    assert loads == [tmp_path / "source" / "source_final.pt"] * 2
    evals = [v for k, v in log if k == "evaluate"]
    assert evals == ["global", settings.parts_eval_mode, "global", settings.parts_eval_mode]
    assert list(rows) == ["Direct transfer (global)", "Direct transfer (global + parts)",
                          "ECN (global)", "ECN + semantic parts"]  # fmt: skip
