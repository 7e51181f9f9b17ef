"""GPU throughput of the training loop, the extractor and the evaluation, on one CUDA device.

Without a CUDA device the script prints ``no CUDA device: skipped`` and exits 0.

1. **Training**, ``semparts_resnet50`` at 256×128, ECN adaptation steps (source P×K
   batch of 64 + target batch of 64, camera-style images, exemplar memory, part loss)
   on the synthetic pair:
   * *compute*: :meth:`DomainAdaptTrainer._step` on batches already on the GPU, in fp32
     (contiguous) and in bf16 autocast + ``channels_last`` (the precision policy);
   * *loop*: whole epochs of the trainer's loop (loader workers, ``move_batch``, the
     scheduled finiteness check) in bf16, images/s from the epoch records (the first
     epoch, with worker start-up and cuDNN autotuning, left out).
2. **Extractor** images/s: ``FeatureExtractor`` on a uint8 tensor batch (model only)
   and on image files (decoding workers, pinned copies).
3. **Evaluation** at Market-1501 scale (3368 × 15913, D = 2048): ``evaluate_cmc_map``
   from features on the GPU against the same call on the CPU, same run.

Targets (full run only, see ``experiments.targets``): bf16 + channels_last training compute
>= 1.5× fp32; the loop >= 0.8× the compute rate (the loader keeps the GPU busy).

Usage::

    python benchmarks/bench_gpu.py             # full run (a few minutes on one GPU)
    python benchmarks/bench_gpu.py --quick     # resnet18 at 128×64, small sizes
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from semparts_reid.experiments.targets import Target, report

BF16_SPEEDUP = 1.5  # bf16 + channels_last over fp32, training compute
LOOP_SHARE = 0.8  # training loop images/s over compute-only images/s


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes; targets not checked")
    p.add_argument("--steps", type=int, default=20, help="timed compute steps")
    p.add_argument("--epochs", type=int, default=3, help="loop epochs (the first is warm-up)")
    p.add_argument("--workers", type=int, default=min(8, max(1, (os.cpu_count() or 2) - 2)))
    p.add_argument("--extract", type=int, default=4096, help="images for the extractor")
    args = p.parse_args(argv)
    args.arch, args.size, args.input, args.batch = "semparts_resnet50", "default", (256, 128), 64
    if args.quick:
        args.arch, args.size, args.input, args.batch = "semparts_resnet18", "tiny", (128, 64), 16
        args.steps, args.epochs, args.extract = 3, 2, 256
    return args


def _trainer(args: argparse.Namespace, pair: Any, out: str, precision: str,
             channels_last: bool) -> Any:
    from semparts_reid.engine.config import TrainConfig
    from semparts_reid.engine.trainer import DomainAdaptTrainer
    from semparts_reid.models.factory import build_model

    a, b = pair
    cfg = TrainConfig().replace(
        arch=args.arch, pretrained=None, input_size=args.input, batch_size=args.batch,
        target_batch_size=args.batch, num_instances=4, num_workers=args.workers,
        epochs=args.epochs, source_epochs=0, eval_every=0, checkpoint_every=0,
        output_dir=out, progress=False, precision=precision, channels_last=channels_last,
        device="cuda", neighbour_start_epoch=0,
    )
    model = build_model(args.arch, num_classes=a.num_train_pids, input_size=args.input)
    return DomainAdaptTrainer(model, a, b, cfg, loggers=[])


def train_compute(args: argparse.Namespace, pair: Any, precision: str, cl: bool) -> float:
    """Images/s of the step alone (forward, losses, backward, Adam, memory update)."""
    from semparts_reid.engine.loaders import move_batch
    from semparts_reid.engine.objectives import EpochState

    with tempfile.TemporaryDirectory() as out:
        trainer = _trainer(args, pair, out, precision, cl)
        trainer._start_stage("adapt")
        trainer.objective.start_epoch(EpochState("adapt", 0), lambda: None)
        src = trainer.batches.iterator("source", "adapt", 0, 2)
        tgt = trainer.batches.iterator("target", "adapt", 0, 2)
        bs, bt = (move_batch(next(it), trainer.policy) for it in (src, tgt))
        trainer._wrap().train()
        for _ in range(3):  # lazy initialisation, cuDNN autotuning
            trainer._step(bs, bt, where="warm-up")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(args.steps):
            trainer._step(bs, bt, where=f"step {i}")
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        trainer.batches.close()
    return args.steps * 2 * args.batch / seconds


def train_loop(args: argparse.Namespace, pair: Any) -> float:
    """Images/s of whole bf16 epochs of the trainer's loop (first epoch left out)."""
    with tempfile.TemporaryDirectory() as out:
        trainer = _trainer(args, pair, out, "bf16", True)
        trainer.adapt(args.epochs)
        rates = [r["images_per_s"] for r in trainer.history[1:]]
        trainer.batches.close()
    return sum(rates) / len(rates)


def extract_rates(args: argparse.Namespace, pair: Any) -> dict[str, float]:
    from semparts_reid.inference import FeatureExtractor
    from semparts_reid.models.factory import build_model

    model = build_model(args.arch, num_classes=0, input_size=args.input)
    ext = FeatureExtractor(model, device="cuda", precision="auto", batch_size=256,
                           num_workers=args.workers, progress=False)
    x = torch.randint(0, 256, (args.extract, 3, *args.input), dtype=torch.uint8)
    paths = [r.path for r in pair[1].query + pair[1].gallery]
    paths = (paths * (-(-args.extract // len(paths))))[: args.extract]
    rates: dict[str, float] = {}
    for name, inputs in (("tensor", x), ("files", paths)):
        ext(inputs[:256])  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        ext(inputs)
        torch.cuda.synchronize()
        rates[name] = args.extract / (time.perf_counter() - t0)
    return rates


def eval_seconds(quick: bool) -> dict[str, float]:
    from bench_eval import make_data
    from semparts_reid.metrics.rank import evaluate_cmc_map

    shape = (300, 1500, 100, 6, 256) if quick else (3368, 15913, 751, 6, 2048)
    q, g, qp, gp, qc, gc = make_data(*shape, seed=0)
    out: dict[str, float] = {}
    for device in ("cuda", "cpu"):
        qt, gt = torch.from_numpy(q).to(device), torch.from_numpy(g).to(device)
        evaluate_cmc_map((qt[:64], gt), qp[:64], gp, qc[:64], gc)  # warm-up
        t0 = time.perf_counter()
        m = evaluate_cmc_map((qt, gt), qp, gp, qc, gc)
        out[device] = time.perf_counter() - t0
        out[f"{device}_mAP"] = m.mAP
    return out


def targets(fp32: float, bf16: float, loop: float) -> list[Target]:
    return [
        Target("training compute bf16+channels_last / fp32", bf16 / fp32, ">=", BF16_SPEEDUP,
               "x"),
        Target("training loop / compute images/s (bf16)", loop / bf16, ">=", LOOP_SHARE, "x"),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return 0
    os.environ.setdefault("SEMPARTS_REID_HOME", str(Path(tempfile.gettempdir()) / "srh-bench"))
    from semparts_reid.data.datasets import build_dataset

    pair = (build_dataset(f"synthetic:a?size={args.size}"),
            build_dataset(f"synthetic:b?size={args.size}"))
    print(f"{torch.cuda.get_device_name(0)}; {args.arch} at {args.input[0]}x{args.input[1]}, "
          f"batches of {args.batch} + {args.batch}, {args.workers} loader workers")
    fp32 = train_compute(args, pair, "fp32", False)
    bf16 = train_compute(args, pair, "bf16", True)
    loop = train_loop(args, pair)
    print(f"training compute fp32: {fp32:.0f} images/s; bf16+channels_last: {bf16:.0f} "
          f"images/s ({bf16 / fp32:.2f}x)")
    print(f"training loop (bf16, loader included): {loop:.0f} images/s "
          f"({loop / bf16:.2f}x of compute)")
    ext = extract_rates(args, pair)
    print(f"extractor: {ext['tensor']:.0f} images/s from a uint8 tensor, "
          f"{ext['files']:.0f} images/s from files")
    ev = eval_seconds(args.quick)
    print(f"evaluate_cmc_map ({'quick' if args.quick else 'Market-1501'} scale) from features: "
          f"{ev['cuda']:.2f} s on the GPU, {ev['cpu']:.2f} s on the CPU "
          f"({ev['cpu'] / ev['cuda']:.1f}x); mAP {ev['cuda_mAP']:.4f} vs {ev['cpu_mAP']:.4f}")
    return report(targets(fp32, bf16, loop), checked=not args.quick,
                  why_unchecked="quick run")


if __name__ == "__main__":
    raise SystemExit(main())
