"""Where the trainer's per-epoch records go.

A record is a flat dict: ``stage``, ``epoch``, ``step``, the mean loss terms, ``lr``,
``time_s`` and, after an evaluation, ``eval`` (a dict of metrics). The trainer hands
each record to every logger it holds; a logger is any object with ``log(record)`` and
``close()`` (:class:`MetricsLogger`). Only rank 0 logs under ``torchrun``. The trainer
calls ``close()`` at the end of :meth:`~.trainer.DomainAdaptTrainer.fit` and when a stage
stops on an error; a trainer used again afterwards logs again, so a logger should reopen
what it closed (both loggers here do).

:class:`JsonLinesLogger` (the default) appends one JSON line per record to
``output_dir/metrics.jsonl`` and prints a one-line summary through :mod:`logging`.
:class:`TensorBoardLogger` (the ``tensorboard`` extra; ``TrainConfig.tensorboard``) writes
the same numbers as TensorBoard scalars (:func:`record_scalars` names them).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "JsonLinesLogger",
    "MetricsLogger",
    "TensorBoardLogger",
    "record_scalars",
    "require_tensorboard",
]

#: record keys that are not plotted: they say where the record sits (``step`` is the x axis)
_POSITION_KEYS = ("stage", "epoch", "step")
#: top-level record keys that are not loss terms, and their TensorBoard tags
_PLAIN_TAGS = {"lr": "lr", "time_s": "time/epoch_s", "images_per_s": "time/images_per_s"}

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


def record_scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """The plottable numbers of a record, by TensorBoard tag.

    * ``lr`` -> ``lr``; ``time_s`` -> ``time/epoch_s``; ``images_per_s`` ->
      ``time/images_per_s``;
    * every other top-level number is a loss term: ``loss/<term>`` (the weighted total
      ``loss`` is ``loss/total``);
    * a nested dict is flattened with ``/``: ``eval/mAP``, ``eval/rank1``, or the
      statistics of an objective or memory such as ``memory/<name>``;
    * ``stage``, ``epoch`` and ``step`` (the x axis), strings, booleans and lists (the
      CMC curve) are left out.

    Example:
        >>> record_scalars({"stage": "adapt", "epoch": 2, "step": 40, "loss": 1.5,
        ...                 "source_id": 1.0, "lr": 3e-4, "eval": {"mAP": 0.5, "cmc": [1.0]}})
        {'loss/total': 1.5, 'loss/source_id': 1.0, 'lr': 0.0003, 'eval/mAP': 0.5}
    """
    out: dict[str, float] = {}

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def nested(prefix: str, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, Mapping):
                nested(f"{prefix}/{key}", value)
            elif number(value):
                out[f"{prefix}/{key}"] = float(value)

    for key, value in record.items():
        if key in _POSITION_KEYS:
            continue
        if isinstance(value, Mapping):
            nested(key, value)
        elif number(value):
            tag = _PLAIN_TAGS.get(key) or ("loss/total" if key == "loss" else f"loss/{key}")
            out[tag] = float(value)
    return out


def require_tensorboard() -> None:
    """Raise ``ImportError`` naming the ``tensorboard`` extra when it is not installed."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "TensorBoard logging needs the tensorboard package: "
            "pip install 'semparts-reid[tensorboard]'"
            f" ({exc})"
        ) from exc


class TensorBoardLogger:
    """Write each record's numbers (:func:`record_scalars`) as TensorBoard scalars.

    The x axis is the record's ``step`` (the global optimiser step, continuous across
    the source and adaptation stages). The event file is created at the first record, so
    a logger that never logs (another rank under ``torchrun``) leaves no file; every
    record is flushed to disk. After :meth:`close`, the next record opens a new event
    file in the same folder (TensorBoard reads them as one run).

    Args:
        log_dir: folder of the event files (``tensorboard --logdir <log_dir>``).

    Raises:
        ImportError: the ``tensorboard`` package is missing (install the extra:
            ``pip install 'semparts-reid[tensorboard]'``).
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        require_tensorboard()
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    def log(self, record: dict[str, Any]) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        step = record.get("step")
        step = int(step) if isinstance(step, (int, float)) else None
        for tag, value in record_scalars(record).items():
            self._writer.add_scalar(tag, value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __repr__(self) -> str:
        return f"TensorBoardLogger({str(self.log_dir)!r})"
