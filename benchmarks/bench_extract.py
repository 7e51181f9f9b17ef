"""Benchmark of :class:`semparts_reid.FeatureExtractor` against a naive extractor on CPU.

Workload: ``--crops`` (512) person crops given as BGR ``uint8`` numpy arrays of random
sizes around 256x128 (what a tracker hands over), a ``semparts_resnet50`` at 256x128.

* **naive**: what torchreid's ``FeatureExtractor`` does: per image, BGR -> RGB, PIL
  ``Image.fromarray``, PIL bilinear resize, ``ToTensor``, ``Normalize``; stack the whole
  list and run **one** fp32 forward in the contiguous (NCHW) memory format.
* **ours (auto)**: ``FeatureExtractor(model, device="cpu", fuse_bn=True)``: crops resized
  with ``F.interpolate`` (uint8, grouped by shape), normalised on the batch,
  ``channels_last``, bf16 autocast where the CPU runs bf16 natively (AVX512-BF16 / AMX),
  batch norms folded into the convolutions, batches of 64.
* **ours (fp32)**: the same with ``precision="fp32"``.

All three run in the same process on the same crops. Prints images/s, the speed-ups and
the cosine similarity of our features to the naive fp32 ones. Targets: >= 3.5x where
the CPU has native bf16, >= 1.8x in fp32, cosine >= 0.999. The model is randomly
initialised (no weight downloads); agreement is measured on its features all the same.

The targets are checked on the full workload (``semparts_resnet50`` at 256x128, the
default): a missed one is printed as ``[MISSED]`` and the script exits with status 3
(see ``experiments.targets``). ``--quick`` and other architectures or sizes print the same lines
marked ``[not checked]``.

Usage::

    python benchmarks/bench_extract.py                # full run (512 crops, ResNet-50)
    python benchmarks/bench_extract.py --quick        # 32 crops, ResNet-18 at 128x64
    python benchmarks/bench_extract.py --crops 256 --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from semparts_reid.experiments.targets import Target, report
from semparts_reid.inference import FeatureExtractor
from semparts_reid.models.factory import build_model
from semparts_reid.precision import has_native_bf16


def make_crops(n: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """``n`` BGR uint8 crops, sizes within about +-25% of ``size``, smooth + noisy content."""
    rng = np.random.default_rng(seed)
    h, w = size
    crops = []
    for _ in range(n):
        ch = int(rng.integers(int(h * 0.75), int(h * 1.25) + 1))
        cw = int(rng.integers(int(w * 0.75), int(w * 1.25) + 1))
        coarse = torch.from_numpy(rng.random((1, 3, 8, 4), dtype=np.float32))
        img = F.interpolate(coarse, size=(ch, cw), mode="bilinear", align_corners=False)[0]
        img = img.permute(1, 2, 0).numpy() * 200 + rng.normal(0, 12, (ch, cw, 3))
        crops.append(np.clip(img, 0, 255).astype(np.uint8))
    return crops


class NaiveExtractor:
    """Per-image PIL preprocessing, fp32, contiguous, the whole list in one forward."""

    def __init__(self, model: torch.nn.Module) -> None:
        from PIL import Image

        self.model = model.eval().float().to(memory_format=torch.contiguous_format)
        cfg = model.data_config
        self.size = tuple(cfg["input_size"])
        self.mean = torch.tensor(cfg["mean"]).view(3, 1, 1)
        self.std = torch.tensor(cfg["std"]).view(3, 1, 1)
        self.image = Image

    def __call__(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        tensors = []
        for crop in crops_bgr:
            img = self.image.fromarray(crop[..., ::-1].copy())  # BGR -> RGB
            img = img.resize((self.size[1], self.size[0]), self.image.BILINEAR)
            t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
            tensors.append((t - self.mean) / self.std)
        batch = torch.stack(tensors)
        with torch.no_grad():
            feats = self.model(batch).global_feat
        return F.normalize(feats, dim=1).numpy()


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    model = build_model(args.arch, input_size=size).eval()
    crops = make_crops(args.crops, size, args.seed)
    # ours_* fold the batch norms into the convolutions of their own copy of the model
    ours_auto = FeatureExtractor(model, device="cpu", batch_size=args.batch_size,
                                 precision=args.precision, progress=False, fuse_bn=True)
    ours_fp32 = FeatureExtractor(model, device="cpu", batch_size=args.batch_size,
                                 precision="fp32", progress=False, fuse_bn=True)
    naive = NaiveExtractor(model)
    warm = crops[: min(4, len(crops))]
    results: dict[str, Any] = {
        "arch": args.arch, "input_size": list(size), "crops": len(crops),
        "batch_size": args.batch_size, "threads": torch.get_num_threads(),
        "native_bf16": has_native_bf16("cpu"), "policy": str(ours_auto.policy),
    }
    times: dict[str, list[float]] = {"naive": [], "ours": [], "ours_fp32": []}
    feats: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, ext in (("ours", ours_auto), ("ours_fp32", ours_fp32)):
            ext(warm, bgr=True)  # oneDNN primitive creation, not part of the timing
            feats[name], secs = timed(lambda e=ext: e(crops, bgr=True))
            times[name].append(secs)
        naive(warm)
        feats["naive"], secs = timed(naive, crops)
        times["naive"].append(secs)
    best = {k: min(v) for k, v in times.items()}
    ips = {k: len(crops) / v for k, v in best.items()}
    cos_auto = cosine(feats["ours"], feats["naive"])
    cos_fp32 = cosine(feats["ours_fp32"], feats["naive"])
    results.update({
        "images_per_s": {k: round(v, 2) for k, v in ips.items()},
        "speedup": round(ips["ours"] / ips["naive"], 2),
        "speedup_fp32": round(ips["ours_fp32"] / ips["naive"], 2),
        "cos_min": float(cos_auto.min()), "cos_mean": float(cos_auto.mean()),
        "cos_fp32_min": float(cos_fp32.min()),
    })
    return results


FULL_ARCH, FULL_SIZE, FULL_CROPS = "semparts_resnet50", "256x128", 512


def targets(r: dict[str, Any]) -> list[Target]:
    """Speed-ups (bf16 target where the CPU runs bf16 natively) and feature agreement."""
    target = 3.5 if r["native_bf16"] else 1.8
    return [
        Target("speed-up (auto policy) vs naive", r["speedup"], ">=", target, "x"),
        Target("speed-up (fp32) vs naive", r["speedup_fp32"], ">=", 1.8, "x"),
        Target("min cosine to naive fp32 features", r["cos_min"], ">=", 0.999, "", ".6f"),
    ]


def print_figures(r: dict[str, Any]) -> None:
    """The measured figures, one line each."""
    ips = r["images_per_s"]
    print(f"{r['arch']} at {r['input_size'][0]}x{r['input_size'][1]}, {r['crops']} BGR crops, "
          f"batch {r['batch_size']}, {r['threads']} threads, native bf16: {r['native_bf16']}")
    print(f"  naive (PIL per image, fp32, NCHW, one forward): {ips['naive']:8.2f} img/s")
    print(f"  ours  ({r['policy']}):  {ips['ours']:8.2f} img/s   "
          f"x{r['speedup']:.2f}")
    print(f"  ours  (fp32, channels_last):                  {ips['ours_fp32']:8.2f} img/s   "
          f"x{r['speedup_fp32']:.2f}")
    print(f"  cosine to naive fp32 features: ours min {r['cos_min']:.6f} "
          f"(mean {r['cos_mean']:.6f}), ours fp32 min {r['cos_fp32_min']:.6f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--crops", type=int, default=None, help="number of crops (default 512)")
    p.add_argument("--arch", default=None, help="build_model name (default semparts_resnet50)")
    p.add_argument("--size", default=None, help="input size HxW (default 256x128)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--repeats", type=int, default=1, help="timed runs; the best is kept")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 32 crops, semparts_resnet18 at 128x64")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    quick = args.quick
    if args.crops is None:
        args.crops = 32 if quick else 512
    args.arch = args.arch or ("semparts_resnet18" if quick else FULL_ARCH)
    args.size = args.size or ("128x64" if quick else FULL_SIZE)
    if args.crops < 1 or args.batch_size < 1 or args.repeats < 1:
        p.error("--crops, --batch-size and --repeats must be positive")
    return args


def is_full_workload(args: argparse.Namespace) -> bool:
    """Whether the targets apply: the full model, input size and number of crops."""
    return (
        not args.quick
        and args.arch == FULL_ARCH
        and args.size.lower() == FULL_SIZE
        and args.crops >= FULL_CROPS
    )


def main(argv: list[str] | None = None) -> int:
    """Run, print, write ``--json``; 0, or 3 when the full workload missed a target."""
    args = parse_args(argv)
    results = run(args)
    print_figures(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return report(
        targets(results),
        checked=is_full_workload(args),
        why_unchecked="not the full workload: semparts_resnet50 at 256x128, 512 crops",
    )


if __name__ == "__main__":
    raise SystemExit(main())
