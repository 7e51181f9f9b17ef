"""One spelling on the command line: ``-o/--output`` for a file, ``--output-dir`` for a
folder, on every command (the old spellings of the unreleased 0.1.0 are gone); one line per
command in ``semparts-reid --help``."""

from __future__ import annotations

import argparse
import re

import pytest

from semparts_reid.cli import main
from semparts_reid.cli.main import build_parser

# option -> the kind of path it names, for every command that writes something
WRITES = {
    "demo": ("--output-dir",), "train": ("--output-dir",), "adapt": ("--output-dir",),
    "download": ("--output-dir",), "evaluate": ("-o", "--output"), "extract": ("-o", "--output"),
    "export": ("-o", "--output"), "visrank": ("-o", "--output"), "parse": ("--output-dir",),
}  # fmt: skip
OLD = {"demo": "--out", "evaluate": "--json", "download": "--cache-dir"}  # removed


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return dict(sub.choices)


def _visible_options(p: argparse.ArgumentParser) -> set[str]:
    return {o for a in p._actions if a.help is not argparse.SUPPRESS for o in a.option_strings}


def test_help_lists_every_command_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # a plain terminal
    sub = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert set(helps) == set(sub.choices) and all(helps.values())
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "\ncommands:\n  COMMAND\n" in out
    for name, text in helps.items():
        assert re.search(rf"^    {name} +{re.escape(str(text))}$", out, re.M), (name, out)


@pytest.mark.parametrize("command", sorted(WRITES))
def test_output_options_are_spelled_one_way(command: str) -> None:
    p = _commands()[command]
    visible = _visible_options(p)
    assert set(WRITES[command]) <= visible
    out_like = {o for o in visible if "out" in o or o == "-o"}
    assert out_like == set(WRITES[command]), out_like
    for old in ("--out", "--json", "--cache-dir"):
        assert old not in visible


def test_every_command_that_writes_is_covered() -> None:
    """A new command that writes a file or folder must be added to WRITES (and checked)."""
    for name, p in _commands().items():
        if {o for o in _visible_options(p) if "out" in o or o == "-o"}:
            assert name in WRITES, name


@pytest.mark.parametrize(("command", "old"), sorted(OLD.items()))
def test_old_spellings_are_gone(command: str, old: str) -> None:
    p = _commands()[command]
    assert old not in p._option_string_actions
    assert not re.search(rf"{old}\b(?!-)", p.format_help())


def test_new_spellings_do_not_warn(recwarn: pytest.WarningsRecorder) -> None:
    args = build_parser().parse_args(["demo", "--output-dir", "d"])
    assert args.output_dir == "d"
    assert build_parser().parse_args(["demo"]).output_dir == "demo_out"  # default kept
    assert build_parser().parse_args(["evaluate", "-o", "m.json"]).output == "m.json"
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
