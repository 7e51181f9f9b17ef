"""The ``semparts-reid`` command (also ``python -m semparts_reid``): parser and exit codes.

Sub-commands, each in its own module of this package: ``demo`` (:mod:`.demo`),
``train`` / ``adapt`` (:mod:`.train`), ``evaluate`` (:mod:`.evaluate`), ``extract``
(:mod:`.extract`), ``download`` / ``export`` (:mod:`.weights`), ``datasets``
(:mod:`.datasets`), ``visrank`` (:mod:`.visrank`), ``parse`` (:mod:`.parse`). Each
module registers its sub-parsers and sets ``func``, the function that runs the command
and returns its exit code.

Exit codes: 0 success; 2 bad arguments or input, i.e. an argparse error, an
:class:`~semparts_reid.errors.InputError` raised by the library (dataset spec or layout,
missing file, configuration value, wrong checkpoint file) or a failed download, printed
as one line naming the argument or file; 1 anything else (a failure of the library or
the environment), printed as one line with a hint that ``--debug`` shows the traceback;
130 interrupted. ``--debug`` prints the traceback of every error, with the same codes.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..errors import InputError
from . import datasets, demo, evaluate, extract, parse, train, visrank, weights
from .common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

__all__ = ["build_parser", "main"]


def _is_download_error(exc: BaseException) -> bool:
    """A failed download (bad name, URL or hash; offline): the library's ``DownloadError``.

    Found by name in the exception's class hierarchy, so that the download module is
    neither imported here (it is loaded only if a download ran) nor named by its path.
    """
    return any(
        cls.__name__ == "DownloadError" and cls.__module__.startswith("semparts_reid.")
        for cls in type(exc).__mro__
    )


def _is_user_error(exc: BaseException) -> bool:
    """Bad input: an :class:`InputError`, or a failed download.

    Nothing else: a ``ValueError`` or ``KeyError`` from anywhere else is a bug, reported
    with exit code 1.
    """
    return isinstance(exc, InputError) or _is_download_error(exc)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit with code 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _CommandListFormatter(argparse.HelpFormatter):
    """The top-level help: at least 100 columns, so each command's line stays one line."""

    def __init__(self, prog: str) -> None:
        width = max(100, shutil.get_terminal_size().columns - 2)
        super().__init__(prog, width=width, max_help_position=18)


def build_parser() -> argparse.ArgumentParser:
    """The ``semparts-reid`` parser with every sub-command registered.

    ``semparts-reid --help`` lists the commands under ``commands:``, one line each (the
    ``help=`` of each sub-parser). Options spell a file ``-o/--output`` and a folder
    ``--output-dir`` on every command.
    """
    parser = _Parser(
        prog="semparts-reid",
        description="Cross-domain person re-identification with semantic part features.",
        epilog="'semparts-reid COMMAND --help' shows the options of a command.",
        formatter_class=_CommandListFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of every error (exit codes unchanged) and debug logs",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    sub = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser
    )
    demo.add_parser(sub)
    train.add_parsers(sub)
    evaluate.add_parser(sub)
    visrank.add_parser(sub)
    extract.add_parser(sub)
    weights.add_parsers(sub)
    datasets.add_parser(sub)
    parse.add_parser(sub)
    return parser


def _report(exc: Exception, command: str, debug: bool) -> int:
    """Print ``exc`` as one line (after its traceback with ``debug``); its exit code."""
    if debug:
        traceback.print_exc()
    if _is_user_error(exc):
        print(f"semparts-reid {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    hint = "" if debug else " (run with --debug for the traceback)"
    print(
        f"semparts-reid {command}: unexpected {type(exc).__name__}: {first}{hint}",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    argparse errors, ``--help`` and ``--version`` raise ``SystemExit`` (codes 2, 0, 0)
    as usual; every other outcome is returned (see the module docstring).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else (logging.INFO if args.verbose else logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("semparts-reid: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _report(exc, args.command, args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
