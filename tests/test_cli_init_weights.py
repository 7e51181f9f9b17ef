"""``adapt --init`` with a checkpoint of another architecture stops with a message
instead of training from random weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semparts_reid.cli import main
from semparts_reid.models.factory import build_model

TINY = "synthetic:{}?size=tiny"


def test_init_from_another_architecture_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
    assert str(ckpt) in err and "weight kernels of the model (41%" in err
    assert "strict=False" in err
    assert not (run / "metrics.jsonl").exists()
