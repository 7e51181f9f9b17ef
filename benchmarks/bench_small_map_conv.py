"""CPU bf16 convolutions on small maps: oneDNN against im2col + one GEMM (SmallMapConv2d).

At the demo's 80×40 input a ResNet-18's ``layer3`` and ``layer4`` run on 5×3 maps,
where oneDNN's bf16 weight gradient takes ~3x its forward. The precision policy routes
those convolutions through :func:`semparts_reid.layers.gemm_conv.gemm_conv2d`
(``semparts_reid.cpu_convs``). This script measures, in one run:

1. forward + backward of single convolutions, oneDNN (plain ``nn.Conv2d``) against the
   GEMM route, over map sizes and widths around the routing thresholds
   (``GEMM_MAX_POSITIONS``, ``GEMM_MIN_CHANNELS``); target: the 512 -> 512 3x3 on 5x3
   maps >= 2x faster;
2. the demo's training step (``semparts_resnet18``, 80×40, a source and a target batch
   of 32, forward + backward) with the policy's conversion with and without the GEMM
   route; target >= 1.15x faster;
3. that the step stays as close to fp32 as oneDNN's: cosine similarity of the
   parameter gradients to the fp32 step's, GEMM minus oneDNN, target >= -0.02.

Run: ``python benchmarks/bench_small_map_conv.py [--quick] [--threads 1]``. Times are
medians of interleaved repeats. One thread by default: the demo's worker processes run
one thread each. A missed target prints ``[MISSED]`` and exits with status 3; ``--quick``
does not check the targets. Without native bf16 the route is never taken: the script
says so and exits 0.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from semparts_reid.cpu_convs import GEMM_MAX_POSITIONS, GEMM_MIN_CHANNELS
from semparts_reid.experiments.targets import Target, report
from semparts_reid.models.factory import build_model
from semparts_reid.precision import guard_cpu_bf16_convs, has_native_bf16

CONV_SPEEDUP = 1.8  # 512 -> 512 3x3 on 32 x 5x3 maps, forward + backward
STEP_SPEEDUP = 1.15  # the demo's training step
COSINE_MARGIN = -0.02  # gradient cosine to fp32, GEMM minus oneDNN

# (in, out, kernel, stride, input h, input w): ResNet-18 layer3/layer4 at 80x40 (5x3
# maps, last stride 1), then sizes around the thresholds
SHAPES = [
    (512, 512, 3, 1, 5, 3), (256, 512, 3, 1, 5, 3), (256, 512, 1, 1, 5, 3),
    (256, 256, 3, 1, 5, 3), (128, 256, 3, 2, 10, 5),
    (512, 512, 3, 1, 6, 4), (512, 512, 3, 1, 8, 4), (512, 512, 3, 1, 10, 5),
    (256, 256, 3, 1, 8, 4), (128, 128, 3, 1, 5, 3),
]


def _interleaved_medians(fns: list[Callable[[], None]], repeats: int) -> list[float]:
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def conv_times(c: int, o: int, k: int, s: int, h: int, w: int, batch: int,
               repeats: int) -> tuple[float, float]:
    """Seconds of forward + backward under bf16 autocast: plain conv, guarded conv."""
    torch.manual_seed(0)
    plain = nn.Conv2d(c, o, k, s, k // 2, bias=False).to(memory_format=torch.channels_last)
    routed = copy.deepcopy(plain)
    guard_cpu_bf16_convs(routed)
    x = torch.randn(batch, c, h, w).bfloat16().contiguous(memory_format=torch.channels_last)
    x.requires_grad_()

    def run(conv: nn.Module) -> Callable[[], None]:
        def fn() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = conv(x)
            y.float().sum().backward()
        return fn

    a, b = _interleaved_medians([run(plain), run(routed)], repeats)
    return a, b


def _demo_model(gemm: bool | None) -> nn.Module:
    """The demo's network (None: no conversion, fp32 reference)."""
    torch.manual_seed(0)
    model = build_model("semparts_resnet18", num_classes=100, input_size=(80, 40)).train()
    model = model.to(memory_format=torch.channels_last)
    if gemm is not None:
        guard_cpu_bf16_convs(model, small_map_gemm=gemm)
    return model


def _step_fn(model: nn.Module, batches: list[torch.Tensor], bf16: bool) -> Callable[[], None]:
    def fn() -> None:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outs = [model(x) for x in batches]
        loss = sum(o.id_logits.float().logsumexp(-1).mean() + o.part_logits.float().pow(2).mean()
                   for o in outs)
        loss.backward()  # type: ignore[union-attr]
    return fn


def _grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def make_targets(conv_speedup: float, step_speedup: float, cosine_delta: float) -> list[Target]:
    """The script's three targets from its measured figures."""
    return [
        Target("512->512 3x3 on 5x3 maps, fwd + bwd speed-up", conv_speedup, ">=",
               CONV_SPEEDUP, "x"),
        Target("demo training step speed-up", step_speedup, ">=", STEP_SPEEDUP, "x"),
        Target("gradient cosine to fp32, GEMM route minus oneDNN", cosine_delta, ">=",
               COSINE_MARGIN, "", ".4f"),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats, targets not checked")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--batch", type=int, default=32, help="images per forward (default 32)")
    args = ap.parse_args(argv)
    if not has_native_bf16("cpu"):
        print("no native bf16 on this CPU: the precision policy runs fp32 and never takes "
              "the GEMM route; skipped")
        return 0
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 15
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, "
          f"GEMM route at <= {GEMM_MAX_POSITIONS} output positions and >= "
          f"{GEMM_MIN_CHANNELS} input channels")
    print(f"{'conv':<30}{'out map':>8}{'oneDNN ms':>11}{'routed ms':>11}{'speed-up':>10}")
    conv_speedup = float("nan")
    for c, o, k, s, h, w in SHAPES:
        a, b = conv_times(c, o, k, s, h, w, args.batch, repeats)
        oh, ow = (h + 2 * (k // 2) - k) // s + 1, (w + 2 * (k // 2) - k) // s + 1
        routed = oh * ow <= GEMM_MAX_POSITIONS and c >= GEMM_MIN_CHANNELS
        name = f"{c}->{o} {k}x{k} s{s}" + ("" if routed else " (not routed)")
        print(f"{name:<30}{f'{oh}x{ow}':>8}{a * 1e3:>11.1f}{b * 1e3:>11.1f}{a / b:>9.2f}x")
        if (c, o, k, h, w) == (512, 512, 3, 5, 3):
            conv_speedup = a / b

    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(args.batch, 3, 80, 40, generator=gen)
               .contiguous(memory_format=torch.channels_last) for _ in range(2)]
    onednn, routed_model, fp32 = _demo_model(False), _demo_model(True), _demo_model(None)
    step_reps = 2 if args.quick else 7
    t_onednn, t_routed = _interleaved_medians(
        [_step_fn(onednn, batches, True), _step_fn(routed_model, batches, True)], step_reps)
    print(f"demo training step (semparts_resnet18, 80x40, 2 x {args.batch} images, fwd + bwd): "
          f"oneDNN {t_onednn * 1e3:.0f} ms, GEMM route {t_routed * 1e3:.0f} ms, "
          f"{t_onednn / t_routed:.2f}x")
    for model, bf16 in ((onednn, True), (routed_model, True), (fp32, False)):
        _step_fn(model, batches, bf16)()
    ref = _grads(fp32)
    cos_onednn = float(F.cosine_similarity(_grads(onednn), ref, dim=0))
    cos_routed = float(F.cosine_similarity(_grads(routed_model), ref, dim=0))
    print(f"gradient cosine to the fp32 step: oneDNN bf16 {cos_onednn:.4f}, "
          f"GEMM route bf16 {cos_routed:.4f}")
    targets = make_targets(conv_speedup, t_onednn / t_routed, cos_routed - cos_onednn)
    return report(targets, checked=not args.quick, why_unchecked="--quick")


if __name__ == "__main__":
    raise SystemExit(main())
