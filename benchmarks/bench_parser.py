"""The human parser on real pedestrian crops: how many it labels, how fast, on 2 cores.

Every ground-truth crop of the MOTChallenge sequences (``mot:...?source=gt``, both the
adaptation and the evaluation frames) goes through ``MediaPipeParser.parse`` in one
batched call, once per worker setting (``--workers``, threads; ``--backend process`` for
processes). Decoding the crops is done first and not timed; a short warm-up call starts
the pose graphs before the clock starts.

Targets (issue 23): the parser labels >= 85 % of the crops, at >= 50 crops/s on 2 cores
with the best worker setting. Needs the ``[parser]`` extra (MediaPipe); without it the
script says so and exits 0 (nothing measured).

Usage::

    python benchmarks/bench_parser.py                   # the two TUD sequences
    python benchmarks/bench_parser.py --quick           # 64 crops, targets not checked
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mot15"
SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")


def load_crops(sequences: list[Path], cache: Path) -> list:
    """Every ground-truth crop of ``sequences`` as an RGB array (train, then eval)."""
    from semparts_reid.data import build_dataset
    from semparts_reid.data.image_io import load_rgb_array

    ds = build_dataset(f"mot:{','.join(map(str, sequences))}?source=gt&cache={cache}")
    return [load_rgb_array(r.path) for r in [*ds.train, *ds.eval]]


def measure(crops: list, workers: int, backend: str) -> dict:
    """Labelled fraction and crops/s of one worker setting."""
    from semparts_reid.parsers import MediaPipeParser

    with MediaPipeParser(workers=workers, backend=backend) as parser:
        parser.parse(crops[: 2 * workers])  # warm-up: start the graphs
        t0, c0 = time.perf_counter(), time.process_time()
        result = parser.parse(crops)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
    return {"workers": workers, "backend": backend, "crops": len(crops),
            "found": int(result.num_found), "labelled": result.num_found / len(crops),
            "seconds": wall, "crops_per_s": len(crops) / wall,
            "cpu_ms_per_crop": 1000 * cpu / len(crops)}


def main(argv: list[str] | None = None) -> int:
    from semparts_reid.experiments.targets import Target, report, write_results

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sequences", nargs="+", type=Path, default=[DATA / s for s in SEQUENCES])
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    p.add_argument("--backend", choices=("thread", "process"), default="thread")
    p.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "_work" / "parser_crops")
    p.add_argument("--output", type=Path, default=None, help="results JSON")
    p.add_argument("--quick", action="store_true", help="64 crops; targets not checked")
    args = p.parse_args(argv)
    try:
        from semparts_reid.parsers.mediapipe_backend import import_mediapipe

        import_mediapipe()
    except ImportError as exc:
        print(f"bench_parser: skipped, nothing measured ({exc})")
        return 0
    crops = load_crops(args.sequences, args.cache)
    crops = crops[:64] if args.quick else crops
    print(f"{len(crops)} crops of {', '.join(s.name for s in args.sequences)}; "
          f"{os.cpu_count()} CPU cores")
    runs = [measure(crops, w, args.backend) for w in args.workers]
    for r in runs:
        print(f"workers {r['workers']} ({r['backend']}): {r['crops_per_s']:.1f} crops/s, "
              f"{100 * r['labelled']:.1f} % labelled ({r['found']} of {r['crops']}), "
              f"{r['cpu_ms_per_crop']:.1f} ms of CPU per crop")
    best = max(runs, key=lambda r: r["crops_per_s"])
    if args.output:
        write_results(args.output, {"runs": runs})
    return report([
        Target("crops labelled by the parser", 100 * best["labelled"], ">=", 85, " %", ".1f"),
        Target(f"parser throughput, best of workers {args.workers}", best["crops_per_s"],
               ">=", 50, " crops/s", ".1f"),
    ], checked=not args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
