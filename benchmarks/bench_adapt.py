"""Cost of the exemplar memory per step, relative to one training step; AMP speed-up.

1. Memory loss + backward to the features + update at DukeMTMC-reID scale
   (16,522 slots, 4 heads = global + head/upper/lower, batch 128, D = 2048), for fp32
   and bf16 slot storage, as a fraction of one training step of ``semparts_resnet50``
   at 256×128 on a batch of the same size (target: <= 10 %).
   A ResNet-50 step on 128 images is slow on a CPU; ``--train-batch`` measures a
   smaller batch and scales the time linearly to 128 (printed as "extrapolated").
2. Training-step speed-up of channels_last + bf16 autocast over plain fp32 for
   ``semparts_resnet18`` at 128×64 (the precision policy the trainer uses).

Run: ``python benchmarks/bench_adapt.py [--quick] [--train-batch 16] [--threads N]``.
Every figure is a median over repeats measured in the same run. A missed target is
printed as ``[MISSED]`` and the script exits with status 3 (see ``experiments.targets``);
``--quick`` prints the figures without checking the targets. The speed-up of part 2 has
no target.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from semparts_reid.engine.losses import identity_loss
from semparts_reid.experiments.targets import Target, report
from semparts_reid.memory import ExemplarMemory
from semparts_reid.models.factory import build_model
from semparts_reid.precision import has_native_bf16, resolve_precision

MEMORY_SHARE_PCT = 10.0  # memory loss + update as a share of one training step, in %


def _median_time(fn: Callable[[], None], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def memory_step_time(
    n: int, heads: int, batch: int, dim: int, dtype: torch.dtype, repeats: int
) -> float:
    """Seconds for loss (with neighbours) + backward to the features + update."""
    mem = ExemplarMemory(n, dim, num_heads=heads, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    mem.slots = torch.nn.functional.normalize(
        torch.randn(heads, n, dim, generator=g), dim=-1
    ).to(dtype)
    feats = torch.randn(batch, heads, dim, generator=g)
    idx = torch.randperm(n, generator=g)[:batch]
    vis = torch.ones(batch, heads - 1)

    def step() -> None:
        f = feats.clone().requires_grad_(True)
        loss = mem.loss(f, idx, neighbours=True, visibility=vis)
        loss.backward()
        mem.update(f.detach(), idx, epoch=10, visibility=vis)

    return _median_time(step, repeats)


def train_step_time(
    arch: str, size: tuple[int, int], batch: int, precision: str, repeats: int,
    num_classes: int = 100,
) -> float:
    """Seconds for one forward + backward + Adam step (identity CE on all heads)."""
    # plain fp32 is the contiguous (NCHW) reference; other policies use channels_last
    policy = resolve_precision("cpu", precision, channels_last=precision != "fp32")
    model = policy.prepare_module(build_model(arch, num_classes=num_classes, input_size=size))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    x = policy.prepare_input(torch.randn(batch, 3, *size, generator=g))
    pids = torch.randint(0, num_classes, (batch,), generator=g)

    def step() -> None:
        with policy.autocast():
            out = model(x)
        loss, _ = identity_loss(out.id_logits, pids, visibility=out.visibility)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _median_time(step, repeats)


def targets(memory_s: dict[str, float], step_s: float) -> list[Target]:
    """Memory loss + update of each slot dtype as a share (%) of one training step."""
    return [
        Target(f"memory loss+update ({name} slots) / training step", 100.0 * v / step_s, "<=",
               MEMORY_SHARE_PCT, "%", ".1f")
        for name, v in memory_s.items()
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller train batch")
    ap.add_argument("--train-batch", type=int, default=16,
                    help="ResNet-50 batch actually measured (scaled to 128)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = 2 if args.quick else 3
    tb = 8 if args.quick else args.train_batch
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"native bf16: {has_native_bf16('cpu')}")

    n, heads, batch, dim = 16_522, 4, 128, 2048
    mem = {
        name: memory_step_time(n, heads, batch, dim, dt, reps)
        for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    step_small = train_step_time("semparts_resnet50", (256, 128), tb, "auto", reps)
    step = step_small * batch / tb
    print(f"memory loss+update (N={n}, heads={heads}, B={batch}, D={dim}): "
          + ", ".join(f"{k} slots {v * 1e3:.1f} ms" for k, v in mem.items()))
    how = "measured" if tb == batch else f"extrapolated x{batch / tb:g} from batch {tb}"
    print(f"semparts_resnet50 256x128 train step, policy 'auto', batch {batch}: "
          f"{step:.2f} s ({how}; {step_small:.2f} s measured)")
    for k, v in mem.items():
        print(f"RATIO memory({k})/train_step = {v / step:.4f}  (target <= 0.10)")

    size, b18 = (128, 64), 32
    t32 = train_step_time("semparts_resnet18", size, b18, "fp32", reps)
    tbf = train_step_time("semparts_resnet18", size, b18, "bf16", reps)
    print(f"semparts_resnet18 128x64 batch {b18} train step: fp32 {t32 * 1e3:.0f} ms, "
          f"channels_last+bf16 {tbf * 1e3:.0f} ms")
    print(f"RATIO speedup(channels_last+bf16 vs fp32) = {t32 / tbf:.2f}x")
    return report(targets(mem, step), checked=not args.quick, why_unchecked="quick run")


if __name__ == "__main__":
    raise SystemExit(main())
