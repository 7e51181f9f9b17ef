"""Which part labels should a target without part maps get? (issue 12, item 3)

ECN + semantic parts is adapted from the source checkpoints that
``bench_semantic_parts.py`` left in its work folder (same seeds, same schedule as the
demo), once per label source for the target images (``unlabeled_part_labels``):

* ``self``: the part classifier's own predictions where its confidence >= 0.9;
* ``self_balanced``: the same with class-balanced selection (CBST): each part keeps at
  least the most confident half of the batch's pixels predicted as it
  (``self_label_class_portion=0.5``), so the head cannot starve;
* ``pseudo``: self-supervised k-means of the feature maps;
* ``none``: no part loss on the target.

For each: target mAP with the global and the global + parts feature, and the part-map
quality of the adapted model on the target query images against the withheld ground
truth (used for scoring only). The quality of the labels themselves (their mIoU and the
share of pixels they label) is measured on the source model's predictions of the target
query images. No target: it informs the default. Run::

    python benchmarks/ablate_part_labels.py WORK_DIR --seeds 0 1 2 --json out.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from bench_part_maps import load_target, predict_logits
from bench_semantic_parts import direction_spec, score_part_maps
from semparts_reid.data.datasets import build_dataset
from semparts_reid.experiments import (
    Adaptation,
    DemoSettings,
    adapt_from,
    default_workers,
    source_checkpoint,
    spawn_pool,
    threads_per_worker,
)
from semparts_reid.inference.extractor import load_model_from_checkpoint
from semparts_reid.layers.part_classifier import confident_part_labels
from semparts_reid.metrics.part_iou import part_map_iou

SOURCES = ("self", "self_balanced", "pseudo", "none")
#: the class portion of the ``self_balanced`` source (CBST keeps the top half per class)
BALANCED_PORTION = 0.5


def label_quality(model: Any, target: Any, size: tuple[int, int]) -> dict[str, Any]:
    """mIoU and coverage of the self and pseudo labels of the source model on the target."""
    model = model.eval().float()
    dc = model.data_config
    x, gt = load_target(list(target.query), size, dc["mean"], dc["std"])
    logits, pseudo = predict_logits(model, x, pseudo_size=size)
    assert pseudo is not None
    self_labels = confident_part_labels(logits, threshold=0.9, size=size)
    balanced = confident_part_labels(logits, threshold=0.9, size=size,
                                     class_portion=BALANCED_PORTION)
    out = {}
    for name, lab in (("self", self_labels), ("self_balanced", balanced), ("pseudo", pseudo)):
        known = lab != 255
        scored = torch.where(known, gt, torch.full_like(gt, 255))
        out[name] = {"mIoU_on_labelled": part_map_iou(lab, scored).miou,
                     "labelled_fraction": float(known.float().mean())}
    return out


def _spec(settings: Any, work_dir: str, seed: int, key: str) -> Any:
    """The benchmark's ``DirectionSpec`` of direction ``key`` (``"a2b"``, ``"b2a"``) of
    ``seed``: its dataset specs and run folder under ``work_dir``."""
    return direction_spec(seed, key[0], key[-1], settings, Path(work_dir),
                           Path(work_dir) / f"synthetic_c_market_seed{seed}")


def adapt_with_labels(job: tuple[str, int, str, str, int]) -> tuple[str, str, dict[str, float]]:
    """One adaptation (run in a worker process): ECN + semantic parts from the source
    checkpoint of ``(work_dir, seed, direction)``, target labels ``src``; its row."""
    work_dir, seed, key, src, threads = job
    torch.set_num_threads(threads)
    settings = DemoSettings()
    method = Adaptation("ECN + semantic parts", "ecn", True)
    size = tuple(settings.input_size)
    spec = _spec(settings, work_dir, seed, key)
    source, target = build_dataset(spec.source_spec), build_dataset(spec.target_spec)
    run = dataclasses.replace(settings, objectives=("ecn",))
    if src == "self_balanced":
        run = dataclasses.replace(run, unlabeled_part_labels="self",
                                  self_label_class_portion=BALANCED_PORTION)
    else:
        run = dataclasses.replace(run, unlabeled_part_labels=src)
    scores, model = adapt_from(run, method, source_checkpoint(spec.out),
                                    source, target, spec.out / f"labels_{src}", seed, "cpu")
    row = {"mAP_global": 100 * scores["global"]["mAP"],
           "mAP_global+parts": 100 * scores["global + parts"]["mAP"],
           **score_part_maps(model, target, size, 1000)}
    return key, src, row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work_dir", help="the --work-dir of bench_semantic_parts.py")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--directions", nargs="+", default=["a2b", "b2a"])
    p.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES),
                   help="label sources to adapt with (the accuracy benchmark's ECN + parts "
                   "rows are 'self')")
    p.add_argument("--quality-only", action="store_true",
                   help="only the labels' quality on the source checkpoints (no adaptation)")
    p.add_argument("--json", default=None)
    p.add_argument("--workers", type=int, default=None,
                   help="processes adapting side by side (default: one per CPU core, at most 8)")
    args = p.parse_args(argv)
    settings = DemoSettings()
    size = tuple(settings.input_size)
    workers = args.workers or default_workers("cpu")
    threads = threads_per_worker(workers)
    jobs: list[tuple[str, int, str, str, int]] = []
    per: dict[str, dict[str, list[dict[str, float]]]] = {}
    quality: dict[str, list[dict[str, Any]]] = {}
    for seed in args.seeds:
        for key in args.directions:
            spec = _spec(settings, args.work_dir, seed, key)
            ckpt = source_checkpoint(spec.out)
            target = build_dataset(spec.target_spec)
            quality.setdefault(key, []).append(
                label_quality(load_model_from_checkpoint(ckpt), target, size))
            jobs += [(str(args.work_dir), seed, key, src, threads)
                     for src in ([] if args.quality_only else args.sources)]
    # the adaptations side by side, one thread each (as the demo's worker processes)
    with spawn_pool(workers) as pool:
        for (_, seed, _, _, _), (key, src, row) in zip(
                jobs, pool.map(adapt_with_labels, jobs), strict=True):
            per.setdefault(key, {}).setdefault(src, []).append(row)
            print(f"seed {seed} {key} {src}: {json.dumps(row)}", flush=True)
    summary = {key: {src: {m: statistics.median(r[m] for r in rows) for m in rows[0]}
                     for src, rows in by_src.items()} for key, by_src in per.items()}
    for key, runs in quality.items():
        for src in ("self", "self_balanced", "pseudo"):
            for m in ("mIoU_on_labelled", "labelled_fraction"):
                vals = [q[src][m] for q in runs]
                print(f"{key} {src} labels: {m} median {statistics.median(vals):.3f} "
                      f"({min(vals):.3f} .. {max(vals):.3f})")
    print(json.dumps({"median": summary, "label_quality": quality}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"seeds": args.seeds, "per_seed": per, "median": summary,
             "label_quality": quality}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
