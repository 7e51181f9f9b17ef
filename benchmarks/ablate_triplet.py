"""Does the batch-hard triplet loss help on the synthetic pair? The demo's schedule with
and without it.

For each direction (``a -> b``, ``b -> a``) and seed, two arms run the demo's pipeline
(``semparts-reid demo``: same data, network, sizes and schedule, from
``experiments.DemoSettings``): source training on the labeled source, then ECN + semantic
parts adaptation (the demo's last row) from that source model, evaluated with the
demo's part feature (``concat``). The arms differ only in ``triplet_weight``: 0 (the
demo as it is) vs ``--weight`` (default 1.0), with ``--margin`` (0.3, or ``soft``) on
the source batches of both stages (P x K batches, ``num_instances = 4``), on the global
feature before the BNNeck (``--parts``: on the part features too). The ``off`` arm is
the demo's own run, so its row equals the demo's "ECN + semantic parts" row at the same
seed and device.

Prints mAP / R1 (in %) per row, the direct transfer of each arm's source model, and the
median over seeds of (on - off) per direction; writes everything to
``benchmarks/triplet_ablation.json`` (``--out``). No target: this script measures
whether the term should be on by default (``TrainConfig.triplet_weight``; it is not).

Run: ``python benchmarks/ablate_triplet.py [--seeds 0 1 2] [--directions a2b b2a]
[--weight 1.0] [--margin 0.3|soft] [--parts] [--device auto] [--quick]``
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from semparts_reid.experiments import (
    DIRECTIONS,
    DemoSettings,
    source_checkpoint,
    train_config,
    write_results,
)

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "triplet_ablation.json"
METRICS = ("R1", "R5", "R10", "mAP")


def _metrics(m: Any) -> dict[str, float]:
    return {"R1": m.rank(1), "R5": m.rank(5), "R10": m.rank(10), "mAP": float(m.mAP)}


def run_arm(
    settings: DemoSettings, source: Any, target: Any, work: Path, *, seed: int, device: str,
    triplet: dict[str, Any],
) -> dict[str, Any]:
    """Source training then ECN + parts adaptation with ``triplet`` (TrainConfig fields)."""
    from semparts_reid.engine.distributed import seed_everything
    from semparts_reid.engine.trainer import DomainAdaptTrainer
    from semparts_reid.models.factory import build_model

    arch = settings.arch
    t0 = time.perf_counter()
    cfg = train_config(settings, work / "source", seed, device).replace(**triplet)
    seed_everything(seed)
    model = build_model(arch, num_classes=source.num_train_pids, input_size=settings.input_size)
    trainer = DomainAdaptTrainer(model, source, target, cfg)
    trainer.train_source(cfg.optim.source_epochs)
    direct = _metrics(trainer.evaluate(mode=settings.parts_eval_mode))
    cfg = cfg.replace(output_dir=str(work / "ecn_parts"))
    model = build_model(arch, num_classes=source.num_train_pids, input_size=settings.input_size)
    trainer = DomainAdaptTrainer(model, source, target, cfg)
    trainer.load_weights(source_checkpoint(work))
    trainer.adapt(cfg.optim.epochs)
    adapted = _metrics(trainer.evaluate(mode=settings.parts_eval_mode))
    return {"direct": direct, "adapted": adapted, "seconds": time.perf_counter() - t0}


def median_differences(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per direction, the median over seeds of (triplet on - off) of each adapted metric.

    ``rows``: dicts with ``direction``, ``seed``, ``arm`` (``"off"`` / ``"on"``) and
    ``adapted`` (metric -> value). Seeds with only one arm are left out.
    """
    out: dict[str, dict[str, float]] = {}
    for direction in dict.fromkeys(r["direction"] for r in rows):
        by_seed: dict[int, dict[str, dict[str, float]]] = {}
        for r in rows:
            if r["direction"] == direction:
                by_seed.setdefault(r["seed"], {})[r["arm"]] = r["adapted"]
        pairs = [arms for arms in by_seed.values() if {"on", "off"} <= set(arms)]
        if pairs:
            out[direction] = {
                m: statistics.median(p["on"][m] - p["off"][m] for p in pairs) for m in METRICS
            }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--directions", nargs="+", choices=list(DIRECTIONS),
                    default=list(DIRECTIONS))
    ap.add_argument("--weight", type=float, default=1.0, help="triplet_weight of the 'on' arm")
    ap.add_argument("--margin", default="0.3", help="triplet margin, or 'soft'")
    ap.add_argument("--parts", action="store_true", help="triplet on the part features too")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="the demo's tiny preset (smoke run)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    ap.add_argument("--work-dir", type=Path, default=None,
                    help="checkpoints (default: a temporary folder)")
    args = ap.parse_args(argv)
    margin = None if args.margin.lower() == "soft" else float(args.margin)

    from semparts_reid.data.datasets import build_dataset

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    on = {"triplet_weight": args.weight, "triplet_margin": margin, "triplet_parts": args.parts}
    arms = {"off": {}, "on": on}
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        for seed in args.seeds:
            domains = {
                d: build_dataset(f"synthetic:{d}?size={settings.dataset_size}&seed={seed}")
                for d in ("a", "b")
            }
            for key in args.directions:
                s, t = DIRECTIONS[key]
                for arm, triplet in arms.items():
                    res = run_arm(settings, domains[s], domains[t],
                                  work / f"seed{seed}" / key / arm, seed=seed,
                                  device=args.device, triplet=triplet)
                    row = {"direction": f"{s} -> {t}", "seed": seed, "arm": arm, **res}
                    rows.append(row)
                    a, d = row["adapted"], row["direct"]
                    print(f"{row['direction']}  seed {seed}  triplet {arm:>3}:  adapted mAP "
                          f"{100 * a['mAP']:5.1f} R1 {100 * a['R1']:5.1f}  |  direct mAP "
                          f"{100 * d['mAP']:5.1f} R1 {100 * d['R1']:5.1f}  "
                          f"({res['seconds']:.0f} s)", flush=True)
    diffs = median_differences(rows)
    for direction, diff in diffs.items():
        print(f"{direction}: median (on - off) over {len(args.seeds)} seed(s): "
              f"mAP {100 * diff['mAP']:+.1f}, R1 {100 * diff['R1']:+.1f} points")
    payload = {
        "command": "python benchmarks/ablate_triplet.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "settings": dataclasses.asdict(settings),
        "triplet_on": on,
        "eval_mode": settings.parts_eval_mode,
        "rows": rows,
        "median_on_minus_off": diffs,
        "seconds": time.perf_counter() - t_start,
        "machine": platform.platform(),
        "device": args.device,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, payload)
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
