"""``semparts-reid download`` / ``export`` (``cli/weights.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from semparts_reid.cli import main


def test_download_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    from semparts_reid.hub import list_pretrained

    assert main(["download", "--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == list(list_pretrained()) and "resnet50" in " ".join(listed)
    assert main(["download"]) == 0  # no names: the registry too
    assert capsys.readouterr().out.split() == listed


def test_a_failed_download_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEMPARTS_REID_OFFLINE", "1")
    code = main(["download", "resnet18.tv_in1k", "--output-dir", str(tmp_path), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "resnet18" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_export_writes_an_onnx_file(
    tiny_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_ckpt), "-o", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert f"wrote {out}" in capsys.readouterr().out


def test_a_checkpoint_whose_weights_do_not_fit_is_bad_input(
    tiny_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    payload = torch.load(tiny_ckpt, weights_only=True)
    del payload["model"]["global_neck.bias"]  # edited by hand: no longer this arch's weights
    ckpt = tmp_path / "edited.pt"
    torch.save(payload, ckpt)
    assert main(["export", str(ckpt), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "global_neck.bias" in err and "Traceback" not in err
    assert err.startswith("semparts-reid export: error:")
