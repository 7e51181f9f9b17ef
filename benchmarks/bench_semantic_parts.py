"""What semantic parts and the adaptation objectives bring, median of several seeds.

Runs the demo's pipeline (``semparts_reid.cli.demo``: one source model per direction,
then ECN, ECN + semantic parts, clustering and clustering + semantic parts from that
same checkpoint, every method scored with the global and the global + parts feature)
for each seed on

* the synthetic pair, ``a -> b`` and ``b -> a``;
* the third domain ``c`` (other body proportions, poses, clothing, backgrounds),
  written in the Market-1501 layout **without part maps** and read through
  ``market1501:``, adapted from ``a`` (``a -> c``).

The target's part maps are withheld everywhere (the demo's default). For the synthetic
pair, the part maps of the source model and of the ECN + parts model are also scored
on the target's query images against the withheld ground truth
(:func:`~semparts_reid.metrics.part_iou.part_map_iou`): mIoU, head IoU, the positional
prior, and the fraction of image-specific pixels (see ``bench_part_maps.py``).

Targets (issues 12 and 13), on the median over the seeds, each retrieval feature:

* ECN + semantic parts >= ECN + 2 mAP on a -> b and b -> a; >= ECN on a -> c;
* ECN + semantic parts >= direct transfer + 10 mAP on a -> b and b -> a;
* clustering + semantic parts >= ECN + semantic parts + 10 mAP, and >= clustering + 2
  mAP, on every direction;
* part maps of the ECN + parts model: mIoU >= 0.70 and >= positional prior + 0.10, head
  IoU >= 0.50, >= 10 % image-specific pixels.

Misses print ``[MISSED]`` and exit 3. Each seed's results are written to
``WORK/seed<N>.json`` as soon as it is done. ``--reuse`` scores the checkpoints a
direction already holds in ``WORK`` (from an interrupted or a parallel run: one process
per seed with ``--threads 1`` uses two cores better than one process) instead of
training them again, and ``--seeds`` with ``--summarise-only`` merges finished seeds.
Run::

    python benchmarks/bench_semantic_parts.py --seeds 0 1 2 --json benchmarks/semantic_parts.json
    python benchmarks/bench_semantic_parts.py --quick      # tiny data, one seed (smoke)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench_part_maps import load_target, mode_map, predict_logits
from semparts_reid.data.datasets import build_dataset
from semparts_reid.data.synthetic import write_synthetic_market
from semparts_reid.experiments import (
    ADAPTATIONS,
    FEATURES,
    Adaptation,
    DemoJob,
    DemoSettings,
    DirectionSpec,
    chosen_adaptations,
    default_workers,
    format_table,
    label_source,
    method_folder,
    metrics_row,
    run_direction,
    run_directions,
    run_job,
    source_checkpoint,
    spawn_pool,
    threads_per_worker,
)
from semparts_reid.experiments.targets import Target, report
from semparts_reid.inference.extractor import load_model_from_checkpoint
from semparts_reid.metrics.part_iou import part_map_iou

DIRECTIONS = (("a", "b"), ("b", "a"), ("a", "c"))


def score_part_maps(model: Any, target: Any, size: tuple[int, int], limit: int) -> dict[str, float]:
    """mIoU, head IoU, positional prior and image-specific fraction on ``target.query``."""
    model = model.eval().float()
    dc = model.data_config
    x, gt = load_target(list(target.query)[:limit], size, dc["mean"], dc["std"])
    logits = predict_logits(model, x)[0]
    pred = torch.nn.functional.interpolate(logits, size=size, mode="bilinear",
                                           align_corners=False).argmax(1)
    ours = part_map_iou(logits, gt).as_dict(("background", "head", "upper", "lower"))
    prior = part_map_iou(mode_map(gt).expand_as(gt).contiguous(), gt).miou
    return {"mIoU": ours["mIoU"], "head": ours["head"], "prior_mIoU": prior,
            "image_specific": float((pred != mode_map(pred)).float().mean())}


#: diagnostic rows (``--diagnostics``, synthetic pair only): which half of "+ semantic
#: parts" moves the global feature, the part identity / memory losses or the part-map loss
DIAGNOSTICS = (
    Adaptation("ECN + part-map loss only", "ecn", parts=False, part_map_loss=True),
    Adaptation("ECN + part features only", "ecn", parts=True, part_map_loss=False),
    # the same split under the cluster objective: its parts' losses cost the global
    # feature too (the refinement rows); does the part-map loss alone help it as it
    # helps ECN?
    Adaptation("Clustering + part-map loss only", "cluster", parts=False,
                    part_map_loss=True),
)
#: ``--detached`` rows (every direction): ECN + semantic parts whose part classifier
#: learns from the part-map loss only (``detach_masks=True``). The oracle rows showed the
#: part features' identity / memory losses, which reach the classifier through its
#: masks, keep the maps poor even with the target's ground truth
DETACHED = (
    Adaptation("ECN + semantic parts, detached masks", "ecn", parts=True,
                    detach_masks=True),
)

#: ``--balanced-heads`` rows (every direction): the two "+ semantic parts" methods with
#: ``part_head_weight=1/3``, so the three part heads' identity and memory losses together
#: weigh as much as the global head's (the paper sums four equal heads: 3 to 1 for the
#: parts in the shared backbone's gradient). The diagnostic rows showed those part losses
#: cost the global feature; this asks whether it is their weight.
BALANCED = (
    Adaptation("ECN + semantic parts, part heads 1/3", "ecn", parts=True,
                    overrides=(("part_head_weight", 1 / 3),)),
    Adaptation("Clustering + semantic parts, part heads 1/3", "cluster", parts=True,
                    overrides=(("part_head_weight", 1 / 3),)),
)
#: ``--refinement`` rows (every direction), issue 13's ablation of the part refinement of
#: clustering + semantic parts. The default has the part-guided refinement of the global
#: target and no agreement-aware smoothing of the part targets: these rows measured the
#: smoothing to cost accuracy in every direction (it was the default before). So: without
#: the global refinement; with the smoothing (the earlier default), alone and with the
#: global refinement off, the part heads at 1/3 (see BALANCED), or the agreement's
#: neighbour lists at the domain's scale (PPLR's k = 20 is for Market-1501's 17.2 images
#: per identity; the synthetic domains have about 7, so a top-20 list holds at most 6 of
#: a person's other images: k = round(20 * 7 / 17.2) = 8)
_SMOOTHING = ("cluster_part_smoothing", True)
REFINEMENT = (
    Adaptation("Clustering + semantic parts, no global refinement", "cluster",
                    parts=True, overrides=(("cluster_refine_global", False),)),
    Adaptation("Clustering + semantic parts, with part smoothing", "cluster",
                    parts=True, overrides=(_SMOOTHING,)),
    Adaptation("Clustering + semantic parts, with part smoothing, no global refinement",
                    "cluster", parts=True,
                    overrides=(_SMOOTHING, ("cluster_refine_global", False))),
    Adaptation("Clustering + semantic parts, with part smoothing, part heads 1/3",
                    "cluster", parts=True, overrides=(_SMOOTHING, ("part_head_weight", 1 / 3))),
    Adaptation("Clustering + semantic parts, with part smoothing, agreement k 8",
                    "cluster", parts=True, overrides=(_SMOOTHING, ("cluster_agreement_k", 8))),
)


#: ``--part-triplet`` rows (every direction): the part features trained with a metric loss
#: instead of identity and memory losses, as BPBReID's GiLt does (Somers et al., WACV 2023:
#: identity losses on holistic features, triplet losses on the parts). The part heads'
#: identity and memory losses get weight 0 and the source batches a batch-hard triplet
#: loss on the global and each part feature; the two rows before it are its references
#: with the same triplet loss on the global feature only.
_TRIPLET = ("triplet_weight", 1.0)
PART_TRIPLET = (
    Adaptation("ECN, source triplet", "ecn", parts=False, overrides=(_TRIPLET,)),
    Adaptation("ECN + part-map loss only, source triplet", "ecn", parts=False,
                    part_map_loss=True, overrides=(_TRIPLET,)),
    Adaptation("ECN + semantic parts, part triplet instead of part identity", "ecn",
                    parts=True, overrides=(_TRIPLET, ("triplet_parts", True),
                                           ("part_head_weight", 0.0))),
)


#: the extra row groups that run in every direction: command-line flag -> (rows, help).
#: Each group's rows whose objective the settings leave out are skipped.
ROW_GROUPS: dict[str, tuple[tuple[Any, ...], str]] = {
    "detached": (DETACHED, "also ECN + semantic parts with detach_masks=True"),
    "balanced-heads": (BALANCED, "also ECN + semantic parts and clustering + semantic "
                       "parts with part_head_weight=1/3"),
    "refinement": (REFINEMENT, "also clustering + semantic parts with each piece of its "
                   "part refinement switched (issue 13's ablation)"),
    "part-triplet": (PART_TRIPLET, "also ECN + semantic parts with a triplet loss instead of "
                     "identity and memory losses on the parts, and its two references"),
}


#: oracle diagnostic rows (``--oracle``, synthetic pair only: a -> c has no maps): the
#: same adaptations trained with the target's ground-truth part maps, which real data
#: does not have. They ask whether the part features help once the maps are good.
ORACLE = (
    Adaptation("ECN + semantic parts with target GT maps", "ecn", parts=True,
                    target_part_maps=True),
    Adaptation("ECN + part-map loss only with target GT maps", "ecn", parts=False,
                    part_map_loss=True, target_part_maps=True),
)


def scores_from_checkpoints(settings: Any, target: Any, folder: Path,
                            methods: list[Any] | None = None,
                            ) -> tuple[dict[str, Any], Any] | None:
    """The demo's rows from the checkpoints of a finished direction (None if one is
    missing): the source model for direct transfer, each method's ``adapt_final.pt``."""
    from semparts_reid.inference.evaluation import evaluate_model

    paths = {"Direct transfer": source_checkpoint(folder)}
    for method in chosen_adaptations(settings) if methods is None else methods:
        paths[method.name] = folder / method_folder(method) / "adapt_final.pt"
    if not all(p.is_file() for p in paths.values()):
        return None
    rows: dict[str, Any] = {}
    part_model = None
    for name, path in paths.items():
        model = load_model_from_checkpoint(path).eval()
        for suffix, mode in FEATURES:
            metrics = evaluate_model(model, target.query, target.gallery, mode=mode,
                                     device="cpu", batch_size=128, progress=False)
            rows[f"{name} ({suffix})"] = metrics_row(metrics)
        if name == "ECN + semantic parts":
            part_model = model
    return rows, part_model


def _methods(settings: Any, target: str, diagnostics: bool, on_c: bool = False,
             oracle: bool = False, groups: Sequence[str] = ()) -> list[Any]:
    """The demo's methods, then the extra rows: :data:`DIAGNOSTICS` (synthetic pair, and
    a -> c with ``on_c``), :data:`ORACLE` (synthetic pair) and each of ``groups`` (names
    of :data:`ROW_GROUPS`, every direction)."""
    extra = ([m for m in DIAGNOSTICS if m.objective in settings.objectives]
             if diagnostics and (on_c or target != "c") else [])
    if oracle and target != "c":
        extra += list(ORACLE)
    for name in groups:
        extra += [m for m in ROW_GROUPS[name][0] if m.objective in settings.objectives]
    return chosen_adaptations(settings) + extra


def direction_spec(seed: int, s: str, t: str, settings: Any, work: Path, c_root: Path,
                    methods: tuple[Any, ...] | None = None) -> Any:
    """The ``DirectionSpec`` of direction ``s -> t`` of ``seed`` in the work folder."""

    size_opt = f"?size={settings.dataset_size}&seed={seed}"
    return DirectionSpec(
        f"{s} -> {t}", f"synthetic:{s}{size_opt}",
        f"market1501:{c_root}" if t == "c" else f"synthetic:{t}{size_opt}",
        work / f"seed{seed}" / f"{s}2{t}", methods)


def _r1_map(rows: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The rows' R1 and mAP (what the per-seed records keep)."""
    return {k: {m: v[m] for m in ("R1", "mAP")} for k, v in rows.items()}


def extend_seed(record: dict[str, Any], seed: int, settings: Any, work: Path, c_root: Path,
                methods_of: Any, workers: int) -> dict[str, Any]:
    """Add the rows of the methods ``methods_of(target)`` names that a finished seed's
    ``record`` lacks: each such adaptation runs from that direction's source checkpoint
    in ``work`` (the very weights the record's other rows started from), on ``workers``
    processes, and its rows are merged into ``record``."""

    threads = threads_per_worker(workers)
    jobs = []
    for s, t in DIRECTIONS:
        spec = direction_spec(seed, s, t, settings, work, c_root)
        if not source_checkpoint(spec.out).is_file():
            raise FileNotFoundError(
                f"seed {seed} {spec.label}: no source checkpoint to extend from")
        have = record[spec.label]["rows"]
        jobs += [DemoJob(spec, m, settings, seed, "cpu", threads)
                 for m in methods_of(t) if f"{m.name} (global)" not in have]
    with spawn_pool(workers) as pool:
        for job, (rows, _, seconds) in zip(jobs, pool.map(run_job, jobs), strict=True):
            print(f"seed {seed} {job.name}: {seconds:.0f} s", flush=True)
            record[job.direction.label]["rows"].update(_r1_map(rows))
    score_diagnostic_part_maps(record, seed, settings, work, c_root, methods_of)
    return record


def score_diagnostic_part_maps(record: dict[str, Any], seed: int, settings: Any, work: Path,
                               c_root: Path, methods_of: Any) -> None:
    """Score the part maps of every extra row that trains them (beyond the demo's
    methods) on the synthetic targets, as the ECN + parts model's are scored,
    into ``record[direction]["part_maps_rows"][name]`` (rows scored before are kept)."""
    for s, t in DIRECTIONS:
        if t == "c":  # no ground truth to score against
            continue
        spec = direction_spec(seed, s, t, settings, work, c_root)
        scored = record[spec.label].setdefault("part_maps_rows", {})
        extra = [m for m in methods_of(t) if m not in ADAPTATIONS
                 and m.trains_part_maps and m.name not in scored]
        if not extra:
            continue
        target = build_dataset(spec.target_spec)
        for method in extra:
            ckpt = spec.out / method_folder(method) / "adapt_final.pt"
            scored[method.name] = score_part_maps(load_model_from_checkpoint(ckpt), target,
                                                  tuple(settings.input_size), 1000)


def run_seed(seed: int, settings: Any, work: Path, c_root: Path, reuse: bool = False,
             workers: int = 1, diagnostics: bool = False, diagnostics_on_c: bool = False,
             oracle: bool = False, groups: Sequence[str] = ()) -> dict[str, Any]:
    """One seed: every direction's rows (and part-map scores for the synthetic pair).

    ``workers > 1`` runs the seed's source trainings and adaptations side by side on
    worker processes (``semparts_reid.cli.demo_jobs``); each entry's ``seconds`` is then
    the seed's wall time for all its directions. ``diagnostics`` adds :data:`DIAGNOSTICS`
    on the synthetic pair (and on a -> c with ``diagnostics_on_c``), ``oracle``
    :data:`ORACLE` and ``groups`` the named :data:`ROW_GROUPS`."""

    def methods_of(t: str) -> list[Any]:
        return _methods(settings, t, diagnostics, diagnostics_on_c, oracle, groups)

    specs = {(s, t): direction_spec(seed, s, t, settings, work, c_root, tuple(methods_of(t)))
             for s, t in DIRECTIONS}
    results: dict[tuple[str, str], tuple[dict[str, Any], Any, float]] = {}
    todo = []
    for key, spec in specs.items():
        target = build_dataset(spec.target_spec)
        done = (scores_from_checkpoints(settings, target, spec.out, list(spec.methods or ()))
                if reuse else None)
        if done is not None:
            print(f"seed {seed} {spec.label}: scored the checkpoints in {spec.out}", flush=True)
            results[key] = (*done, 0.0)
        else:
            todo.append(key)
    if todo and workers > 1:
        t0 = time.perf_counter()
        ran = run_directions([specs[k] for k in todo], settings, seed=seed,
                                       device="cpu", workers=workers)
        seconds = time.perf_counter() - t0
        for key in todo:
            out = ran[specs[key].label]
            results[key] = (out.rows, load_model_from_checkpoint(out.figure_checkpoint),
                            seconds)
    else:
        for key in todo:
            spec, t0 = specs[key], time.perf_counter()
            source, target = build_dataset(spec.source_spec), build_dataset(spec.target_spec)
            rows, part_model = run_direction(settings, source, target, spec.out, seed,
                                                   "cpu", spec.methods)
            results[key] = (rows, part_model, time.perf_counter() - t0)
    out: dict[str, Any] = {}
    for (s, t), spec in specs.items():
        rows, part_model, seconds = results[(s, t)]
        entry: dict[str, Any] = {"rows": _r1_map(rows), "seconds": seconds}
        if t != "c":  # the synthetic targets keep their ground truth for scoring only
            target = build_dataset(spec.target_spec)
            src_model = load_model_from_checkpoint(source_checkpoint(spec.out))
            size = tuple(settings.input_size)
            entry["part_maps_source_model"] = score_part_maps(src_model, target, size, 1000)
            entry["part_maps_adapted"] = score_part_maps(part_model, target, size, 1000)
        out[spec.label] = entry
        print(f"seed {seed} {spec.label}: {entry['seconds']:.0f} s", flush=True)
        print(format_table({spec.label: rows}), flush=True)
    score_diagnostic_part_maps(out, seed, settings, work, c_root, methods_of)
    return out


def summarise(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min, max and count over the seeds that ran each figure."""
    summary: dict[str, Any] = {}
    for direction in per_seed[0]:
        entry: dict[str, Any] = {"rows": {}}
        names = dict.fromkeys(r for s in per_seed for r in s[direction]["rows"])
        for row in names:
            entry["rows"][row] = {}
            for m in ("R1", "mAP"):
                vals = [100 * s[direction]["rows"][row][m] for s in per_seed
                        if row in s[direction]["rows"]]
                entry["rows"][row][m] = {"median": statistics.median(vals), "min": min(vals),
                                         "max": max(vals), "seeds": len(vals)}
        for key in ("part_maps_source_model", "part_maps_adapted"):
            runs = [s[direction][key] for s in per_seed if key in s[direction]]
            if runs:
                entry[key] = _spread(runs)
        scored = [s[direction]["part_maps_rows"] for s in per_seed
                  if "part_maps_rows" in s[direction]]
        if scored:
            entry["part_maps_rows"] = {name: _spread([r[name] for r in scored if name in r])
                                       for name in scored[0]}
        summary[direction] = entry
    return summary


def _spread(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median, min, max and count of each figure over ``runs``."""
    return {m: {"median": statistics.median(r[m] for r in runs), "min": min(r[m] for r in runs),
                "max": max(r[m] for r in runs), "seeds": len(runs)} for m in runs[0]}


def print_summary(summary: dict[str, Any], seeds: list[int]) -> None:
    print(f"\nmedian over seeds {seeds} (min .. max); target part maps withheld (except "
          "the rows named 'with target GT maps': an oracle diagnostic)")
    for direction, entry in summary.items():
        print(f"\n{direction}")
        for row, vals in entry["rows"].items():
            print(f"  {row:<46} R1 {vals['R1']['median']:5.1f} ({vals['R1']['min']:5.1f} .. "
                  f"{vals['R1']['max']:5.1f})  mAP {vals['mAP']['median']:5.1f} "
                  f"({vals['mAP']['min']:5.1f} .. {vals['mAP']['max']:5.1f})  "
                  f"{vals['mAP']['seeds']} seed(s)")
        for key in ("part_maps_source_model", "part_maps_adapted"):
            if key in entry:
                print(f"  {key}: " + "  ".join(
                    f"{m} {v['median']:.3f}" for m, v in entry[key].items()))
        for name, scores in entry.get("part_maps_rows", {}).items():
            print(f"  part maps of {name}: " + "  ".join(
                f"{m} {v['median']:.3f}" for m, v in scores.items()))


def targets(summary: dict[str, Any]) -> list[Target]:
    """The issues' targets on the medians."""
    out: list[Target] = []

    def gap(direction: str, a: str, b: str, feat: str) -> float:
        rows = summary[direction]["rows"]
        return rows[f"{a} ({feat})"]["mAP"]["median"] - rows[f"{b} ({feat})"]["mAP"]["median"]

    def seeds(direction: str, name: str, feat: str) -> str:
        n = summary[direction]["rows"][f"{name} ({feat})"]["mAP"].get("seeds", 3)
        return "" if n >= 3 else f" [{n} seed{'s' if n > 1 else ''}]"

    for direction in summary:
        pair = not direction.endswith("c")
        for feat in ("global", "global + parts"):
            out.append(Target(f"{direction}, {feat}: ECN + parts - ECN (mAP)",
                              gap(direction, "ECN + semantic parts", "ECN", feat), ">=",
                              2.0 if pair else 0.0, fmt="+.1f"))
            if pair:
                out.append(Target(f"{direction}, {feat}: ECN + parts - direct transfer (mAP)",
                                  gap(direction, "ECN + semantic parts", "Direct transfer",
                                      feat), ">=", 10.0, fmt="+.1f"))
            if f"Clustering + semantic parts ({feat})" in summary[direction]["rows"]:
                tag = seeds(direction, "Clustering + semantic parts", feat)
                out.append(Target(
                    f"{direction}, {feat}: clustering + parts - ECN + parts (mAP){tag}",
                    gap(direction, "Clustering + semantic parts", "ECN + semantic parts",
                        feat), ">=", 10.0, fmt="+.1f"))
                out.append(Target(
                    f"{direction}, {feat}: clustering + parts - clustering (mAP){tag}",
                    gap(direction, "Clustering + semantic parts", "Clustering", feat),
                    ">=", 2.0, fmt="+.1f"))
        maps = summary[direction].get("part_maps_adapted")
        if maps:
            med = {k: v["median"] for k, v in maps.items()}
            out += [
                Target(f"{direction}: part-map mIoU (ECN + parts model)", med["mIoU"], ">=",
                       0.70, fmt=".3f"),
                Target(f"{direction}: part-map mIoU above the positional prior",
                       med["mIoU"] - med["prior_mIoU"], ">=", 0.10, fmt="+.3f"),
                Target(f"{direction}: head IoU", med["head"], ">=", 0.50, fmt=".3f"),
                Target(f"{direction}: image-specific pixels", 100 * med["image_specific"],
                       ">=", 10.0, unit="%", fmt=".1f"),
            ]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--quick", action="store_true", help="tiny data, one seed (smoke run)")
    p.add_argument("--no-cluster", action="store_true", help="ECN rows only")
    p.add_argument("--json", default=None, help="write per-seed results and the summary here")
    p.add_argument("--work-dir", default=None)
    p.add_argument("--reuse", action="store_true",
                   help="score the finished checkpoints in --work-dir instead of training")
    p.add_argument("--summarise-only", action="store_true",
                   help="merge WORK/seed<N>.json of --seeds without running anything")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that train side by side (default: the demo's: one per "
                   "CPU core, at most 8; 1: one job after another in this process)")
    p.add_argument("--diagnostics", action="store_true",
                   help="also ECN + part-map loss only, ECN + part features only and "
                   "clustering + part-map loss only, on the synthetic pair")
    p.add_argument("--diagnostics-on-c", action="store_true",
                   help="the diagnostic rows on a -> c too")
    for flag, (_, text) in ROW_GROUPS.items():
        p.add_argument(f"--{flag}", action="store_true", help=f"{text} (every direction)")
    p.add_argument("--oracle", action="store_true",
                   help="also ECN + semantic parts and ECN + part-map loss only trained "
                   "with the target's ground-truth part maps (an oracle; synthetic pair "
                   "only)")
    p.add_argument("--extend", action="store_true",
                   help="add the missing methods' rows (and the diagnostic rows' part-map "
                   "scores) to finished seeds (WORK/seed<N>.json) from their source "
                   "checkpoints, without retraining the others; a seed without a record "
                   "runs in full")
    p.add_argument("--cluster-seeds", type=int, nargs="*", default=None,
                   help="seeds that also run the clustering methods (default: every seed)")
    args = p.parse_args(argv)
    groups = [flag for flag in ROW_GROUPS if getattr(args, flag.replace("-", "_"))]
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    if args.no_cluster:
        settings = dataclasses.replace(settings, objectives=("ecn",))
    seeds = args.seeds[:1] if args.quick else args.seeds

    workers = default_workers("cpu") if args.workers is None else args.workers
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_semantic_parts_"))
    per_seed = []
    for seed in seeds:
        record = work / f"seed{seed}.json"
        if args.summarise_only:
            per_seed.append(json.loads(record.read_text()))
            continue
        if args.extend and record.is_file():
            c_root = work / f"synthetic_c_market_seed{seed}"
            per_seed.append(extend_seed(
                json.loads(record.read_text()), seed, settings, work, c_root,
                lambda t: _methods(settings, t, args.diagnostics, args.diagnostics_on_c,
                                   args.oracle, groups),
                workers))
            record.write_text(json.dumps(per_seed[-1], indent=2))
            continue
        c_root = work / f"synthetic_c_market_seed{seed}"
        if not c_root.exists():
            write_synthetic_market("c", c_root, size=settings.dataset_size, seed=seed,
                                   part_maps=False, progress=False)
        run = settings
        if args.cluster_seeds is not None and seed not in args.cluster_seeds:
            run = dataclasses.replace(settings, objectives=("ecn",))
        per_seed.append(run_seed(seed, run, work, c_root, reuse=args.reuse, workers=workers,
                                 diagnostics=args.diagnostics,
                                 diagnostics_on_c=args.diagnostics_on_c,
                                 oracle=args.oracle, groups=groups))
        record.write_text(json.dumps(per_seed[-1], indent=2))
    summary = summarise(per_seed)
    print_summary(summary, seeds)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"seeds": seeds, "settings": dataclasses.asdict(settings),
             "target_part_labels": label_source(settings),
             "per_seed": per_seed, "summary": summary}, indent=2))
    return report(targets(summary), checked=not args.quick and len(seeds) >= 3,
                  why_unchecked="fewer than 3 seeds or a quick run")


if __name__ == "__main__":
    raise SystemExit(main())
