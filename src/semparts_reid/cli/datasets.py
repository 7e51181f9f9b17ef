"""``semparts-reid datasets``: the summary (ids, images, cameras) of dataset specs.

With no spec, the known dataset names and the spec format. ``--write SPEC DIR`` renders
a synthetic domain into ``DIR`` in the Market-1501 layout (without part maps unless
``--part-maps``), then prints the summary of ``market1501:DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EXIT_OK, UsageError

__all__ = ["add_parser", "cmd_datasets"]


def _write(spec: str, folder: str, part_maps: bool) -> Path:
    """Render the synthetic domain of ``spec`` into ``folder``; return the folder."""
    from ..data.datasets import parse_spec
    from ..data.synthetic import DOMAINS, SyntheticConfig, write_synthetic_market

    name, domain, opts = parse_spec(spec)
    domains = ", ".join(f"synthetic:{d}" for d in sorted(DOMAINS))
    if name != "synthetic":
        raise UsageError(f"--write {spec!r}: only synthetic domains can be written ({domains})")
    accepted = {"size"} | set(SyntheticConfig.__dataclass_fields__) - {"domain"}
    unknown = sorted(set(opts) - accepted)
    if unknown:
        raise UsageError(
            f"--write {spec!r}: unknown option(s) {unknown}; accepted: {sorted(accepted)}"
        )
    return write_synthetic_market(domain, folder, part_maps=part_maps, **opts)


def cmd_datasets(args: argparse.Namespace) -> int:
    """Write a synthetic domain if asked; print each spec's summary table, or the names."""
    from ..data.datasets import build_dataset, list_datasets

    if args.part_maps is not None and args.write is None:
        raise UsageError("--part-maps/--no-part-maps only apply with --write SPEC DIR")
    specs = list(args.specs)
    if args.write is not None:
        spec, folder = args.write
        root = _write(spec, folder, bool(args.part_maps))
        maps = "with" if args.part_maps else "without"
        print(f"wrote {spec} to {root} (Market-1501 layout, {maps} part maps)")
        specs.append(f"market1501:{root}")
    if not specs:
        print("known datasets: " + ", ".join(list_datasets()))
        print(
            "spec format: NAME:PATH, e.g. market1501:/data/Market-1501-v15.09.15, "
            "folder:/data/my_reid (train|query|gallery/<identity>/<image>), or "
            "synthetic:a (also b, c)"
        )
        return EXIT_OK
    for spec in specs:
        dataset = build_dataset(spec)
        print(f"{spec}")
        print(dataset.summary_table())
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``datasets`` on the sub-parsers action ``sub``."""
    p = sub.add_parser("datasets", help="show the summary (ids, images, cameras) of dataset specs")
    p.add_argument("specs", nargs="*", help="dataset specs (none: list the known dataset names)")
    p.add_argument(
        "--write",
        nargs=2,
        metavar=("SPEC", "DIR"),
        help="render a synthetic domain (e.g. synthetic:c or synthetic:c?size=small&seed=1) "
        "into the new or empty folder DIR in the Market-1501 layout, for market1501:DIR",
    )
    p.add_argument(
        "--part-maps",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --write: also write the ground-truth <stem>.parts.png maps "
        "(default: no part maps, like real data)",
    )
    p.set_defaults(func=cmd_datasets)
