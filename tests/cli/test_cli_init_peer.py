"""``semparts-reid adapt --init their.pth``: torchreid and fast-reid checkpoints start a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import TINY, TINY_FLAGS

from semparts_reid.cli import main
from semparts_reid.cli.train import INIT_FORMATS
from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.hub import WEIGHT_FORMATS
from semparts_reid.models.factory import build_model


def _peer_files(tmp_path: Path, classes: int) -> tuple[dict[str, torch.Tensor], Path, Path]:
    """A random ``semparts_resnet18`` written in torchreid's and in fast-reid's layout."""
    torch.manual_seed(7)
    src = build_model("semparts_resnet18", num_classes=classes)
    with torch.no_grad():
        for name, t in src.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if name.endswith("running_var")
                        else torch.randn_like(t) * 0.05)
    state = {k: v.clone() for k, v in src.state_dict().items()}
    trunk = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    classifier = state["id_classifier.weight"][0]
    torchreid = tmp_path / "torchreid.pth.tar"
    torch.save({"state_dict": {**trunk, "classifier.weight": classifier,
                               "classifier.bias": torch.zeros(classes)},
                "epoch": 3, "rank1": np.float64(0.5)}, torchreid)
    fastreid = tmp_path / "fastreid.pth"
    neck = {f"heads.bottleneck.0.{k[len('global_neck.'):]}": v
            for k, v in state.items() if k.startswith("global_neck.")}
    torch.save({"model": {**{f"backbone.{k}": v for k, v in trunk.items()}, **neck,
                          "heads.weight": classifier}, "iteration": 9}, fastreid)
    return state, torchreid, fastreid


def _adapt(init: Path, out: Path, *extra: str) -> int:
    return main(["adapt", "--source", TINY.format("a"), "--target", TINY.format("b"),
                 *TINY_FLAGS, "--epochs", "1", "--output-dir", str(out),
                 "--init", str(init), *extra])


@pytest.mark.parametrize("layout", ["torchreid", "fastreid"])
def test_adapt_init_loads_a_peer_checkpoint(
    layout: str, tiny_pair: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, torchreid, fastreid = _peer_files(tmp_path, tiny_pair[0].num_train_pids)
    seen: dict[str, torch.Tensor] = {}

    def fit(self: DomainAdaptTrainer) -> dict[str, Any]:
        seen.update({k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()})
        return {}

    monkeypatch.setattr(DomainAdaptTrainer, "fit", fit)
    init = torchreid if layout == "torchreid" else fastreid
    assert _adapt(init, tmp_path / "run") == 0
    for key, value in state.items():
        if key.startswith("backbone.") or (layout == "fastreid" and key.startswith("global_neck")):
            assert torch.equal(seen[key], value), key
    assert torch.equal(seen["id_classifier.weight"][0], state["id_classifier.weight"][0])


def test_adapt_init_format_that_does_not_fit_is_bad_input(
    tiny_pair: tuple[Any, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, fastreid = _peer_files(tmp_path, tiny_pair[0].num_train_pids)
    run = tmp_path / "run"
    assert _adapt(fastreid, run, "--init-format", "torchreid") == 2
    err = capsys.readouterr().err
    assert "format='torchreid'" in err and "backbone.conv1.weight" in err
    assert not (run / "metrics.jsonl").exists()


def test_init_format_choices_are_the_hub_formats() -> None:
    assert INIT_FORMATS == WEIGHT_FORMATS
