"""The ``semparts-reid`` command: exit codes, messages, and each sub-command end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semparts_reid.cli import main
from semparts_reid.metrics.rank import evaluate_cmc_map

TINY = "synthetic:{}?size=tiny"

# a tiny, fast training configuration (every TrainConfig field is a flag)
TINY_FLAGS = [
    "--arch",
    "semparts_resnet18",
    "--pretrained",
    "none",
    "--input-size",
    "64",
    "32",
    "--batch-size",
    "8",
    "--target-batch-size",
    "8",
    "--num-workers",
    "0",
    "--max-steps-per-epoch",
    "2",
    "--eval-batch-size",
    "64",
    "--no-progress",
    "--neighbour-start-epoch",
    "1",
]


def _features_file(path: Path, n: int, n_ids: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    pids = rng.integers(0, n_ids, n)
    centroids = np.random.default_rng(99).normal(size=(n_ids, 16))
    arrays = {
        "features": centroids[pids] + 0.8 * rng.normal(size=(n, 16)),
        "pids": pids,
        "camids": rng.integers(0, 4, n),
    }
    np.savez(path, **arrays)
    return arrays


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "train", "adapt", "evaluate", "extract", "download", "export", "datasets"):
        assert cmd in out


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "semparts_reid", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "semparts-reid" in proc.stdout


def test_every_train_config_field_is_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    from semparts_reid.engine.config import TrainConfig

    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    out = capsys.readouterr().out
    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in out, field.name


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["evaluate"], "give either --query-features"),
        (
            ["evaluate", "--query-features", "missing_q.npz", "--gallery-features", "g.npz"],
            "missing_q.npz",
        ),
        (["adapt", "--source", "synthetic:a"], "--target"),
        (["train", "--source", "nonsense"], "nonsense"),
        (["train", "--source", "market1501:/no/such/folder"], "/no/such/folder"),
        (["train", "--source", "synthetic:a", "--epochs", "-1"], "epochs"),
        (["extract", "-o", "x.npy"], "--checkpoint"),
        (["no-such-command"], "no-such-command"),
        (["train", "--source", "synthetic:a", "--seed", "-1"], "seed=-1"),
        (["train", "--source", "synthetic:a", "--seed", str(2**64)], "seed="),
        (["train", "--source", "synthetic:a?sise=tiny"], "sise"),
        (["train", "--source", "synthetic:a?size=tiny", "--arch", "resnet9000"], "resnet9000"),
        (["datasets", "imagelist:/no/such/list.csv"], "/no/such/list.csv"),
        (["extract", "--model", "semparts_resnet18", "a.jpg", "-o", "f.txt"], "f.txt"),
        (["extract", "--checkpoint", "/no/such/model.pt", "--dataset",
          "synthetic:a?size=tiny&progress=false", "-o", "f.npy"], "model.pt"),
        (["extract", "--model", "semparts_resnet18", "--batch-size", "0", "-o", "f.npy"],
         "--batch-size"),
        (["evaluate", "--checkpoint", "x.pt", "--target", "synthetic:a", "--device", "gpu"],
         "device='gpu'"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert "Traceback" not in err
    assert len(err.splitlines()) <= 2  # argparse may print its usage line first


def test_evaluate_from_saved_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    q = _features_file(tmp_path / "q.npz", 40, 10, 1)
    g = _features_file(tmp_path / "g.npz", 120, 10, 2)
    out_json = tmp_path / "m.json"
    code = main(
        [
            "evaluate",
            "--query-features",
            str(tmp_path / "q.npz"),
            "--gallery-features",
            str(tmp_path / "g.npz"),
            "--json",
            str(out_json),
        ]
    )
    assert code == 0
    expected = evaluate_cmc_map(
        (q["features"], g["features"]), q["pids"], g["pids"], q["camids"], g["camids"]
    )
    got = json.loads(out_json.read_text())
    assert got["mAP"] == pytest.approx(expected.mAP, abs=1e-9)
    assert "mAP" in capsys.readouterr().out


def test_evaluate_rejects_a_feature_file_without_ids(tmp_path: Path) -> None:
    np.savez(tmp_path / "q.npz", features=np.zeros((3, 4)))
    _features_file(tmp_path / "g.npz", 10, 3, 0)
    assert (
        main(
            [
                "evaluate",
                "--query-features",
                str(tmp_path / "q.npz"),
                "--gallery-features",
                str(tmp_path / "g.npz"),
            ]
        )
        == 2
    )


def test_datasets_and_download_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets"]) == 0
    assert "market1501" in capsys.readouterr().out
    assert main(["datasets", TINY.format("a")]) == 0
    assert "train" in capsys.readouterr().out
    assert main(["download", "--list"]) == 0
    assert "resnet50" in capsys.readouterr().out


@pytest.mark.slow
def test_train_extract_evaluate_export(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--source",
            TINY.format("a"),
            "--target",
            TINY.format("b"),
            *TINY_FLAGS,
            "--epochs",
            "1",
            "--output-dir",
            str(run),
        ]
    )
    assert code == 0
    ckpt = run / "source_final.pt"
    assert ckpt.is_file()
    for split in ("query", "gallery"):
        assert (
            main(
                [
                    "extract",
                    "--checkpoint",
                    str(ckpt),
                    "--dataset",
                    TINY.format("b"),
                    "--split",
                    split,
                    "--precision",
                    "fp32",
                    "-o",
                    str(tmp_path / f"{split}.npz"),
                ]
            )
            == 0
        )
    assert (
        main(
            [
                "evaluate",
                "--query-features",
                str(tmp_path / "query.npz"),
                "--gallery-features",
                str(tmp_path / "gallery.npz"),
                "--json",
                str(tmp_path / "from_feats.json"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(ckpt),
                "--target",
                TINY.format("b"),
                "--precision",
                "fp32",
                "--json",
                str(tmp_path / "from_ckpt.json"),
            ]
        )
        == 0
    )
    from_feats = json.loads((tmp_path / "from_feats.json").read_text())
    from_ckpt = json.loads((tmp_path / "from_ckpt.json").read_text())
    assert from_feats["mAP"] == pytest.approx(from_ckpt["mAP"], abs=1e-6)
    pytest.importorskip("onnxruntime")
    assert main(["export", str(ckpt), "-o", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1000


@pytest.mark.slow
def test_adapt_with_checkpoint_then_resume(tmp_path: Path) -> None:
    run = tmp_path / "adapt"
    common = [
        "adapt",
        "--source",
        TINY.format("a"),
        "--target",
        TINY.format("b"),
        *TINY_FLAGS,
        "--output-dir",
        str(run),
    ]
    assert main([*common, "--epochs", "1"]) == 0
    first = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in first] == [1]
    assert (
        main(
            [
                "adapt",
                "--source",
                TINY.format("a"),
                "--target",
                TINY.format("b"),
                "--resume",
                str(run / "last.pt"),
                "--epochs",
                "2",
            ]
        )
        == 0
    )
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert "eval" in records[-1]


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--direction", "a2b", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ECN + semantic parts" in text
    payload = json.loads((out / "results.json").read_text())
    rows = payload["results"]["a -> b"]
    assert list(rows) == [
        "Direct transfer (global)",
        "Direct transfer (global + parts)",
        "ECN (global)",
        "ECN + semantic parts",
    ]
    for row in rows.values():
        assert 0.0 <= row["mAP"] <= 1.0 and 0.0 <= row["R1"] <= row["R5"] <= row["R10"] <= 1.0
    pytest.importorskip("matplotlib")
    assert (out / "cmc.png").stat().st_size > 1000
    assert (out / "part_maps.png").stat().st_size > 1000


def test_failed_download_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEMPARTS_REID_OFFLINE", "1")
    code = main(["download", "resnet18.tv_in1k", "--cache-dir", str(tmp_path), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "resnet18" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "error",
    [RuntimeError("internal bug"), ValueError("internal bug"), KeyError("internal bug")],
    ids=["RuntimeError", "ValueError", "KeyError"],
)
def test_a_bug_exits_1_with_a_hint_and_debug_prints_the_traceback(
    error: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ValueError/KeyError from our own code is a bug (exit 1), not bad input (exit 2)."""
    import semparts_reid.data.datasets as datasets

    def broken_library_function(spec: str) -> None:
        raise error

    monkeypatch.setattr(datasets, "build_dataset", broken_library_function)
    assert main(["datasets", TINY.format("a")]) == 1
    err = capsys.readouterr().err
    name = type(error).__name__
    assert f"unexpected {name}: internal bug" in err and "--debug" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["--debug", "datasets", TINY.format("a")]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "broken_library_function" in err
    assert f"unexpected {name}: internal bug" in err


def test_bad_input_with_debug_prints_the_traceback_and_still_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--debug", "datasets", "market1501:/no/such/folder"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "DatasetLayoutError" in err
    assert err.strip().splitlines()[-1].startswith("semparts-reid datasets: error:")


def test_a_bad_dataset_path_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "Market-1501"
    assert main(["datasets", f"market1501:{missing}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err
    assert err.startswith("semparts-reid datasets: error:") and "Traceback" not in err


def test_a_file_that_is_not_a_checkpoint_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "notes.pt"
    bogus.write_text("this is not a checkpoint\n")
    code = main(["evaluate", "--checkpoint", str(bogus), "--target", TINY.format("b")])
    assert code == 2
    err = capsys.readouterr().err
    assert "notes.pt" in err and "not a readable checkpoint" in err and "Traceback" not in err


def test_extract_from_an_image_list(tmp_path: Path) -> None:
    """``extract --dataset imagelist:/data/list.csv`` as docs/cli.md shows it."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = ["path,pid,camid,split"]
    for i, (pid, cam, split) in enumerate(
        [(3, 0, "query"), (3, 1, "gallery"), (5, 0, "query"), (5, 2, "gallery")]
    ):
        Image.fromarray(rng.integers(0, 256, (64, 32, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        rows.append(f"{i}.png,{pid},{cam},{split}")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    ckpt = _tiny_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "q.npz"
    argv = ["extract", "--checkpoint", str(ckpt), "--dataset", f"imagelist:{tmp_path / 'list.csv'}",
            "--split", "query", "--precision", "fp32", "-o", str(out)]
    assert main(argv) == 0
    data = np.load(out)
    assert [Path(p).name for p in data["paths"]] == ["0.png", "2.png"]
    assert data["pids"].tolist() == [3, 5] and data["camids"].tolist() == [0, 0]
    assert data["features"].shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(data["features"], axis=1), 1.0, atol=1e-5)


def _tiny_checkpoint(path: Path) -> Path:
    import torch

    from semparts_reid.engine.checkpoint import model_payload, save_checkpoint
    from semparts_reid.models.factory import build_model

    torch.manual_seed(0)
    model = build_model("semparts_resnet18", input_size=(64, 32)).eval()
    return save_checkpoint(model_payload(model), path)


@pytest.mark.parametrize("mode", ["global", "parts"])
def test_evaluate_checkpoint_uses_the_metric(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``evaluate --checkpoint ... --metric euclidean`` ranks by Euclidean distance."""
    import torch
    import torch.nn.functional as F

    import semparts_reid.metrics.rank as rank
    from semparts_reid.data.datasets import build_dataset
    from semparts_reid.engine.evaluation import extract_features
    from semparts_reid.inference.extractor import load_model_from_checkpoint
    from semparts_reid.metrics.distance import compute_distance
    from semparts_reid.metrics.part_distance import part_aware_distance
    from semparts_reid.precision import resolve_precision

    ckpt = _tiny_checkpoint(tmp_path / "m.pt")
    target = TINY.format("b")
    seen: dict[str, np.ndarray] = {}
    real = rank.evaluate_cmc_map

    def spy(dist: object, *args: object, **kwargs: object) -> object:
        seen["dist"] = np.asarray(dist)
        return real(dist, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rank, "evaluate_cmc_map", spy)
    out = {}
    for metric in ("cosine", "euclidean"):
        argv = ["evaluate", "--checkpoint", str(ckpt), "--target", target, "--mode", mode,
                "--precision", "fp32", "--metric", metric]
        assert main(argv) == 0
        out[metric] = seen.pop("dist")
    # the distances by hand, on the features as the extractor returns them (L2-normalised)
    ds = build_dataset(target)
    model = load_model_from_checkpoint(ckpt)
    kw = {"policy": resolve_precision("cpu", "fp32"), "data_config": model.data_config}
    q, g = extract_features(model, ds.query, **kw), extract_features(model, ds.gallery, **kw)
    unit = {k: F.normalize(v["global"], dim=1) for k, v in (("q", q), ("g", g))}
    if mode == "global":
        expected = compute_distance(unit["q"], unit["g"], "euclidean").numpy()
    else:
        expected = part_aware_distance(
            unit["q"], unit["g"], F.normalize(q["parts"], dim=2), F.normalize(g["parts"], dim=2),
            q["visibility"], g["visibility"], metric="euclidean",
        ).numpy()
    np.testing.assert_allclose(out["euclidean"], expected, atol=1e-4)
    assert not np.allclose(out["euclidean"], out["cosine"], atol=1e-2)
    assert torch.isfinite(torch.from_numpy(out["euclidean"])).all()


def test_a_checkpoint_whose_weights_do_not_fit_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    ckpt = _tiny_checkpoint(tmp_path / "m.pt")
    payload = torch.load(ckpt, weights_only=True)
    del payload["model"]["global_neck.bias"]  # edited by hand: no longer this arch's weights
    torch.save(payload, ckpt)
    assert main(["export", str(ckpt), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "global_neck.bias" in err and "Traceback" not in err
    assert err.startswith("semparts-reid export: error:")
