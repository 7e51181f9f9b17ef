"""Examples name only checkpoint files the trainer writes.

The trainer writes ``last.pt``, ``source_final.pt``, ``adapt_final.pt`` and
``interrupted.pt`` into ``output_dir``; it never picks a "best" checkpoint. A reader who
copies an example must find the file it names: so no README, docs page, docstring or
benchmark mentions a ``best.pt``/``best.pth``, and every example path into a training
output folder (``runs/...``) ends in one of the trainer's names. Placeholders for a
file of the user's own (``model.pt``, ``checkpoint.pth``) are fine.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINER = ROOT / "src" / "semparts_reid" / "engine" / "trainer.py"
WRITTEN = {"last.pt", "source_final.pt", "adapt_final.pt", "interrupted.pt"}
RUN_PATH = re.compile(r"\bruns/[\w./-]*?([\w-]+\.pth?)\b")
BEST = re.compile(r"\bbest(?:[_-]\w+)?\.pth?\b")


def _pages() -> list[Path]:
    src = [p for p in (ROOT / "src").rglob("*.py") if ".egg-info" not in str(p)]
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(src),
            *sorted((ROOT / "benchmarks").glob("*.py"))]  # fmt: skip


def test_the_trainer_writes_these_names() -> None:
    from semparts_reid.engine.trainer import STAGES

    code = TRAINER.read_text()
    assert '"last.pt"' in code and '"interrupted.pt"' in code
    assert 'f"{stage}_final.pt"' in code
    assert {f"{stage}_final.pt" for stage in STAGES} | {"last.pt", "interrupted.pt"} == WRITTEN


def test_examples_name_only_files_the_trainer_writes() -> None:
    bad = []
    for page in _pages():
        for no, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{page.relative_to(ROOT)}:{no}"
            bad += [f"{where}: {m.group(0)}" for m in BEST.finditer(line)]
            bad += [
                f"{where}: {m.group(0)} (the trainer writes {sorted(WRITTEN)})"
                for m in RUN_PATH.finditer(line)
                if m.group(1) not in WRITTEN
            ]
    assert bad == [], "\n".join(["checkpoint names no code writes:", *bad])
