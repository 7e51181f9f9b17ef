"""What the sub-commands share: the usage error, argparse types, option groups, output.

One spelling on every command: ``-o/--output`` names a file, ``--output-dir`` a folder.

Nothing here imports torch, so ``semparts-reid --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from typing import Any

from ..errors import InputError

log = logging.getLogger("semparts_reid")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(InputError):
    """A bad command-line argument or input. Printed as one line, exit code 2."""


def _int_at_least(low: int, what: str) -> Callable[[str], int]:
    """An argparse type: an int >= ``low`` (``what`` names the expectation in errors)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


#: argparse type: an int >= 1 (raises ``argparse.ArgumentTypeError`` otherwise)
positive_int = _int_at_least(1, "a positive integer")
#: argparse type: an int >= 0 (raises ``argparse.ArgumentTypeError`` otherwise)
non_negative_int = _int_at_least(0, "an integer >= 0")


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
    """Print ``metrics`` (a ``ReIDMetrics``) and the protocol line; with ``json_path``,
    also write them there.

    The protocol line names the camera rule that ran (``ReIDMetrics.protocol_note``), e.g.
    ``protocol: market1501 without camera ids: only the query image itself is removed
    from its gallery``. The JSON file holds ``metrics.as_dict()``, ``protocol_note`` and
    ``extra``, written atomically.
    """
    print(metrics)
    note = getattr(metrics, "protocol_note", None)
    if note:
        print(f"protocol: {note}")
    if json_path:
        from .._io import atomic_write_text

        payload = {**metrics.as_dict(), "protocol_note": note, **(extra or {})}
        atomic_write_text(json_path, json.dumps(payload, indent=2, default=float))
        log.info("wrote %s", json_path)
