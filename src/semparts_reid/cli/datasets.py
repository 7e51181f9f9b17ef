"""``semparts-reid datasets``: the summary (ids, images, cameras) of dataset specs.

With no spec, the known dataset names and the spec format.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK

__all__ = ["add_parser", "cmd_datasets"]


def cmd_datasets(args: argparse.Namespace) -> int:
    """Print each spec's summary table, or the known names when none is given."""
    from ..data.datasets import build_dataset, list_datasets

    if not args.specs:
        print("known datasets: " + ", ".join(list_datasets()))
        print(
            "spec format: NAME:PATH, e.g. market1501:/data/Market-1501-v15.09.15, "
            "folder:/data/my_reid (train|query|gallery/<identity>/<image>), or synthetic:a"
        )
        return EXIT_OK
    for spec in args.specs:
        dataset = build_dataset(spec)
        print(f"{spec}")
        print(dataset.summary_table())
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``datasets`` on the sub-parsers action ``sub``."""
    p = sub.add_parser("datasets", help="show the summary (ids, images, cameras) of dataset specs")
    p.add_argument("specs", nargs="*", help="dataset specs (none: list the known dataset names)")
    p.set_defaults(func=cmd_datasets)
