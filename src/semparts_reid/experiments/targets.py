"""Targets of the benchmarks: one format for "met" and "missed", one exit status for a miss.

Every script in ``benchmarks/`` states its targets as :class:`Target` objects, prints
them with :func:`report` and exits with the status :func:`report` returns:

* ``0`` when every target is met (or when targets are not checked, see below);
* :data:`MISSED_EXIT` (3) when at least one target is missed. Each missed target is
  printed on a line that starts with ``[MISSED]``, so neither ``run_all.py`` nor a
  reader can take it for a pass.

Targets are stated for the full-size workload of each script. A quick or smoke run
(``--quick``, tiny sizes) prints the same lines marked ``[not checked]``: its figures
say that the code runs, not whether it is fast enough.

A value that is NaN never meets a target.

Example:
    >>> Target("speed-up", 2.5, ">=", 2.0, "x").line()
    '[ok] speed-up: 2.50x (target >= 2x)'
    >>> report([Target("time", 9.0, "<=", 5.0, " s", fmt=".1f")])
    [MISSED] time: 9.0 s (target <= 5 s)
    MISSED 1 of 1 targets: time
    3
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import atomic_write_text

__all__ = ["MISSED_EXIT", "Target", "peak_rss_mib", "report", "write_results"]

#: exit status of a benchmark that ran to the end but missed one of its targets
#: (distinct from 1, the status of a crash, so ``run_all.py`` can tell the two apart)
MISSED_EXIT = 3

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
@dataclass(frozen=True)
class Target:
    """One measured figure and the bound it must satisfy.

    Args:
        name: what was measured, e.g. ``"speed-up vs per-query reference"``.
        value: the measured figure, in the unit of ``bound``.
        op: ``">="``, ``"<="``, ``">"`` or ``"<"``: ``value op bound`` must hold.
        bound: the target.
        unit: printed after the value and the bound (``"x"``, ``" s"``, ``"%"``, ...).
        fmt: format spec of the value (the bound is printed with ``g``).
    """

    name: str
    value: float
    op: str
    bound: float
    unit: str = ""
    fmt: str = ".2f"

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"Target {self.name!r}: op {self.op!r} is not one of {sorted(_OPS)}")

    @property
    def met(self) -> bool:
        """Whether ``value op bound`` holds (never for a NaN value)."""
        return not math.isnan(self.value) and _OPS[self.op](self.value, self.bound)

    def line(self, checked: bool = True) -> str:
        """``[ok] name: value (target op bound)``, ``[MISSED] ...`` or ``[not checked] ...``."""
        mark = ("ok" if self.met else "MISSED") if checked else "not checked"
        return (
            f"[{mark}] {self.name}: {self.value:{self.fmt}}{self.unit} "
            f"(target {self.op} {self.bound:g}{self.unit})"
        )


def report(targets: Sequence[Target], *, checked: bool = True, why_unchecked: str = "") -> int:
    """Print one line per target and a summary; return the script's exit status.

    Args:
        targets: the figures and their bounds.
        checked: False for a quick/smoke run: the lines are marked ``[not checked]``
            and the status is 0.
        why_unchecked: printed in the summary when ``checked`` is False.

    Returns:
        ``0`` when every target is met or ``checked`` is False, else :data:`MISSED_EXIT`.
    """
    for t in targets:
        print(t.line(checked))
    if not checked:
        reason = f" ({why_unchecked})" if why_unchecked else ""
        print(f"targets not checked{reason}: they are stated for the full-size run")
        return 0
    missed = [t.name for t in targets if not t.met]
    if missed:
        print(f"MISSED {len(missed)} of {len(targets)} targets: " + "; ".join(missed))
        return MISSED_EXIT
    print(f"all {len(targets)} targets met")
    return 0


def peak_rss_mib() -> float:
    """Peak RSS of this process in MiB: VmHWM (per address space, so not inherited from
    the parent across fork + exec as ``ru_maxrss`` is on Linux), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # POSIX only

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_results(path: str | Path, payload: Any) -> None:
    """Write a benchmark's results to ``path`` as indented JSON (and a final newline),
    atomically: a reader never sees half a file."""
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
