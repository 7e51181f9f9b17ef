"""Where the trainer's per-epoch records go.

A record is a flat dict: ``stage``, ``epoch``, ``step``, the mean loss terms, ``lr``,
``time_s`` and, after an evaluation, ``eval`` (a dict of metrics). The trainer hands
each record to every logger it holds; a logger is any object with ``log(record)`` and
``close()`` (:class:`MetricsLogger`). Only rank 0 logs under ``torchrun``.

:class:`JsonLinesLogger` (the default) appends one JSON line per record to
``output_dir/metrics.jsonl`` and prints a one-line summary through :mod:`logging`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["JsonLinesLogger", "MetricsLogger"]

logger = logging.getLogger("semparts_reid.engine.trainer")


@runtime_checkable
class MetricsLogger(Protocol):
    """Receives the trainer's per-epoch records."""

    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class JsonLinesLogger:
    """Append records to ``<output_dir>/metrics.jsonl`` (one JSON object per line).

    The file is opened for each record, so a crash loses at most the record being
    written and a resumed run appends to the same file.
    """

    def __init__(self, output_dir: str | os.PathLike[str], filename: str = "metrics.jsonl"):
        self.path = Path(output_dir) / filename

    def log(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=float) + "\n")
        logger.info(
            "%s epoch %s: %s", record.get("stage"), record.get("epoch"),
            ", ".join(f"{k}={v:.4f}" for k, v in record.items() if isinstance(v, float)),
        )

    def close(self) -> None:
        """Nothing to release (the file is closed after every record)."""

    def __repr__(self) -> str:
        return f"JsonLinesLogger({str(self.path)!r})"
