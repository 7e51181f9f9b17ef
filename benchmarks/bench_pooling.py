"""Benchmark the fused part pooling and the cost of the part branch in a training step.

1. **Pooling** (B=64, C=2048, 24x8 map, K=4 soft masks, forward + backward on CPU):
   :func:`semparts_reid.layers.part_pooling.part_mask_pool` (normalise the masks, one
   ``bmm``) against the broadcast formula ``(M[:, None] * P[:, :, None]).sum / P.sum``
   that materialises a ``B*K*C*h*w`` tensor. Both run in this process, alternating, for
   the time; the **peak memory** of one forward + backward of each is measured in a fresh
   subprocess as the resident high-water mark ``VmHWM`` after the step minus the resident
   set size ``VmRSS`` just before it (inputs already allocated; the mark is reset through
   ``/proc/self/clear_refs`` if an earlier transient had raised it), i.e. the extra memory
   the step needed at its peak. Linux only.
   Targets: >= 3x faster, >= 5x less peak memory.
2. **Model step**: one SGD training step (forward, identity cross-entropy on every head,
   the part loss for the part model, backward, update) of ``semparts_<arch>`` against the
   global-only ``ecn_<arch>`` at the same input size and batch, in two settings:

   * **given part maps** (ground truth or a parser's maps on disk): the part branch alone;
   * **pseudo labels** (``part_labels="auto"`` on data without part maps, i.e. real data
     without a parser): the trainer's label path, ``engine.losses.part_targets``, runs the
     per-step pseudo-label k-means (``layers.part_clustering.pseudo_part_labels``) on the
     batch's feature map before the part loss, as ``engine.step`` does.

   Target for both: <= 10% overhead over the global-only step.

A missed target is printed as ``[MISSED]`` and the script exits with status 3 (see
``experiments.targets``). ``--quick`` is a smoke run (small pooling shape, ``resnet18`` at 64x32,
batch 4, two repeats): it prints every figure but checks no target.

Usage::

    python benchmarks/bench_pooling.py                     # resnet50, 256x128, batch 8
    python benchmarks/bench_pooling.py --arch resnet18 --batch 16 --repeats 5
    python benchmarks/bench_pooling.py --quick             # seconds-long smoke run

Timings on a shared machine are noisy; the medians of interleaved repeats are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from semparts_reid.engine.losses import part_targets
from semparts_reid.experiments.targets import Target, report
from semparts_reid.layers.part_classifier import part_map_loss
from semparts_reid.layers.part_pooling import part_mask_pool
from semparts_reid.models.factory import build_model

SHAPE = {"batch": 64, "channels": 2048, "height": 24, "width": 8, "parts": 4}
QUICK_SHAPE = {"batch": 8, "channels": 256, "height": 24, "width": 8, "parts": 4}

# targets of the full-size run
POOL_SPEEDUP = 3.0  # fused vs broadcast, forward + backward
POOL_MEMORY = 5.0  # broadcast peak extra memory / fused peak extra memory
STEP_OVERHEAD_PCT = 10.0  # part model step vs global-only step, with or without k-means

# model-step variants: name -> (architecture prefix, part-label source)
STEP_VARIANTS: dict[str, tuple[str, str | None]] = {
    "global": ("ecn", None),
    "parts": ("semparts", "gt"),  # given part maps
    "parts_pseudo": ("semparts", "auto"),  # no part maps: per-step pseudo-label k-means
}


def broadcast_pool(fmap: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The naive reference: a (B, K, C, h, w) product, then sums."""
    num = (fmap[:, None] * masks[:, :, None]).sum(dim=(-2, -1))
    return num / masks.sum(dim=(-2, -1)).unsqueeze(-1).clamp_min(1e-12)


def fused_pool(fmap: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return part_mask_pool(fmap, masks)[0]


IMPLS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "fused": fused_pool,
    "broadcast": broadcast_pool,
}


def make_inputs(
    shape: dict[str, int] = SHAPE, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Feature map (B, C, h, w), soft masks (B, K, h, w) and an output gradient (B, K, C)."""
    g = torch.Generator().manual_seed(seed)
    b, c, h, w, k = (shape[n] for n in ("batch", "channels", "height", "width", "parts"))
    fmap = torch.randn(b, c, h, w, generator=g).requires_grad_()
    masks = torch.rand(b, k, h, w, generator=g).softmax(1).requires_grad_()
    grad_out = torch.randn(b, k, c, generator=g)
    return fmap, masks, grad_out


def step(impl: str, fmap: torch.Tensor, masks: torch.Tensor, grad_out: torch.Tensor) -> None:
    fmap.grad = None
    masks.grad = None
    out = IMPLS[impl](fmap, masks)
    out.backward(grad_out)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def peak_memory_child(impl: str, shape: dict[str, int]) -> None:
    """Subprocess entry: print the extra peak RSS (bytes) of one forward + backward.

    ``VmHWM`` (the resident high-water mark of this process image; unlike ``ru_maxrss`` it
    is not inherited from the parent across fork + exec) after the step, minus ``VmRSS``
    just before it.
    """
    torch.set_num_threads(1)
    fmap, masks, grad_out = make_inputs(shape)
    before = _status_kib("VmRSS")
    if _status_kib("VmHWM") > before + 1024:
        # an earlier transient peak would hide the step's own peak: reset the mark
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    step(impl, fmap, masks, grad_out)
    peak = _status_kib("VmHWM")
    print(json.dumps({"impl": impl, "peak_extra_bytes": (peak - before) * 1024}))


def peak_memory(impl: str, shape: dict[str, int]) -> int:
    """Extra peak RSS (bytes) of one forward + backward of ``impl``, in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", impl, "--shape", json.dumps(shape)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_bytes"])


def time_pooling(repeats: int, shape: dict[str, int] = SHAPE) -> dict[str, float]:
    """Median seconds of one forward + backward per implementation (interleaved)."""
    fmap, masks, grad_out = make_inputs(shape)
    with torch.no_grad():
        ref = broadcast_pool(fmap, masks)
        err = (fused_pool(fmap, masks) - ref).abs().max().item()
    print(f"max |fused - broadcast| = {err:.2e}")
    times: dict[str, list[float]] = {name: [] for name in IMPLS}
    for name in IMPLS:  # warm-up
        step(name, fmap, masks, grad_out)
    for _ in range(repeats):
        for name in IMPLS:
            t0 = time.perf_counter()
            step(name, fmap, masks, grad_out)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def time_model_steps(
    arch: str, batch: int, size: tuple[int, int], repeats: int
) -> dict[str, float]:
    """Median seconds of one SGD step per :data:`STEP_VARIANTS` entry (interleaved).

    ``"parts"`` takes its part loss against given label maps; ``"parts_pseudo"`` gets its
    labels the way the trainer does for images without maps under ``part_labels="auto"``
    (``part_targets`` on the batch's feature map: the pseudo-label k-means, every step).
    """
    torch.manual_seed(0)
    num_classes = 64
    images = torch.randn(batch, 3, *size)
    pids = torch.randint(0, num_classes, (batch,))
    given = torch.randint(0, 4, (batch, *size))
    no_maps = torch.full((batch, *size), 255, dtype=torch.long)  # what the loader gives
    models = {
        key: build_model(f"{prefix}_{arch}", num_classes=num_classes, input_size=size).train()
        for key, (prefix, _) in STEP_VARIANTS.items()
    }
    optims = {k: torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9) for k, m in models.items()}

    def train_step(key: str) -> None:
        model: Any = models[key]
        opt = optims[key]
        source = STEP_VARIANTS[key][1]
        opt.zero_grad(set_to_none=True)
        fmap, skips = model.forward_stages(images)
        out = model.forward_head(fmap, skips=skips)
        assert out.id_logits is not None
        heads = out.id_logits.shape[1]
        loss = F.cross_entropy(out.id_logits.flatten(0, 1), pids.repeat_interleave(heads))
        if source is not None and out.part_logits is not None:
            labels = part_targets(
                source,
                parts=given if source == "gt" else no_maps,
                feature_map=fmap,
                image_size=size,
            )
            assert labels is not None
            loss = loss + part_map_loss(out.part_logits, labels)
        loss.backward()
        opt.step()

    times: dict[str, list[float]] = {k: [] for k in models}
    for key in models:
        train_step(key)  # warm-up
    for _ in range(repeats):
        for key in models:
            t0 = time.perf_counter()
            train_step(key)
            times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def targets(
    pool_speedup: float, pool_memory: float, steps: dict[str, float] | None
) -> list[Target]:
    """The targets of a full run (the step ones only when the model steps ran)."""
    out = [
        Target("pooling: fused vs broadcast speed-up", pool_speedup, ">=", POOL_SPEEDUP, "x",
               ".1f"),
        Target("pooling: broadcast / fused peak memory", pool_memory, ">=", POOL_MEMORY, "x",
               ".1f"),
    ]  # fmt: skip
    if steps is not None:
        out += [
            Target("part branch overhead, given part maps", overhead_pct(steps, "parts"),
                   "<=", STEP_OVERHEAD_PCT, "%", "+.1f"),
            Target("part branch overhead, pseudo-label k-means (part_labels='auto', no maps)",
                   overhead_pct(steps, "parts_pseudo"), "<=", STEP_OVERHEAD_PCT, "%", "+.1f"),
        ]  # fmt: skip
    return out


def overhead_pct(steps: dict[str, float], key: str) -> float:
    """Extra time of variant ``key`` over the global-only step, in percent."""
    return (steps[key] / steps["global"] - 1.0) * 100.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed pooling repeats")
    parser.add_argument("--arch", default="resnet50", choices=["resnet18", "resnet34", "resnet50"])
    parser.add_argument("--batch", type=int, default=8, help="model-step batch size")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    parser.add_argument("--model-repeats", type=int, default=5)
    parser.add_argument("--skip-model", action="store_true", help="only the pooling benchmark")
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run: small pooling shape, resnet18 at 64x32, batch 4; targets not checked",
    )  # fmt: skip
    parser.add_argument("--memory-child", choices=sorted(IMPLS), help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)  # JSON, for --memory-child
    args = parser.parse_args(argv)
    if args.memory_child:
        peak_memory_child(args.memory_child, json.loads(args.shape) if args.shape else SHAPE)
        return 0
    shape = SHAPE
    if args.quick:
        shape = QUICK_SHAPE
        args.repeats, args.model_repeats = 2, 2
        args.arch, args.batch, args.size = "resnet18", 4, (64, 32)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, shape {shape}")
    mem = {name: peak_memory(name, shape) for name in IMPLS}
    t = time_pooling(args.repeats, shape)
    print(f"{'impl':<10} {'fwd+bwd ms':>11} {'peak extra MiB':>15}")
    for name in IMPLS:
        print(f"{name:<10} {t[name] * 1e3:>11.1f} {mem[name] / 2**20:>15.1f}")
    speed = t["broadcast"] / t["fused"]
    mem_ratio = mem["broadcast"] / max(mem["fused"], 1)
    print(f"speed-up {speed:.1f}x (target >= 3x), peak memory {mem_ratio:.1f}x less (target >= 5x)")

    steps = None
    if not args.skip_model:
        size = tuple(args.size)
        steps = time_model_steps(args.arch, args.batch, size, args.model_repeats)  # type: ignore[arg-type]
        print(
            f"train step {args.arch} {size[0]}x{size[1]} batch {args.batch}: "
            f"semparts {steps['parts'] * 1e3:.0f} ms, ecn {steps['global'] * 1e3:.0f} ms, "
            f"overhead {overhead_pct(steps, 'parts'):+.1f}% (target <= 10%)"
        )
        print(
            f"train step {args.arch} {size[0]}x{size[1]} batch {args.batch} with pseudo-label "
            f"k-means (part_labels='auto', no part maps): semparts "
            f"{steps['parts_pseudo'] * 1e3:.0f} ms, ecn {steps['global'] * 1e3:.0f} ms, "
            f"overhead {overhead_pct(steps, 'parts_pseudo'):+.1f}% (target <= 10%)"
        )
    return report(
        targets(speed, mem_ratio, steps), checked=not args.quick, why_unchecked="quick run"
    )


if __name__ == "__main__":
    raise SystemExit(main())
