"""``semparts-reid parse``: part maps of a dataset's crops from a human parser.

``semparts-reid parse SPEC --output-dir DIR`` builds the dataset of ``SPEC`` (any spec
``build_dataset`` reads), runs MediaPipe's pose + person segmentation over the crops of
``--split`` (default: all) in batches, and writes ``DIR/maps/<rel>.parts.png`` (one
``parts4`` map per crop with a pose), ``DIR/manifest.csv`` (per crop: split, index,
path, map, found, confidence, size) and ``DIR/parse.json`` (the run and its counts); the
format is in :mod:`semparts_reid.parsers.maps` and ``docs/parsers.md``. Crops without a
pose get no map and keep their current labels; their count is printed and logged. The
work is the library's: :class:`~semparts_reid.parsers.MediaPipeParser` and
:func:`~semparts_reid.parsers.parse_dataset`. Needs the ``[parser]`` extra.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK, UsageError, positive_int

__all__ = ["add_parser", "cmd_parse", "make_parser"]


def make_parser(args: argparse.Namespace) -> Any:
    """The part parser the command runs (tests replace this function)."""
    from ..parsers import MediaPipeParser

    return MediaPipeParser(workers=args.workers, backend=args.backend)


def cmd_parse(args: argparse.Namespace) -> int:
    """Parse the crops of ``args.spec`` into ``args.output_dir``; print the counts."""
    from ..data.datasets import build_dataset
    from ..parsers import SPLITS, parse_dataset

    try:
        parser = make_parser(args)  # before any slow work: a missing extra fails first
    except ImportError as exc:
        raise UsageError(str(exc)) from exc
    try:
        dataset = build_dataset(args.spec)
        splits = list(SPLITS) if args.split == "all" else [args.split]
        summary = parse_dataset(
            dataset, parser, args.output_dir, splits=splits, batch_size=args.batch_size,
            progress=not args.no_progress, extra={"spec": args.spec},
        )  # fmt: skip
    finally:
        close = getattr(parser, "close", None)
        if callable(close):
            close()
    print(
        f"parse: {summary.num_crops} crops of {args.spec} ({', '.join(splits)}): pose found "
        f"in {summary.found} ({100 * summary.labelled_fraction:.1f} % labelled), "
        f"{summary.fallback} keep their current labels; "
        f"{summary.crops_per_s:.1f} crops/s; wrote {summary.manifest}"
    )
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``parse`` on the sub-parsers action ``sub``."""
    p = sub.add_parser(
        "parse", help="part maps (head, upper, lower) of a dataset's crops from a human parser"
    )
    p.add_argument("spec", metavar="SPEC", help="dataset spec, e.g. market1501:/data/Market")
    p.add_argument("--output-dir", required=True,
                   help="folder for maps/, manifest.csv and parse.json")  # fmt: skip
    p.add_argument(
        "--split", choices=["train", "query", "gallery", "all"], default="all",
        help="which split's crops to parse (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=positive_int, default=2,
        help="pose graphs run side by side (default: 2)",
    )  # fmt: skip
    p.add_argument(
        "--backend", choices=["thread", "process"], default="thread",
        help="run the workers as threads or processes (default: thread)",
    )  # fmt: skip
    p.add_argument(
        "--batch-size", type=positive_int, default=64,
        help="crops read and parsed at a time (default: 64)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_parse)
