"""Training-loader throughput: ours against a torchreid-style loader, same images, same run.

Workload: the training images of ``synthetic:a`` (the embedded domain, written to disk in
the Market-1501 layout), loaded at 256×128 in batches of 64 with 0 and 2 worker processes.

* **ours**: the trainer's loader: :func:`semparts_reid.engine.loaders.build_train_dataset`
  (the trainer's transforms: resize, pad 10 + random crop, flip, random erasing),
  :func:`~semparts_reid.engine.loaders.build_train_loader` (P×K batches, P=16, K=4; the
  workers persist) and :func:`~semparts_reid.engine.loaders.move_batch` onto the CPU in
  fp32 (a batch counts when it is ready for the model: normalised float images).
  Measured twice: without part maps (the same work as the reference: the target's
  figure) and with the part maps a part loss reads (``part_labels`` ``auto``/``gt``).
* **torchreid-style**: what torchreid's ``ImageDataset`` + ``build_transforms`` do: PIL
  ``Image.open(...).convert("RGB")``, torchvision ``Resize``, ``RandomHorizontalFlip``,
  ``Pad(10)`` + ``RandomCrop``, ``ToTensor``, ``Normalize``, ``RandomErasing``; a
  ``RandomSampler``; the default collate.

Both loaders are timed in steady state (worker start-up and the first batches excluded),
alternately, ``--rounds`` times; the best round of each counts. Target: ours >= 1.5× the
torchreid-style loader at equal workers (without part maps). ``--quick`` runs tiny sizes
and checks nothing (see ``experiments.targets``).

Usage::

    python benchmarks/bench_loader.py            # full run
    python benchmarks/bench_loader.py --quick    # smoke run (tests)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from semparts_reid.experiments.targets import Target, report

RATIO = 1.5  # ours / torchreid-style images per second, at equal workers
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes; targets not checked")
    p.add_argument("--size", default="default", help="synthetic size preset of the images")
    p.add_argument("--input", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=24, help="timed batches per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.input, args.batch, args.batches, args.rounds = "tiny", (64, 32), 8, 2, 1
    return args


def is_full_workload(args: argparse.Namespace) -> bool:
    """Targets hold for the default workload only."""
    return (not args.quick and args.size == "default" and tuple(args.input) == (256, 128)
            and args.batch == 64)


class TorchreidStyleDataset(torch.utils.data.Dataset):
    """torchreid's ``ImageDataset.__getitem__``: PIL decode, then the transform."""

    def __init__(self, records: list[Any], transform: Callable[[Any], torch.Tensor]) -> None:
        self.records, self.transform = records, transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from PIL import Image

        path, pid, camid = self.records[i][:3]
        img = Image.open(path).convert("RGB")
        return {"img": self.transform(img), "pid": pid, "camid": camid, "impath": path}


def torchreid_loader(records: list[Any], size: tuple[int, int], batch: int, workers: int,
                     total: int) -> Iterator[Any]:
    """torchreid's training transforms (``random_flip``, ``random_crop``, ``random_erase``)."""
    import torchvision.transforms as T

    h, w = size
    pad = max(1, round(10 * h / 256))
    transform = T.Compose([
        T.Resize((h, w)), T.RandomHorizontalFlip(), T.Pad(pad), T.RandomCrop((h, w)),
        T.ToTensor(), T.Normalize(MEAN, STD), T.RandomErasing(),
    ])
    data = TorchreidStyleDataset(records, transform)
    sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=total)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, sampler=sampler,
                                         num_workers=workers, drop_last=True)
    return iter(loader)


def our_loader(records: list[Any], size: tuple[int, int], batch: int, workers: int,
               total: int, parts: bool) -> Iterator[Any]:
    """The trainer's loader (dataset, sampler, collate) and its move onto the device."""
    from semparts_reid.engine.config import TrainConfig
    from semparts_reid.engine.loaders import build_train_dataset, build_train_loader, move_batch
    from semparts_reid.precision import resolve_precision

    cfg = TrainConfig().replace(input_size=size, batch_size=batch, num_instances=4,
                                num_workers=workers)
    data_config = {"input_size": size, "mean": MEAN, "std": STD}
    data = build_train_dataset(records, cfg, data_config, with_parts=parts)
    loader = build_train_loader(data, [r[1] for r in records], cfg, global_batch=batch,
                                steps=total // batch, seed=0, num_instances=4)
    policy = resolve_precision("cpu", "fp32", channels_last=False)
    return (move_batch(b, policy) for b in loader)


def images_per_s(make: Callable[[int], Iterator[Any]], batch: int, batches: int,
                 warmup: int = 2) -> float:
    """Steady-state images per second of a fresh loader (its first batches not timed)."""
    it = make((warmup + batches) * batch)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    rate = batches * batch / (time.perf_counter() - t0)
    del it
    return rate


def targets(rates: dict[tuple[str, int], float], workers: list[int]) -> list[Target]:
    """One target per worker count: ours (no part maps) / torchreid-style >= RATIO."""
    return [
        Target(f"ours / torchreid-style images/s, {w} workers",
               rates[("ours", w)] / rates[("torchreid", w)], ">=", RATIO, "x")
        for w in workers
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("SEMPARTS_REID_HOME", str(Path(tempfile.gettempdir()) / "srh-bench"))
    torch.set_num_threads(1)  # loaders scale with processes; keep every variant alike
    from semparts_reid.data.datasets import build_dataset

    records = list(build_dataset(f"synthetic:a?size={args.size}").train)
    size = (int(args.input[0]), int(args.input[1]))
    print(f"{len(records)} training images of synthetic:a ({args.size}) at {size[0]}x{size[1]},"
          f" batches of {args.batch}, {args.batches} timed batches, best of {args.rounds}")
    variants: dict[str, Callable[[int, int], Iterator[Any]]] = {
        "torchreid": lambda w, n: torchreid_loader(records, size, args.batch, w, n),
        "ours": lambda w, n: our_loader(records, size, args.batch, w, n, parts=False),
        "ours+parts": lambda w, n: our_loader(records, size, args.batch, w, n, parts=True),
    }
    rates: dict[tuple[str, int], float] = {}
    for w in args.workers:
        for _ in range(args.rounds):  # alternate, so a busy moment hits every variant
            for name, make in variants.items():
                r = images_per_s(lambda n, m=make, w=w: m(w, n), args.batch, args.batches)
                rates[(name, w)] = max(rates.get((name, w), 0.0), r)
        for name in variants:
            print(f"{name:>10}, {w} workers: {rates[(name, w)]:8.1f} images/s")
        print(f"ratio ours / torchreid-style, {w} workers: "
              f"{rates[('ours', w)] / rates[('torchreid', w)]:.2f}x "
              f"(with part maps: {rates[('ours+parts', w)] / rates[('torchreid', w)]:.2f}x)")
    return report(targets(rates, args.workers), checked=is_full_workload(args),
                  why_unchecked="quick or non-default workload")


if __name__ == "__main__":
    raise SystemExit(main())
