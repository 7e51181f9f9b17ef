"""The domain gap of the synthetic pair: within-domain vs direct-transfer retrieval.

Trains a small global-only model (``ecn_resnet18``, random init, plain cross-entropy on
the global identity logits, P x K batches) on the source domain's training split, then
evaluates it on the source's own query/gallery (within-domain) and on the target's
(direct transfer, no adaptation). An untrained copy of the network is evaluated on both
as the same-run reference, so the printed ratios say how much the training helped in
each domain. The gap between the two trained rows is what adaptation has to close.

Run: ``python benchmarks/synthetic_gap.py [--source a --target b --epochs 12]``
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from semparts_reid.data import (
    PKSampler,
    ReIDImageDataset,
    build_dataset,
    build_transforms,
    make_generator,
    seed_worker,
)
from semparts_reid.engine.evaluation import evaluate_model
from semparts_reid.models import factory
from semparts_reid.precision import resolve_precision

FP32 = resolve_precision("cpu", "fp32", channels_last=False)


def evaluate(model: torch.nn.Module, ds: Any, cfg: dict[str, Any]) -> tuple[float, float]:
    """mAP and R1 of the global feature on ``ds``'s query/gallery (fp32, cosine)."""
    m = evaluate_model(model, ds.query, ds.gallery, mode="global", policy=FP32, data_config=cfg)
    return float(m.mAP), float(m.rank(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="a")
    ap.add_argument("--target", default="b")
    ap.add_argument("--size", default="default")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    src = build_dataset(f"synthetic:{args.source}", size=args.size)
    tgt = build_dataset(f"synthetic:{args.target}", size=args.size)
    model = factory.build_model(
        "ecn_resnet18", num_classes=src.num_train_pids, input_size=(args.height, args.width)
    )
    cfg = model.data_config
    untrained = copy.deepcopy(model)
    data = ReIDImageDataset(src.train, build_transforms(cfg, train=True, pad=4), part_maps=False)
    sampler = PKSampler(data.pids, p=16, k=4, seed=args.seed)
    loader = DataLoader(
        data,
        batch_size=64,
        sampler=sampler,
        num_workers=0,
        worker_init_fn=seed_worker,
        generator=make_generator(args.seed),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        model.train()
        total, n = 0.0, 0
        for batch in loader:
            out = model(batch["image"])
            loss = F.cross_entropy(out.id_logits[:, 0], batch["pid"], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()), n + 1
        sched.step()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / max(n, 1):.3f}", flush=True)
    train_s = time.perf_counter() - t0

    rows = []
    for name, m in (("untrained", untrained), ("trained", model)):
        for label, ds in (
            (f"{args.source}->{args.source}", src),
            (f"{args.source}->{args.target}", tgt),
        ):
            rows.append((name, label, *evaluate(m, ds, cfg)))
    print(
        f"\nsource {args.source}, target {args.target}, {args.epochs} epochs, "
        f"{args.height}x{args.width}, training {train_s:.0f} s"
    )
    print(f"{'model':<10}{'eval':<8}{'mAP':>8}{'R1':>8}")
    for name, label, mAP, r1 in rows:
        print(f"{name:<10}{label:<8}{100 * mAP:>8.1f}{100 * r1:>8.1f}")
    within, transfer = rows[2][2], rows[3][2]
    print(
        f"trained/untrained mAP: within {within / max(rows[0][2], 1e-9):.2f}x, "
        f"transfer {transfer / max(rows[1][2], 1e-9):.2f}x; "
        f"gap (within - transfer): {100 * (within - transfer):.1f} mAP points"
    )


if __name__ == "__main__":
    main()
