"""``semparts-reid demo``: the paper's ablation on the embedded synthetic pair.

The command parses its options and calls :func:`semparts_reid.experiments.run_demo`,
which runs the source trainings and adaptations, prints the table and writes
``results.json`` and the figures (see :mod:`semparts_reid.experiments.demo`).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..experiments import DIRECTIONS, run_demo
from .common import EXIT_OK, add_device_option, positive_int


def cmd_demo(args: argparse.Namespace) -> int:
    """``semparts-reid demo``: :func:`~semparts_reid.experiments.run_demo` with the
    command's options."""
    run_demo(
        out_dir=args.output_dir,
        quick=args.quick,
        directions=args.direction,
        seed=args.seed,
        device=args.device,
        target_part_maps=args.target_part_maps,
        workers=args.workers,
        keep_checkpoints=args.keep_checkpoints,
    )
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``demo`` on the sub-parsers action ``sub``."""
    p = sub.add_parser(
        "demo", help="the paper's ablation on the synthetic a<->b pair"
    )
    p.add_argument(
        "--output-dir", default="demo_out", metavar="DIR",
        help="output folder (default: demo_out)",
    )
    p.add_argument("--quick", action="store_true", help="tiny run (<= 60 s) used by the tests")
    p.add_argument(
        "--direction",
        choices=["both", *DIRECTIONS],
        default="both",
        help="adaptation direction(s) (default: both)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--target-part-maps", action="store_true",
        help="train the parts methods with the target's ground-truth part maps (what a "
        "human parser would bring; default: withheld, as on real data)",
    )
    p.add_argument(
        "--workers", type=positive_int, default=None, metavar="N",
        help="processes that train side by side (default: one per CPU core, at most 8; "
        "1 on a GPU; 1 runs everything in this process)",
    )
    p.add_argument(
        "--keep-checkpoints", action="store_true",
        help="keep every adapted model's adapt_final.pt (default: only the source models "
        "and the ECN + semantic parts models stay, about 200 MB)",
    )
    add_device_option(p)
    p.set_defaults(func=cmd_demo)
