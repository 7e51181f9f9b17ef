"""``--pooling``, ``--last-stride`` and ``--num-workers`` on ``evaluate`` and ``extract``, and
the ``protocol:`` line ``evaluate`` prints (camera ids known or not)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from semparts_reid.cli import main
from semparts_reid.cli.common import UsageError
from semparts_reid.cli.model_options import model_from_args


def _ns(**kw: Any) -> argparse.Namespace:
    base = {"checkpoint": None, "model": None, "pooling": None, "last_stride": None}
    return argparse.Namespace(**{**base, **kw})


def test_model_name_is_built_with_the_options() -> None:
    model = model_from_args(_ns(model="semparts_resnet18", pooling="gem", last_stride=2))
    assert model.build_kwargs["pooling"] == "gem" and model.build_kwargs["last_stride"] == 2
    assert model.backbone.output_stride == 32 and not model.training


def test_checkpoint_last_stride_is_overridden_with_the_same_weights(tiny_ckpt: Path) -> None:
    from semparts_reid.inference import load_model_from_checkpoint

    plain = load_model_from_checkpoint(tiny_ckpt)
    assert plain.build_kwargs["last_stride"] == 1
    model = model_from_args(_ns(checkpoint=str(tiny_ckpt), last_stride=2))
    assert model.build_kwargs["last_stride"] == 2 and model.backbone.output_stride == 32
    assert model.data_config == plain.data_config
    for (k, a), (_, b) in zip(plain.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 64, 32)
    with torch.no_grad():
        assert model.forward_features(x).shape[-2:] == (2, 1)
        assert plain.forward_features(x).shape[-2:] == (4, 2)
    same = model_from_args(_ns(checkpoint=str(tiny_ckpt), last_stride=1, pooling="avg"))
    assert same.build_kwargs == plain.build_kwargs


def test_checkpoint_pooling_must_match(tiny_ckpt: Path) -> None:
    with pytest.raises(UsageError, match=r"--pooling gem: .* pooling 'avg'.*GeM's p"):
        model_from_args(_ns(checkpoint=str(tiny_ckpt), pooling="gem"))
    with pytest.raises(UsageError, match="give --checkpoint FILE or --model NAME"):
        model_from_args(_ns())


def test_extract_passes_the_options(
    tiny_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import semparts_reid.inference as inference

    seen: dict[str, Any] = {}
    real = inference.FeatureExtractor

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self, model: Any, **kw: Any) -> None:
            seen.update(kw, stride=model.build_kwargs["last_stride"])
            super().__init__(model, **kw)

    monkeypatch.setattr(inference, "FeatureExtractor", Spy)
    argv = ["extract", "--dataset", "synthetic:b?size=tiny", "--checkpoint", str(tiny_ckpt),
            "--device", "cpu", "--precision", "fp32", "--last-stride", "2", "--num-workers",
            "0", "-o", str(tmp_path / "q.npz")]  # fmt: skip
    assert main(argv) == 0
    assert seen["num_workers"] == 0 and seen["stride"] == 2
    assert main([*argv[:-2], "--pooling", "gem", "-o", str(tmp_path / "x.npz")]) == 2


def test_evaluate_passes_the_options(
    tiny_ckpt: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import semparts_reid.inference as inference
    from semparts_reid.metrics.rank import evaluate_cmc_map

    seen: dict[str, Any] = {}

    def fake(model: Any, query: Any, gallery: Any, **kw: Any) -> Any:
        seen.update(kw, stride=model.build_kwargs["last_stride"])
        return evaluate_cmc_map(np.array([[0.1, 0.2]]), [1], [1, 2], [0], [1, 1])

    monkeypatch.setattr(inference, "evaluate_model", fake)
    argv = ["evaluate", "--checkpoint", str(tiny_ckpt), "--target", "synthetic:b?size=tiny",
            "--num-workers", "3", "--last-stride", "2"]  # fmt: skip
    assert main(argv) == 0
    assert seen["num_workers"] == 3 and seen["stride"] == 2
    assert "protocol: market1501 (cameras known)" in capsys.readouterr().out


def test_evaluate_features_reject_model_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli_helpers import features_file

    features_file(tmp_path / "q.npz", 10, 3, 1)
    features_file(tmp_path / "g.npz", 20, 3, 2)
    argv = ["evaluate", "--query-features", str(tmp_path / "q.npz"), "--gallery-features",
            str(tmp_path / "g.npz"), "--last-stride", "2", "--num-workers", "1"]  # fmt: skip
    assert main(argv) == 2
    assert "--last-stride, --num-workers apply to --checkpoint" in capsys.readouterr().err


def test_evaluate_features_without_cameras_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Feature files with camid -1 and the query images in the gallery: the query itself
    (same path) is the only item removed, and the protocol line says so."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(12, 8))
    pids, paths = np.repeat(np.arange(4), 3), np.array([f"/d/{i}.jpg" for i in range(12)])
    cams = np.full(12, -1)
    np.savez(tmp_path / "g.npz", features=feats, pids=pids, camids=cams, paths=paths)
    q = [0, 3, 6, 9]  # one image of each identity, also in the gallery
    np.savez(tmp_path / "q.npz", features=feats[q], pids=pids[q], camids=cams[q], paths=paths[q])
    argv = ["evaluate", "--query-features", str(tmp_path / "q.npz"), "--gallery-features",
            str(tmp_path / "g.npz"), "-o", str(tmp_path / "m.json")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = ("protocol: market1501 without camera ids: only the query image itself is removed "
            "from its gallery")  # fmt: skip
    assert line in out.splitlines()
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["cameras"] == "unknown" and got["protocol_note"] == line[len("protocol: "):]
    assert got["num_valid_queries"] == 4
    assert got["rank1"] < 1.0  # a query is not its own match (distance 0 would give 1.0)


def test_evaluate_a_folder_target_without_cameras(
    tiny_ckpt: Path, tiny_pair: tuple[Any, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, b = tiny_pair
    for split in ("query", "gallery"):
        for i, rec in enumerate(getattr(b, split)):
            out = tmp_path / "tree" / split / f"person{rec.pid}" / f"{i}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(rec.path, out)
    argv = ["evaluate", "--checkpoint", str(tiny_ckpt), "--target", f"folder:{tmp_path / 'tree'}",
            "--device", "cpu", "--precision", "fp32", "-o", str(tmp_path / "m.json")]  # fmt: skip
    assert main(argv) == 0
    assert "protocol: market1501 without camera ids" in capsys.readouterr().out
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["num_valid_queries"] == len(b.query) and got["target"].startswith("folder:")
