"""``train`` / ``adapt`` with ``--tensorboard`` and the triplet-loss flags."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_helpers import TINY, TINY_FLAGS

from semparts_reid.cli import main
from semparts_reid.cli.main import build_parser
from semparts_reid.cli.train import config_for


def _config(*argv: str):  # noqa: ANN202 - a TrainConfig
    args = build_parser().parse_args(["adapt", "--source", "s", "--target", "t", *argv])
    return config_for(args)


def test_triplet_flags_reach_the_config() -> None:
    cfg = _config("--triplet-weight", "1", "--num-instances", "4", "--triplet-margin", "soft",
                  "--triplet-parts")  # fmt: skip
    o = cfg.optim
    assert (o.triplet_weight, o.triplet_margin, cfg.parts.triplet_parts) == (1.0, None, True)
    assert _config("--triplet-margin", "0.5").optim.triplet_margin == 0.5
    assert not _config().runtime.tensorboard and _config("--tensorboard").runtime.tensorboard


def test_triplet_margin_zero_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--source", TINY.format("a"), "--triplet-margin", "0"])
    assert code == 2
    assert "triplet_margin=0.0: expected a value > 0" in capsys.readouterr().err


def test_tensorboard_writes_event_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    argv = ["train", "--source", TINY.format("a"), *TINY_FLAGS, "--epochs", "1",
            "--output-dir", str(run), "--tensorboard"]  # fmt: skip
    assert main(argv) == 0
    assert f"tensorboard --logdir {run / 'tensorboard'}" in capsys.readouterr().out
    events = sorted((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    assert {"loss/total", "loss/source_id", "lr"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("loss/total")] == [2]
    assert (run / "metrics.jsonl").is_file()  # the JSON-lines log stays


def test_tensorboard_without_the_package_is_bad_input_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    run = tmp_path / "run"
    argv = ["train", "--source", "market1501:/nonexistent", *TINY_FLAGS, "--epochs", "1",
            "--output-dir", str(run), "--tensorboard"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--tensorboard: TensorBoard logging needs the tensorboard package" in err
    assert "semparts-reid[tensorboard]" in err and "/nonexistent" not in err
    assert not run.exists()
