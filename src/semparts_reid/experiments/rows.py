"""Table rows: a model's scores as a row, and the paper-style table of rows.

A row is ``{"R1", "R5", "R10", "mAP", "cmc"}`` (fractions; ``cmc`` the first 20 ranks);
a direction's rows are keyed ``"<method> (<retrieval feature>)"``.

Example:
    >>> row = {"R1": 0.5, "R5": 0.75, "R10": 0.875, "mAP": 0.25}
    >>> lines = format_table({"a -> b": {"ECN (global)": row}}).splitlines()
    >>> for line in lines:
    ...     print(line.rstrip())
    method (retrieval feature)                    |           a -> b
                                                  |    R1    R5   R10    mAP
    --------------------------------------------------------------------------
    ECN (global)                                  |  50.0  75.0  87.5   25.0
"""

from __future__ import annotations

from typing import Any

from .settings import FEATURES

__all__ = ["Row", "Rows", "format_table", "metrics_row", "score_modes"]

#: one method's scores: R1, R5, R10, mAP (fractions) and the first 20 CMC values
Row = dict[str, Any]
#: a direction's rows, keyed "<method> (<retrieval feature>)"
Rows = dict[str, Row]


def metrics_row(metrics: Any) -> Row:
    """The row of a :class:`~semparts_reid.metrics.ReIDMetrics`."""
    return {
        "R1": metrics.rank(1),
        "R5": metrics.rank(5),
        "R10": metrics.rank(10),
        "mAP": metrics.mAP,
        "cmc": [float(v) for v in metrics.cmc[:20]],
    }


def score_modes(trainer: Any) -> Rows:
    """The trainer's model scored with each retrieval feature of
    :data:`~.settings.FEATURES` (one extraction), keyed by the feature's row suffix."""
    scores = trainer.evaluate_modes([mode for _, mode in FEATURES])  # one extraction
    return {suffix: metrics_row(scores[mode]) for suffix, mode in FEATURES}


def format_table(results: dict[str, Rows]) -> str:
    """Paper-style table: one row per method and retrieval feature, R1/R5/R10/mAP (%)
    per direction."""
    directions = list(results)
    methods = list(next(iter(results.values()))) if results else []
    head = f"{'method (retrieval feature)':<46}" + "".join(f"| {d:^27} " for d in directions)
    sub = f"{'':<46}" + "".join(
        f"| {'R1':>5} {'R5':>5} {'R10':>5} {'mAP':>6}  " for _ in directions
    )
    lines = [head, sub, "-" * len(sub)]
    for m in methods:
        cells = "".join(
            "| {R1:5.1f} {R5:5.1f} {R10:5.1f} {mAP:6.1f}  ".format(
                **{k: 100 * results[d][m][k] for k in ("R1", "R5", "R10", "mAP")}
            )
            for d in directions
        )
        lines.append(f"{m:<46}" + cells)
    return "\n".join(lines)
