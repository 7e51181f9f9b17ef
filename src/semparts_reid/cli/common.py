"""What the sub-commands share: the usage error, argparse types, option groups, output.

Nothing here imports torch, so ``semparts-reid --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from ..errors import InputError

log = logging.getLogger("semparts_reid")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(InputError):
    """A bad command-line argument or input. Printed as one line, exit code 2."""


def positive_int(text: str) -> int:
    """argparse type: an int >= 1.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not an integer, or is below 1.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_device_option(p: argparse.ArgumentParser) -> None:
    """``--device`` (auto, cpu or cuda:N)."""
    p.add_argument("--device", default="auto", help="auto, cpu or cuda:N (default: auto)")


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """Device, batch size and precision of feature extraction."""
    add_device_option(p)
    p.add_argument(
        "--batch-size", type=positive_int, default=64, help="extraction batch size (default: 64)"
    )
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="auto: bf16/fp16 autocast where the hardware runs it natively",
    )


def print_metrics(metrics: Any, json_path: str | None, extra: dict[str, Any] | None = None) -> None:
    """Print ``metrics`` (a ``ReIDMetrics``); with ``json_path``, also write them there.

    The JSON file holds ``metrics.as_dict()`` plus ``extra``, written atomically.
    """
    print(metrics)
    if json_path:
        from .._io import atomic_write_text

        payload = {**metrics.as_dict(), **(extra or {})}
        atomic_write_text(json_path, json.dumps(payload, indent=2, default=float))
        log.info("wrote %s", json_path)
