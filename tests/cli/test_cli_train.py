"""``semparts-reid train`` / ``adapt`` (``cli/train.py``): flags, config, runs, refusals."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import TINY, TINY_FLAGS

from semparts_reid.cli import main
from semparts_reid.cli.main import build_parser
from semparts_reid.cli.train import config_for
from semparts_reid.engine.config import TrainConfig
from semparts_reid.errors import InputError
from semparts_reid.models.factory import build_model


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["adapt", "--source", "s", "--target", "t", *argv])


def test_every_train_config_field_is_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    out = capsys.readouterr().out
    from semparts_reid.engine.config import flat_fields

    # every leaf of TrainConfig and of its groups is a flat field, and so a flag
    leaves = set()
    for top in dataclasses.fields(TrainConfig):
        group = getattr(TrainConfig(), top.name)
        leaves |= ({f.name for f in dataclasses.fields(group)}
                   if dataclasses.is_dataclass(group) else {top.name})
    assert set(flat_fields()) == leaves and len(leaves) > 70
    for name in flat_fields():
        assert "--" + name.replace("_", "-") in out, name


def test_config_is_the_defaults_with_the_given_flags() -> None:
    cfg = config_for(_args("--epochs", "3", "--input-size", "64", "32", "--no-progress"))
    assert cfg == TrainConfig().replace(epochs=3, input_size=(64, 32), progress=False)


def test_resume_keeps_the_checkpoints_config_under_the_given_flags(tmp_path: Path) -> None:
    from semparts_reid.engine.checkpoint import save_checkpoint

    saved = TrainConfig().replace(epochs=7, lr=0.01, seed=3)
    ckpt = save_checkpoint({"model": {}, "config": dataclasses.asdict(saved)}, tmp_path / "r.pt")
    cfg = config_for(_args("--resume", str(ckpt), "--epochs", "9"))
    assert cfg == saved.replace(epochs=9)


def test_resume_from_a_file_without_config_is_bad_input(tmp_path: Path) -> None:
    from semparts_reid.engine.checkpoint import save_checkpoint

    ckpt = save_checkpoint({"model": {}}, tmp_path / "weights.pt")
    with pytest.raises(InputError, match=r"--resume: .*weights.pt is not a training checkpoint"):
        config_for(_args("--resume", str(ckpt)))


def test_init_from_another_architecture_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``adapt --init`` with another architecture's checkpoint stops with a message
    instead of training from random weights."""
    other = build_model("semparts_resnet50", num_classes=4)
    ckpt = tmp_path / "other_arch.pt"
    torch.save({"model": other.state_dict()}, ckpt)
    run = tmp_path / "run"
    code = main([
        "adapt", "--source", TINY.format("a"), "--target", TINY.format("b"),
        "--arch", "semparts_resnet18", "--pretrained", "none", "--input-size", "64", "32",
        "--num-workers", "0", "--epochs", "1", "--no-progress", "--output-dir", str(run),
        "--init", str(ckpt),
    ])
    err = capsys.readouterr().err
    assert code == 2, err  # bad input, not a crash, and no training
    assert str(ckpt) in err and "weight kernels of the model (42%" in err
    assert "strict=False" in err
    assert not (run / "metrics.jsonl").exists()


class _Captured(Exception):
    """Stops a run right after the trainer got its model."""


def test_run_seeds_the_model_initialisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--seed`` fixes the model's initial weights, whatever the global RNG held before."""
    from semparts_reid.cli.train import run

    seen: list[dict[str, torch.Tensor]] = []

    def trainer(model: Any, *args: Any, **kwargs: Any) -> None:
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        raise _Captured

    monkeypatch.setattr("semparts_reid.engine.trainer.DomainAdaptTrainer", trainer)
    for i, seed in enumerate((3, 3, 4)):
        torch.manual_seed(100 + i)
        torch.rand(7)
        cfg = TrainConfig().replace(arch="semparts_resnet18", pretrained=None, input_size=(64, 32),
                          output_dir=str(tmp_path), seed=seed)  # fmt: skip
        with pytest.raises(_Captured):
            run(cfg, TINY.format("a"), None, adapt=False)

    def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    assert same(seen[0], seen[1])
    assert not same(seen[0], seen[2])


@pytest.mark.slow
def test_train_extract_evaluate_export(tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = ["train", "--source", TINY.format("a"), "--target", TINY.format("b"), *TINY_FLAGS,
            "--epochs", "1", "--output-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    ckpt = run / "source_final.pt"
    assert ckpt.is_file()
    for split in ("query", "gallery"):
        argv = ["extract", "--checkpoint", str(ckpt), "--dataset", TINY.format("b"), "--split",
                split, "--precision", "fp32", "-o", str(tmp_path / f"{split}.npz")]  # fmt: skip
        assert main(argv) == 0
    argv = ["evaluate", "--query-features", str(tmp_path / "query.npz"), "--gallery-features",
            str(tmp_path / "gallery.npz"), "-o", str(tmp_path / "from_feats.json")]  # fmt: skip
    assert main(argv) == 0
    argv = ["evaluate", "--checkpoint", str(ckpt), "--target", TINY.format("b"), "--precision",
            "fp32", "-o", str(tmp_path / "from_ckpt.json")]  # fmt: skip
    assert main(argv) == 0
    from_feats = json.loads((tmp_path / "from_feats.json").read_text())
    from_ckpt = json.loads((tmp_path / "from_ckpt.json").read_text())
    assert from_feats["mAP"] == pytest.approx(from_ckpt["mAP"], abs=1e-6)
    pytest.importorskip("onnxruntime")
    assert main(["export", str(ckpt), "-o", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1000


@pytest.mark.slow
def test_adapt_with_checkpoint_then_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "adapt"
    common = ["adapt", "--source", TINY.format("a"), "--target", TINY.format("b"), *TINY_FLAGS,
              "--output-dir", str(run)]  # fmt: skip
    assert main([*common, "--epochs", "1"]) == 0
    assert not (run / "last.pt").exists()  # a completed run keeps no resume state
    (run / "metrics.jsonl").unlink()  # the second run's records only
    assert main([*common, "--epochs", "1", "--keep-resume"]) == 0
    first = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in first] == [1]
    assert f"checkpoints and metrics.jsonl in {run}" in capsys.readouterr().out
    argv = ["adapt", "--source", TINY.format("a"), "--target", TINY.format("b"), "--resume",
            str(run / "last.pt"), "--epochs", "2"]  # fmt: skip
    assert main(argv) == 0
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert "eval" in records[-1]
    assert "target: " in capsys.readouterr().out


def test_recipe_flag_is_the_base_and_flags_change_it() -> None:
    cfg = config_for(_args("--recipe", "parts-aux", "--epochs", "3", "--eval-mode", "global"))
    assert cfg == TrainConfig.from_recipe("parts-aux", epochs=3, eval_mode="global")
    assert config_for(_args()) == TrainConfig.from_recipe("paper")


def test_recipe_and_resume_together_are_bad_input() -> None:
    with pytest.raises(InputError, match="--recipe"):
        config_for(_args("--recipe", "paper", "--resume", "x.pt"))
