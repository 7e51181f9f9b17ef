"""``cli/main.py``: the parser, the entry points, exit codes and error messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import TINY

from semparts_reid.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "train", "adapt", "evaluate", "extract", "download", "export", "datasets"):
        assert cmd in out


@pytest.mark.parametrize("module", ["semparts_reid", "semparts_reid.cli"])
def test_module_entry_points_run(module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "semparts-reid" in proc.stdout


def test_the_console_script_resolves_to_main() -> None:
    from importlib import import_module

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
        import tomli as tomllib  # type: ignore[no-redef]

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["semparts-reid"].partition(":")
    assert getattr(import_module(module), attr) is main


def test_building_the_parser_does_not_load_torch() -> None:
    """``semparts-reid --help`` stays fast: torch loads only when a command needs it."""
    code = (
        "import sys; from semparts_reid.cli.main import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["evaluate"], "give either --query-features"),
        (
            ["evaluate", "--query-features", "missing_q.npz", "--gallery-features", "g.npz"],
            "missing_q.npz",
        ),
        (["evaluate", "--query-features", "q.npz"], "must be given together"),
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
        (["evaluate", "--max-rank", "zero"], "--max-rank"),
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


def test_an_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import semparts_reid.data.datasets as datasets

    def interrupted(spec: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "build_dataset", interrupted)
    assert main(["datasets", TINY.format("a")]) == 130
    assert capsys.readouterr().err.strip() == "semparts-reid: interrupted"


def test_a_failed_download_is_bad_input_wherever_its_class_lives() -> None:
    """``DownloadError`` is recognised by name and package, not by its module's path."""
    from semparts_reid.cli.main import _is_user_error

    class DownloadError(RuntimeError):
        pass

    class ChecksumError(DownloadError):
        pass

    DownloadError.__module__ = ChecksumError.__module__ = "semparts_reid.hub.somewhere"
    assert _is_user_error(ChecksumError("bad hash"))
    assert not _is_user_error(RuntimeError("bug"))

    class Foreign(RuntimeError):
        pass

    Foreign.__name__ = "DownloadError"  # someone else's DownloadError is not ours
    assert not _is_user_error(Foreign("x"))
