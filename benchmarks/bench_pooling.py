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
   global-only ``ecn_<arch>`` at the same input size and batch. Target: <= 10% overhead.

Usage::

    python benchmarks/bench_pooling.py                     # resnet50, 256x128, batch 8
    python benchmarks/bench_pooling.py --arch resnet18 --batch 16 --repeats 5

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

import torch
import torch.nn.functional as F

from semparts_reid.layers.part_pooling import part_mask_pool
from semparts_reid.models.factory import build_model

SHAPE = {"batch": 64, "channels": 2048, "height": 24, "width": 8, "parts": 4}


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


def make_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    b, c, h, w, k = (SHAPE[n] for n in ("batch", "channels", "height", "width", "parts"))
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


def peak_memory_child(impl: str) -> None:
    """Subprocess entry: print the extra peak RSS (bytes) of one forward + backward.

    ``VmHWM`` (the resident high-water mark of this process image; unlike ``ru_maxrss`` it
    is not inherited from the parent across fork + exec) after the step, minus ``VmRSS``
    just before it.
    """
    torch.set_num_threads(1)
    fmap, masks, grad_out = make_inputs()
    before = _status_kib("VmRSS")
    if _status_kib("VmHWM") > before + 1024:
        # an earlier transient peak would hide the step's own peak: reset the mark
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    step(impl, fmap, masks, grad_out)
    peak = _status_kib("VmHWM")
    print(json.dumps({"impl": impl, "peak_extra_bytes": (peak - before) * 1024}))


def peak_memory(impl: str) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", impl],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_bytes"])


def time_pooling(repeats: int) -> dict[str, float]:
    fmap, masks, grad_out = make_inputs()
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
    torch.manual_seed(0)
    num_classes = 64
    images = torch.randn(batch, 3, *size)
    pids = torch.randint(0, num_classes, (batch,))
    labels = torch.randint(0, 4, (batch, *size))
    models = {
        "parts": build_model(f"semparts_{arch}", num_classes=num_classes).train(),
        "global": build_model(f"ecn_{arch}", num_classes=num_classes).train(),
    }
    optims = {k: torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9) for k, m in models.items()}

    def train_step(key: str) -> None:
        model, opt = models[key], optims[key]
        opt.zero_grad(set_to_none=True)
        out = model(images)
        assert out.id_logits is not None
        heads = out.id_logits.shape[1]
        loss = F.cross_entropy(out.id_logits.flatten(0, 1), pids.repeat_interleave(heads))
        if out.part_logits is not None:
            loss = loss + model.part_loss(out, labels)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed pooling repeats")
    parser.add_argument("--arch", default="resnet50", choices=["resnet18", "resnet34", "resnet50"])
    parser.add_argument("--batch", type=int, default=8, help="model-step batch size")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 128), metavar=("H", "W"))
    parser.add_argument("--model-repeats", type=int, default=5)
    parser.add_argument("--skip-model", action="store_true", help="only the pooling benchmark")
    parser.add_argument("--memory-child", choices=sorted(IMPLS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        peak_memory_child(args.memory_child)
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, shape {SHAPE}")
    mem = {name: peak_memory(name) for name in IMPLS}
    t = time_pooling(args.repeats)
    print(f"{'impl':<10} {'fwd+bwd ms':>11} {'peak extra MiB':>15}")
    for name in IMPLS:
        print(f"{name:<10} {t[name] * 1e3:>11.1f} {mem[name] / 2**20:>15.1f}")
    speed = t["broadcast"] / t["fused"]
    mem_ratio = mem["broadcast"] / max(mem["fused"], 1)
    print(f"speed-up {speed:.1f}x (target >= 3x), peak memory {mem_ratio:.1f}x less (target >= 5x)")

    if args.skip_model:
        return
    size = tuple(args.size)
    m = time_model_steps(args.arch, args.batch, size, args.model_repeats)  # type: ignore[arg-type]
    overhead = m["parts"] / m["global"] - 1.0
    print(
        f"train step {args.arch} {size[0]}x{size[1]} batch {args.batch}: "
        f"semparts {m['parts'] * 1e3:.0f} ms, ecn {m['global'] * 1e3:.0f} ms, "
        f"overhead {overhead * 100:+.1f}% (target <= 10%)"
    )


if __name__ == "__main__":
    main()
