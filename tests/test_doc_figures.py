"""Every figure the README and the docs cite comes from a source in the repository.

Sources (the only two):

* ``benchmarks/RESULTS.md``, written by ``benchmarks/run_all.py`` (never by hand);
* ``docs/demo_results.json``: the ``results.json`` that ``semparts-reid demo`` writes,
  committed as it came out (``semparts-reid demo --output-dir demo_out`` then
  ``cp demo_out/results.json docs/demo_results.json``).

Pages: ``README.md`` and ``docs/*.md``, outside fenced code blocks and inline code.

A **figure** is, in a page's text:

1. a ratio: a number directly followed by ``×`` or ``x``, unless a digit follows
   (``256×128`` and ``1x1`` are sizes, not ratios);
2. a duration, a size or a rate: a number followed by ``s``, ``ms``, ``min``, ``KiB``,
   ``MiB``, ``GiB``, ``KB``, ``MB``, ``GB``, ``img/s``, ``img/cpu-s``, ``img/wall-s`` or
   ``images/s``;
3. a percentage in a table row or paragraph that speaks of speed or cost (one of
   :data:`COST_WORDS`); other percentages are settings (``shorts 55%``) or counts;
4. a retrieval score: a number next to ``R1``, ``R5``, ``R10``, ``mAP`` or ``mINP``
   (``+6.1 R1``, ``mAP 48.3``), and every number in the body of a markdown table whose
   header names ``R1`` or ``mAP`` (first column excepted).

In ``a–b unit`` both ends are figures. A number right after a comparison sign
(``≥ 20×``, ``< 2 GiB``, ``<= 10%``) is a target or a bound, not a measurement, and is not
a figure. :data:`ALLOWLIST` names the few remaining numbers that are arithmetic, not
measurements, each with its reason.

A figure is **sourced** when a number of a source *of the same kind*, rounded to the
figure's decimals, equals it (signs ignored). Kinds in ``RESULTS.md``: a number glued to
``x``/``×`` on either side is a ratio; one followed by ``%``, by a unit of item 2, or by
a retrieval metric has that kind; any other number is bare. A bare number of three or
more significant digits (``402`` in a table with an ``img/cpu-s`` header) sources a
figure of any kind; a shorter one (``4``, ``8``) sources nothing, so a figure cannot
match a stray count by chance. A percentage may also be 100 × a bare ratio
(``RATIO ... = 0.0724`` is 7.2 %). A retrieval score may be 100 × an R1/R5/R10/mAP of
the demo, or the difference of two of them in the same direction and metric (``+6.1 R1``
over ECN). The demo's duration in seconds sources a figure in ``s``.

Also: the benchmark table of ``docs/results.md`` (the README keeps a five-line summary)
marks every target that ``RESULTS.md`` reports as ``[MISSED]`` with **MISSED** on the row
that cites its figure.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
DEMO_JSON = ROOT / "docs" / "demo_results.json"

COST_WORDS = re.compile(
    r"\b(faster|slower|speed|speed-up|overhead|step|cost|costs|time|peak|memory|throughput"
    r"|benchmarks?|measured)\b",
    re.I,
)
# (page, figure as written) -> why it is not a measurement
ALLOWLIST: dict[tuple[str, str], str] = {
    ("docs/evaluation.md", "4.5 GB"): "arithmetic: 12 (Q+G)² bytes for Q+G = 3,368 + 15,913",
}

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SIGN = r"[+\-−±]?"
_UNIT = (
    r"(?P<ratio>[×x](?![\w\d]|\s?\d))"
    r"|\s?(?P<unit>ms|min|s|KiB|MiB|GiB|KB|MB|GB|img/s|img/cpu-s|img/wall-s|images/s)(?![\w/-])"
    r"|\s?(?P<pct>%)"
    r"|\s(?P<score>R1|R5|R10|mAP|mINP)\b"
)
# "a–b unit" or "a unit"; the first number of a range is kept in group "lo"
_FIGURE = re.compile(
    rf"(?<![\w.,/-])(?:(?P<lo>{_NUM})\s?[–-]\s?)?(?P<sign>{_SIGN})(?P<num>{_NUM})(?:{_UNIT})"
)
_SCORE_FIRST = re.compile(rf"\b(?:R1|R5|R10|mAP|mINP)\s(?P<sign>{_SIGN})(?P<num>{_NUM})(?!\s?%)")
_COMPARISON = re.compile(r"(≥|≤|<|>|>=|<=|=<|=>)\s*$")
_ANY_NUMBER = re.compile(rf"(?<![\w.])({_NUM})(?![\w])")
# in RESULTS.md a number may be glued to a unit on either side ("6.6x", "x3.93", "+0.7%")
_SOURCE_NUMBER = re.compile(rf"(?<![\d.,])({_NUM})")


_RATES = {"img/s", "img/cpu-s", "img/wall-s", "images/s"}


@dataclass(frozen=True)
class Figure:
    page: str
    line: int
    text: str  # as written, e.g. "6.6×", "+0.7%"
    number: str  # e.g. "6.6", "0.7" (no sign, no thousands separators)
    kind: str  # "ratio", "pct", "score", or a unit: "s", "ms", "MiB", "rate", ...


def _blocks(text: str) -> Iterator[tuple[int, str, bool]]:
    """``(first line, text, is_table_row)``: table rows one by one, prose by paragraph;
    fenced code blocks and inline code are left out."""
    lines = text.splitlines()
    in_code = False
    para: list[str] = []
    start = 0
    for no, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            if para:
                yield start, " ".join(para), False
                para = []
            continue
        if in_code:
            continue
        line = re.sub(r"`[^`]*`", " ", line)
        if line.lstrip().startswith("|"):
            if para:
                yield start, " ".join(para), False
                para = []
            yield no, line, True
        elif not line.strip():
            if para:
                yield start, " ".join(para), False
                para = []
        else:
            if not para:
                start = no
            para.append(line.strip())
    if para:
        yield start, " ".join(para), False


def _plain(number: str) -> str:
    return number.replace(",", "")


def _is_bound(block: str, start: int) -> bool:
    return bool(_COMPARISON.search(block[max(0, start - 4) : start]))


def figures(page: str, text: str) -> list[Figure]:
    """The figures of one page, by the definition of this module's docstring."""
    out: list[Figure] = []
    header: str | None = None
    for line, block, is_row in _blocks(text):
        if not is_row:
            header = None
        elif header is None:
            header = block
        elif re.match(r"^\|\s*:?-{3,}", block):
            pass
        elif re.search(r"\b(R1|mAP)\b", header):
            cells = block.strip().strip("|").split("|")[1:]  # first column: method names
            for cell in cells:
                for m in _ANY_NUMBER.finditer(cell):
                    if not _is_bound(cell, m.start()):
                        out.append(Figure(page, line, m.group(0), _plain(m.group(1)), "score"))
            continue
        for m in _FIGURE.finditer(block):
            if _is_bound(block, m.start()):
                continue
            kind = next(k for k in ("ratio", "unit", "pct", "score") if m.group(k))
            if kind == "pct" and not COST_WORDS.search(block):
                continue
            if kind == "unit":
                kind = "rate" if m.group("unit") in _RATES else m.group("unit")
            numbers = [m.group("num")] + ([m.group("lo")] if m.group("lo") else [])
            out += [Figure(page, line, m.group(0).strip(), _plain(n), kind) for n in numbers]
        for m in _SCORE_FIRST.finditer(block):
            if not _is_bound(block, m.start("num")):
                out.append(Figure(page, line, m.group(0), _plain(m.group("num")), "score"))
    return [f for f in out if (f.page, f.text) not in ALLOWLIST]


def _decimals(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


def _matches(number: str, values: set[float]) -> bool:
    d, v = _decimals(number), float(number)
    return any(abs(round(abs(s), d) - v) < 1e-9 for s in values)


def _significant(number: str) -> int:
    return len(_plain(number).replace(".", "").lstrip("0"))


_SOURCE_KIND = re.compile(
    r"\s?(?P<ratio>[x×](?!\s?\d))|\s?(?P<pct>%)"
    r"|\s?(?P<unit>ms|min|s|KiB|MiB|GiB|KB|MB|GB|img/s|img/cpu-s|img/wall-s|images/s)(?![\w/-])"
    r"|\s(?P<score>R1|R5|R10|mAP|mINP)\b"
)


def results_numbers(text: str) -> dict[str, set[float]]:
    """The numbers RESULTS.md states, by kind (see the module docstring); ``"bare3"``
    holds the bare ones of three or more significant digits. Dates, version strings
    (``2.14.1+cu130``) and numbers in scientific notation (``9.31e-08``, a difference
    that no page cites as a figure) are left out."""
    text = re.sub(r"^- date: .*$", "", text, flags=re.M)
    text = re.sub(r"\d+\.\d+\.\d+\S*|\d+(?:\.\d+)?e[+-]?\d+", " ", text)
    out: dict[str, set[float]] = {}
    for m in _SOURCE_NUMBER.finditer(text):
        value = float(_plain(m.group(1)))
        after = _SOURCE_KIND.match(text, m.end())
        if text[max(0, m.start() - 1) : m.start()] in ("x", "×"):
            kind = "ratio"
        elif after is None:
            kind = "bare"
        else:
            kind = next(k for k in ("ratio", "pct", "unit", "score") if after.group(k))
            if kind == "unit":
                kind = "rate" if after.group("unit") in _RATES else after.group("unit")
        out.setdefault(kind, set()).add(value)
        if kind == "bare" and _significant(m.group(1)) >= 3:
            out.setdefault("bare3", set()).add(value)
    return out


def demo_numbers(payload: dict) -> tuple[set[float], set[float]]:
    """(scores: 100 × R1/R5/R10/mAP and same-direction same-metric differences, seconds)."""
    scores: set[float] = set()
    for rows in payload["results"].values():
        for metric in ("R1", "R5", "R10", "mAP"):
            vals = [100.0 * float(row[metric]) for row in rows.values()]
            scores.update(vals)
            for a, b in itertools.permutations(vals, 2):
                scores.add(a - b)
                scores.add(round(a, 1) - round(b, 1))
    return scores, {float(payload["seconds"])}


def unsourced(
    figs: list[Figure], results: dict[str, set[float]], demo: tuple[set[float], set[float]]
) -> list[Figure]:
    """The figures no source states (kinds and conversions as in the module docstring)."""
    scores, seconds = demo
    bad = []
    for f in figs:
        candidates = results.get(f.kind, set()) | results.get("bare3", set())
        if f.kind == "pct":
            candidates |= {100.0 * v for v in results.get("bare", set())}
        if f.kind == "score":
            candidates |= scores | results.get("score", set())
        if f.kind == "s":
            candidates |= seconds
        if not _matches(f.number, candidates):
            bad.append(f)
    return bad


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


_MISSING_DEMO = (
    f"{DEMO_JSON.relative_to(ROOT)} is missing: run `semparts-reid demo --output-dir demo_out` and "
    "commit demo_out/results.json there; the README's and docs/training.md's demo tables "
    "cite it"
)


def _demo() -> tuple[set[float], set[float]]:
    """The demo's numbers, or empty sets when its results are not committed."""
    if not DEMO_JSON.is_file():
        return set(), set()
    return demo_numbers(json.loads(DEMO_JSON.read_text(encoding="utf-8")))


def test_the_demo_results_are_committed() -> None:
    assert DEMO_JSON.is_file(), _MISSING_DEMO
    payload = json.loads(DEMO_JSON.read_text(encoding="utf-8"))
    assert set(payload) >= {"results", "settings", "seed", "seconds"}, "not a demo results.json"
    directions = set(payload["results"])
    assert directions and directions <= {"a -> b", "b -> a"}, "not the demo's directions"
    # the README's demo table has a column group per direction of the committed run
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    header = next(ln for ln in readme.splitlines() if ln.startswith("| method (retrieval"))
    cited = {d for d in ("a -> b", "b -> a") if d.replace("->", "→") in header}
    assert cited == directions, f"README demo table cites {cited}, the run has {directions}"


def test_every_figure_in_the_readme_and_the_docs_has_a_source() -> None:
    results = results_numbers(RESULTS.read_text(encoding="utf-8"))
    figs = [
        f for p in _pages() for f in figures(str(p.relative_to(ROOT)), p.read_text("utf-8"))
    ]
    assert len(figs) > 20, "the figure finder found almost nothing: is it broken?"
    bad = unsourced(figs, results, _demo())
    assert not bad, "\n".join(
        ["figures in no source (benchmarks/RESULTS.md, docs/demo_results.json):"]
        + [f"  {f.page}:{f.line}: {f.text}" for f in bad]
        + ([f"({_MISSING_DEMO})"] if not DEMO_JSON.is_file() else [])
    )


#: benchmarks whose targets are accuracy differences or part-map scores (no unit to match a
#: row by): the README must instead list each missed target by name in a row marked MISSED
ACCURACY_SECTIONS = ("semantic_parts", "part_maps_256x128", "tracking")


def _accuracy_missed(results_md: str, readme: str) -> tuple[str, list[str]]:
    """RESULTS.md without the accuracy sections, and the problems of those sections."""
    problems = []
    rows = [b for _, b, is_row in _blocks(readme) if is_row]
    for name in ACCURACY_SECTIONS:
        m = re.search(rf"(?ms)^## {name}\n.*?(?=^## |\Z)", results_md)
        if not m:
            continue
        section = m.group(0)
        results_md = results_md.replace(section, "")
        for miss in re.finditer(r"^\[MISSED\] (?P<name>.+?): [-+]?[\d.]+", section, re.M):
            if not any(miss.group("name") in r and "MISSED" in r for r in rows):
                problems.append(f"{miss.group('name')}: no README table row names it as MISSED")
    return results_md, problems


def missed_unmarked(results_md: str, readme: str) -> list[str]:
    """``[MISSED]`` figures of RESULTS.md whose README table row is not marked MISSED
    (or that no README table row cites)."""
    results_md, problems = _accuracy_missed(results_md, readme)
    rows = [b for _, b, is_row in _blocks(readme) if is_row]
    missed = re.compile(rf"^\s*\[MISSED\] (?P<name>.+): {_SIGN}(?P<num>{_NUM})[^(\n]*\(target",
                        re.M)  # fmt: skip
    for m in missed.finditer(results_md):
        value = {float(_plain(m.group("num")))}
        citing = [
            r for r in rows
            if any(_matches(f.number, value) for f in figures("README.md", r + "\n"))
        ]  # fmt: skip
        if not citing:
            problems.append(f"{m.group('name')}: no README table row cites {m.group('num')}")
        problems += [
            f"{m.group('name')}: README row without MISSED: {r.strip()}"
            for r in citing
            if "MISSED" not in r
        ]
    return problems


#: the page whose benchmark table lists every target, met or MISSED
RESULTS_PAGE = ROOT / "docs" / "results.md"


def test_the_results_page_marks_every_missed_target() -> None:
    problems = missed_unmarked(
        RESULTS.read_text(encoding="utf-8"), RESULTS_PAGE.read_text(encoding="utf-8")
    )
    assert not problems, "\n".join(problems)


# --- the checker itself ------------------------------------------------------------


def test_what_counts_as_a_figure() -> None:
    text = "\n".join([
        "Fused pooling is 6.6× faster, peak 107 MiB; a step costs +0.7% more.",
        "",
        "Input 256×128, a 1x1 conv, P x K = 16 x 4, target ≥ 20×, < 2 GiB, <= 10% overhead.",
        "",
        "shorts 55%, trousers 30%",
        "",
        "Parts add +6.1 R1 / +4.5 mAP; seed average R1 57.4.",
        "",
        "```",
        "speed 9.9× in a code block",
        "```",
        "Inline `3.3×` is code. Evaluation takes 12.38 s, 330–810 img/cpu-s.",
        "",
        "| method | a → b R1 | mAP |",
        "| --- | ---: | ---: |",
        "| ECN (global) | 30.9 | **26.3** |",
    ])  # fmt: skip
    got = [(f.text, f.number, f.kind) for f in figures("x.md", text)]
    assert got == [
        ("6.6×", "6.6", "ratio"), ("107 MiB", "107", "MiB"), ("+0.7%", "0.7", "pct"),
        ("+6.1 R1", "6.1", "score"), ("+4.5 mAP", "4.5", "score"),
        ("R1 57.4", "57.4", "score"),
        ("12.38 s", "12.38", "s"), ("330–810 img/cpu-s", "810", "rate"),
        ("330–810 img/cpu-s", "330", "rate"),
        ("30.9", "30.9", "score"), ("26.3", "26.3", "score"),
    ]  # fmt: skip


def test_sourcing_rules() -> None:
    results = results_numbers("speed-up 6.6x\nRATIO memory(fp32)/train_step = 0.0724\n"
                              "time 12.38 s, 4 cams, ours x3.93\n- date: 2026-11-24 19:45 UTC\n"
                              "| a | 402 |\ntorch 2.14.1+cu130, max diff 9.31e-08")  # fmt: skip
    assert results["ratio"] == {6.6, 3.93} and results["s"] == {12.38}
    assert results["bare3"] == {0.0724, 402.0} and 4.0 in results["bare"]
    payload = {"results": {"a -> b": {
        "ECN (global)": {"R1": 0.309, "R5": 0.5, "R10": 0.6, "mAP": 0.263},
        "ECN + semantic parts": {"R1": 0.370, "R5": 0.5, "R10": 0.6, "mAP": 0.308},
    }}, "seconds": 276.4}  # fmt: skip
    demo = demo_numbers(payload)

    def bad(text: str) -> list[str]:
        return [f.text for f in unsourced(figures("x.md", text), results, demo)]

    assert bad("6.6× faster, 12.4 s, 12.38 s, 7.2% of a step, 7% of a step") == []
    assert bad("6.7× faster, 12.3 s, 8.2% of a step") == ["6.7×", "12.3 s", "8.2%"]
    assert bad("3.93× faster, 402 img/cpu-s") == []
    # a stray count of the source sources no figure; a figure needs its own kind
    assert bad("5× faster, 4 s, 12.38×, 6.6 s") == ["5×", "4 s", "12.38×", "6.6 s"]
    assert bad("4× faster") == []  # 3.93x, rounded to the figure's precision
    assert bad("parts add +6.1 R1 / +4.5 mAP, 37.0 R1, the demo took 276 s") == []
    assert bad("parts add +6.2 R1, 19.45 s (the date is no figure)") == ["+6.2 R1", "19.45 s"]


def test_missed_targets_must_be_marked() -> None:
    results = "[MISSED] MSMT17 scale: time with distances: 12.38 s (target <= 12 s)\n"
    readme_ok = "| what | measured | target |\n| --- | --- | --- |\n| MSMT | **MISSED** 12.4 s | ≤ 12 s |\n"  # noqa: E501
    readme_bad = readme_ok.replace("**MISSED** ", "")
    assert missed_unmarked(results, readme_ok) == []
    assert len(missed_unmarked(results, readme_bad)) == 1
    assert "no README table row" in missed_unmarked(results, "no table")[0]


def _demo_table(page: Path) -> dict[str, list[str]]:
    """The rows of ``page``'s demo table (header ``| method (retrieval feature) | a → b R1 |
    R5 ...``): method -> its cells."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = next(i for i, ln in enumerate(lines)
                 if ln.startswith("| method (retrieval feature) |") and "| R5 |" in ln)
    rows: dict[str, list[str]] = {}
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.parametrize("page", ["README.md", "docs/training.md"])
def test_the_demo_tables_print_the_committed_run_in_percent(page: str) -> None:
    """Cell for cell, R1 / R5 / R10 / mAP × 100 with one decimal, in the run's order of
    directions (a fraction rounded to one decimal, ``0.3``, must not pass for 30.3 %)."""
    payload = json.loads(DEMO_JSON.read_text(encoding="utf-8"))["results"]
    table = _demo_table(ROOT / page)
    methods = list(next(iter(payload.values())))
    assert list(table) == methods, f"{page}: demo table rows {list(table)} != {methods}"
    for method in methods:
        want = [f"{100 * payload[d][method][m]:.1f}" for d in payload
                for m in ("R1", "R5", "R10", "mAP")]
        assert table[method] == want, f"{page}: {method}: {table[method]} != {want}"
