"""``semparts-reid evaluate`` (``cli/evaluate.py``): from feature files, and from a
checkpoint through the library's one evaluation path, ``inference.evaluate_model``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import TINY, features_file

from semparts_reid.cli import main
from semparts_reid.metrics.rank import evaluate_cmc_map

TARGET = TINY.format("b")


def _from_cli(ckpt: Path, out: Path, *flags: str) -> dict[str, Any]:
    argv = ["evaluate", "--checkpoint", str(ckpt), "--target", TARGET, "--device", "cpu",
            "--precision", "fp32", "-o", str(out), *flags]  # fmt: skip
    assert main(argv) == 0
    got = dict(json.loads(out.read_text()))
    assert got.pop("protocol_note").startswith("market1501 (cameras known)")  # the printed line
    return got


def _from_library(ckpt: Path, **kwargs: Any) -> dict[str, Any]:
    from semparts_reid.data.datasets import build_dataset
    from semparts_reid.inference import evaluate_model, load_model_from_checkpoint

    ds = build_dataset(TARGET)
    model = load_model_from_checkpoint(ckpt)
    metrics = evaluate_model(model, ds.query, ds.gallery, device="cpu", precision="fp32",
                             batch_size=64, **kwargs)  # fmt: skip
    return dict(json.loads(json.dumps(metrics.as_dict(), default=float)))


def test_evaluate_from_saved_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    q = features_file(tmp_path / "q.npz", 40, 10, 1)
    g = features_file(tmp_path / "g.npz", 120, 10, 2)
    out_json = tmp_path / "m.json"
    argv = ["evaluate", "--query-features", str(tmp_path / "q.npz"),
            "--gallery-features", str(tmp_path / "g.npz"), "--output", str(out_json)]  # fmt: skip
    assert main(argv) == 0
    expected = evaluate_cmc_map(
        (q["features"], g["features"]), q["pids"], g["pids"], q["camids"], g["camids"]
    )
    got = json.loads(out_json.read_text())
    assert got["mAP"] == pytest.approx(expected.mAP, abs=1e-9)
    assert "mAP" in capsys.readouterr().out


def test_saved_features_with_rerank_match_the_library(tmp_path: Path) -> None:
    from semparts_reid.metrics.rerank import re_ranking_from_features

    q = features_file(tmp_path / "q.npz", 30, 8, 1)
    g = features_file(tmp_path / "g.npz", 60, 8, 2)
    argv = ["evaluate", "--query-features", str(tmp_path / "q.npz"), "--gallery-features",
            str(tmp_path / "g.npz"), "--rerank", "--metric", "euclidean", "--max-rank", "10",
            "-o", str(tmp_path / "m.json")]  # fmt: skip
    assert main(argv) == 0
    dist = re_ranking_from_features(q["features"], g["features"], metric="euclidean")
    expected = evaluate_cmc_map(dist, q["pids"], g["pids"], q["camids"], g["camids"],
                                max_rank=10)  # fmt: skip
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["mAP"] == pytest.approx(expected.mAP, abs=1e-9)
    assert len(got["cmc"]) == 10


def test_evaluate_rejects_a_feature_file_without_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.savez(tmp_path / "q.npz", features=np.zeros((3, 4)))
    features_file(tmp_path / "g.npz", 10, 3, 0)
    argv = ["evaluate", "--query-features", str(tmp_path / "q.npz"),
            "--gallery-features", str(tmp_path / "g.npz")]  # fmt: skip
    assert main(argv) == 2
    assert "lacks ['pids', 'camids']" in capsys.readouterr().err


def test_feature_files_of_different_dimensions_are_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features_file(tmp_path / "q.npz", 10, 3, 0)
    np.savez(tmp_path / "g.npz", features=np.ones((5, 8)), pids=np.arange(5),
             camids=np.zeros(5, int))  # fmt: skip
    argv = ["evaluate", "--query-features", str(tmp_path / "q.npz"),
            "--gallery-features", str(tmp_path / "g.npz")]  # fmt: skip
    assert main(argv) == 2
    assert "dimension 16, --gallery-features 8" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arrays", "needle"),
    [
        ({"features": np.full((3, 4), np.nan), "pids": np.arange(3), "camids": np.arange(3)},
         "NaN or infinite"),
        ({"features": np.ones((3, 4)), "pids": np.arange(2), "camids": np.arange(3)},
         "'pids' has shape (2,)"),
        ({"features": np.ones(3), "pids": np.arange(3), "camids": np.arange(3)},
         "expected (N, D) numbers"),
    ],
)
def test_load_feature_file_names_what_is_wrong(
    arrays: dict[str, np.ndarray], needle: str, tmp_path: Path
) -> None:
    from semparts_reid.cli.common import UsageError
    from semparts_reid.cli.evaluate import load_feature_file
    from semparts_reid.errors import InputError

    np.savez(tmp_path / "f.npz", **arrays)
    with pytest.raises(UsageError, match="--query-features") as exc:
        load_feature_file(str(tmp_path / "f.npz"), "--query-features")
    assert needle in str(exc.value) and isinstance(exc.value, InputError)
    (tmp_path / "bad.npz").write_text("not numpy")
    with pytest.raises(UsageError, match="not a readable .npz"):
        load_feature_file(str(tmp_path / "bad.npz"), "--gallery-features")


def test_a_file_that_is_not_a_checkpoint_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "notes.pt"
    bogus.write_text("this is not a checkpoint\n")
    code = main(["evaluate", "--checkpoint", str(bogus), "--target", TARGET])
    assert code == 2
    err = capsys.readouterr().err
    assert "notes.pt" in err and "not a readable checkpoint" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("mode", "metric", "rerank"),
    [
        ("global", "cosine", False),
        ("concat", "cosine", False),
        ("parts", "cosine", False),
        ("parts", "euclidean", False),
        ("global", "euclidean", True),
    ],
)
def test_checkpoint_metrics_are_exactly_those_of_evaluate_model(
    mode: str, metric: str, rerank: bool, tiny_ckpt: Path, tmp_path: Path
) -> None:
    """The command is ``inference.evaluate_model`` on the checkpoint: same numbers."""
    flags = ["--mode", mode, "--metric", metric, "--max-rank", "20", "--protocol", "market1501",
             "--ap-mode", "trapezoid", *(["--rerank"] if rerank else [])]  # fmt: skip
    got = _from_cli(tiny_ckpt, tmp_path / "m.json", *flags)
    expected = _from_library(tiny_ckpt, mode=mode, metric=metric, rerank=rerank, max_rank=20,
                             ap_mode="trapezoid")  # fmt: skip
    assert got.pop("checkpoint") == str(tiny_ckpt) and got.pop("target") == TARGET
    assert got == expected
    assert got["ap_mode"] == "trapezoid" and len(got["cmc"]) == 20


def test_every_option_reaches_evaluate_model(
    tiny_ckpt: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import semparts_reid.inference as inference

    seen: dict[str, Any] = {}
    real = inference.evaluate_model

    def spy(model: Any, query: Any, gallery: Any, **kwargs: Any) -> Any:
        seen.update(kwargs, n=(len(query), len(gallery)))
        return real(model, query, gallery, **kwargs)

    monkeypatch.setattr(inference, "evaluate_model", spy)
    argv = ["evaluate", "--checkpoint", str(tiny_ckpt), "--target", TARGET, "--mode", "concat",
            "--metric", "euclidean", "--rerank", "--max-rank", "7", "--protocol", "cuhk03",
            "--ap-mode", "trapezoid", "--device", "cpu", "--precision", "fp32",
            "--batch-size", "5"]  # fmt: skip
    assert main(argv) == 0
    assert seen == {
        "mode": "concat", "metric": "euclidean", "rerank": True, "max_rank": 7,
        "protocol": "cuhk03", "ap_mode": "trapezoid", "device": "cpu", "precision": "fp32",
        "batch_size": 5, "num_workers": None, "n": (14, 37),
    }  # fmt: skip
    assert "mAP" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["global", "parts"])
def test_the_trainer_and_the_command_agree_on_a_checkpoint(
    mode: str, tiny_pair: Any, tmp_path: Path
) -> None:
    """``trainer.evaluate()`` and ``semparts-reid evaluate`` on the checkpoint the trainer
    saved: one evaluation path, the same metrics."""
    import torch

    from semparts_reid.engine.config import TrainConfig
    from semparts_reid.engine.trainer import DomainAdaptTrainer
    from semparts_reid.models.factory import build_model

    source, target = tiny_pair
    torch.manual_seed(0)
    model = build_model("semparts_resnet18", num_classes=source.num_train_pids,
                        input_size=(64, 32))  # fmt: skip
    config = TrainConfig().replace(arch="semparts_resnet18", pretrained=None, input_size=(64, 32),
                         device="cpu", precision="fp32", eval_batch_size=64, num_workers=0,
                         output_dir=str(tmp_path), progress=False)  # fmt: skip
    trainer = DomainAdaptTrainer(model, source, target, config)
    ckpt = trainer.save(tmp_path / "t.pt")
    assert ckpt is not None
    from_trainer = json.loads(json.dumps(trainer.evaluate(mode=mode).as_dict(), default=float))
    got = _from_cli(ckpt, tmp_path / "m.json", "--mode", mode)
    assert got.pop("checkpoint") == str(ckpt) and got.pop("target") == TARGET
    assert got == from_trainer
