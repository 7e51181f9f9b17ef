"""The domain gap of the synthetic pair: within-domain vs direct-transfer retrieval.

For each source domain (``a`` and ``b`` by default) trains a small global-only model
(``ecn_resnet18``, random init, plain cross-entropy on the global identity logits,
P x K batches) on that domain's training split, then evaluates it on both domains'
query/gallery: its own (within-domain) and the other (direct transfer, no adaptation).
An untrained copy of the network is evaluated on both as the same-run reference. The
table printed at the end (mAP / R1 in %, rows: trained on nothing, on a, on b) and the
mAP lost by direct transfer against training on the target are what docs/datasets.md
cites; ``run_all.py`` runs this script so they land in ``benchmarks/RESULTS.md``.
There is no target to meet: this script describes the data.

Run: ``python benchmarks/synthetic_gap.py [--sources a b --epochs 10] [--quick]``
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
from semparts_reid.inference import evaluate_model
from semparts_reid.models import factory


def evaluate(model: torch.nn.Module, ds: Any, cfg: dict[str, Any]) -> tuple[float, float]:
    """mAP and R1 of the global feature on ``ds``'s query/gallery (fp32, cosine)."""
    m = evaluate_model(model, ds.query, ds.gallery, mode="global", device="cpu",
                       precision="fp32", channels_last=False, data_config=cfg)
    return float(m.mAP), float(m.rank(1))


def train(source: Any, args: argparse.Namespace) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(trained, untrained)`` copies of a fresh ``ecn_resnet18`` on ``source``'s split."""
    torch.manual_seed(args.seed)
    model = factory.build_model(
        "ecn_resnet18", num_classes=source.num_train_pids, input_size=(args.height, args.width)
    )
    cfg = model.data_config
    untrained = copy.deepcopy(model)
    data = ReIDImageDataset(source.train, build_transforms(cfg, train=True, pad=4), part_maps=False)
    sampler = PKSampler(data.pids, p=min(16, source.num_train_pids), k=4, seed=args.seed)
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
    return model, untrained


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", nargs="+", default=["a", "b"], choices=["a", "b"])
    ap.add_argument("--size", default="default")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: size tiny, 1 epoch")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.epochs = "tiny", 1
    torch.set_num_threads(args.threads)
    domains = {d: build_dataset(f"synthetic:{d}", size=args.size) for d in ("a", "b")}
    # scores[row][domain] = (mAP, R1); rows "nothing" (untrained) and each source
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    t0 = time.perf_counter()
    for src in args.sources:
        print(f"training on synthetic:{src} ...", flush=True)
        model, untrained = train(domains[src], args)
        cfg = model.data_config
        if "nothing" not in scores:
            scores["nothing"] = {d: evaluate(untrained, ds, cfg) for d, ds in domains.items()}
        scores[src] = {d: evaluate(model, ds, cfg) for d, ds in domains.items()}
    print(
        f"\nsynthetic gap: {args.epochs} epochs, {args.height}x{args.width}, size "
        f"{args.size}, seed {args.seed}, {time.perf_counter() - t0:.0f} s in all"
    )
    print(f"{'trained on':<12}{'eval on a (mAP / R1)':>24}{'eval on b (mAP / R1)':>24}")
    for row, by_domain in scores.items():
        cells = "".join(
            f"{f'{100 * by_domain[d][0]:.1f} / {100 * by_domain[d][1]:.1f}':>24}"
            for d in ("a", "b")
        )
        print(f"{row:<12}{cells}")
    for src in args.sources:
        tgt = "b" if src == "a" else "a"
        if tgt in scores:
            lost = 100 * (scores[tgt][tgt][0] - scores[src][tgt][0])
            print(
                f"direct transfer {src} -> {tgt}: {100 * scores[src][tgt][0]:.1f} mAP, "
                f"{lost:.1f} mAP below training on {tgt}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
