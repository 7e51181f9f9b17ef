"""How good are the predicted part maps on the *target* domain? (issue: semantic parts)

For each direction of the synthetic pair, a ``semparts_resnet18`` is trained on the
source with the source's part maps only (the demo's source schedule: 80x40 input,
8 epochs), then its part classifier is scored on the target's query images against the
target's withheld ground-truth maps (``metrics.part_iou.part_map_iou``, at input
resolution, the logits up-sampled as the part loss does):

* ``predicted``: the part classifier, trained on source maps, applied to the target;
* ``positional prior``: every image gets the same map, the most common ground-truth
  label at each pixel position over the target images (what a classifier that ignores
  the image can at best do);
* ``pseudo labels``: the self-supervised labels ``part_labels="pseudo"`` trains with
  (k-means on the network's own feature maps), scored against the ground truth;
* ``band prior``: the horizontal bands ``part_labels="band"`` uses (no background);
* ``self labels``: the self-training labels ``unlabeled_part_labels="self"`` gives the
  target (the classifier's argmax where its confidence >= 0.9), scored on the pixels
  they label, with the share of pixels they label;
* ``image-specific``: the fraction of pixels whose predicted label differs from the
  per-pixel most common predicted label across the images (0 = one map for everyone).

Targets (the semantic-parts issue, on the target domain): predicted mIoU >= 0.70 and at
least 0.10 above the positional prior, head IoU >= 0.50, at least 10 % of pixels
image-specific. A miss prints ``[MISSED]`` and exits 3, like every benchmark. Run:

    python benchmarks/bench_part_maps.py            # both directions, demo schedule
    python benchmarks/bench_part_maps.py --quick    # tiny data, 1 epoch (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from semparts_reid.data.datasets import build_dataset
from semparts_reid.data.part_labels import part_map_path, read_part_map
from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.experiments.targets import Target, report
from semparts_reid.layers.part_classifier import confident_part_labels
from semparts_reid.layers.part_clustering import band_labels, pseudo_part_labels
from semparts_reid.metrics.part_iou import PartIoU, part_map_iou
from semparts_reid.models.factory import build_model

NAMES = ("background", "head", "upper", "lower")


def load_target(records: list[Any], size: tuple[int, int], mean: Any, std: Any
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 3, H, W)`` normalised and ground-truth maps ``(N, H, W)`` at ``size``."""
    h, w = size
    images, maps = [], []
    for path, _, _ in records:
        img = Image.open(path).convert("RGB")
        gt = read_part_map(part_map_path(path), size=img.size)
        images.append(np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255)
        maps.append(np.asarray(Image.fromarray(gt).resize((w, h), Image.NEAREST)))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x.contiguous(), torch.from_numpy(np.stack(maps)).long()


def mode_map(labels: torch.Tensor, num: int = 4, ignore: int = 255) -> torch.Tensor:
    """Per-pixel most common label ``(H, W)`` of ``(N, H, W)`` label maps."""
    counts = torch.stack([(labels == k).sum(0) for k in range(num)])
    counts[:, (labels == ignore).all(0)] = 0
    return counts.argmax(0)


def predict_logits(model: Any, x: torch.Tensor, pseudo_size: tuple[int, int] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Part logits of ``x`` (and the pseudo labels of its feature maps at ``pseudo_size``)."""
    logits, pseudo = [], []
    with torch.inference_mode():
        for i in range(0, len(x), 64):
            fmap, skips = model.forward_stages(x[i:i + 64].float())
            logits.append(model.forward_head(fmap, skips=skips).part_logits.float())
            if pseudo_size is not None:
                pseudo.append(pseudo_part_labels(fmap.float(), output_size=pseudo_size))
    return torch.cat(logits), (torch.cat(pseudo) if pseudo else None)


def row(name: str, r: PartIoU, extra: str = "") -> dict[str, Any]:
    vals = r.as_dict(NAMES)
    print(f"  {name:<22} mIoU {vals['mIoU']:.3f}  " + "  ".join(
        f"{n} {vals[n]:.2f}" for n in NAMES) + extra)
    return {k: round(float(v), 4) for k, v in vals.items()}


def run_direction(src: str, tgt: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    source, target = build_dataset(src), build_dataset(tgt)
    size = tuple(args.input_size)
    torch.manual_seed(args.seed)
    model = build_model("semparts_resnet18", num_classes=source.num_train_pids,
                        input_size=size, part_head=args.part_head,
                        detach_masks=args.detach_masks)
    cfg = TrainConfig().replace(arch="semparts_resnet18", pretrained=None, input_size=size,
                      source_epochs=args.epochs, epochs=0, batch_size=32, num_instances=4,
                      num_workers=0, lr=3.5e-4, lr_step=0, eval_every=0, checkpoint_every=0,
                      output_dir=str(out / f"{src}_{tgt}".replace(":", "")), seed=args.seed,
                      progress=False, part_labels="gt", device="cpu",
                      part_loss_weight=args.part_loss_weight, color_jitter=args.color_jitter)
    t0 = time.time()
    trainer = DomainAdaptTrainer(model, source, None, cfg)
    trainer.fit()
    model = trainer.model.eval()
    dc = model.data_config
    src_x, src_gt = load_target(list(source.query)[: args.max_images], size, dc["mean"], dc["std"])
    src_logits = predict_logits(model, src_x)[0]
    records = list(target.query)[: args.max_images]
    x, gt = load_target(records, size, dc["mean"], dc["std"])
    lg, pseudo = predict_logits(model, x, pseudo_size=size)
    pred = torch.nn.functional.interpolate(lg, size=size, mode="bilinear",
                                           align_corners=False).argmax(1)
    prior = mode_map(gt).expand_as(gt)
    self_labels = confident_part_labels(lg, threshold=0.9, size=size)
    coverage = float((self_labels != 255).float().mean())
    specific = float((pred != mode_map(pred)).float().mean())
    print(f"{src} -> {tgt}: {len(records)} target query images at {size[0]}x{size[1]}, "
          f"feature map {lg.shape[-2]}x{lg.shape[-1]}, trained in {time.time() - t0:.0f} s")
    res = {
        "source (diagnostic)": row("source (diagnostic)", part_map_iou(src_logits, src_gt)),
        "predicted": row("predicted", part_map_iou(lg, gt),
                         f"  image-specific {100 * specific:.1f}% of pixels"),
        "positional prior": row("positional prior", part_map_iou(prior.contiguous(), gt)),
        "pseudo labels": row("pseudo labels", part_map_iou(pseudo, gt)),
        "band prior": row("band prior", part_map_iou(
            band_labels(*size).expand_as(gt).contiguous(), gt)),
        "self labels": row("self labels", part_map_iou(
            self_labels, torch.where(self_labels != 255, gt, torch.full_like(gt, 255))),
            f"  on {100 * coverage:.1f}% of pixels"),
        "self_label_coverage": round(coverage, 4),
        "image_specific_fraction": round(specific, 4),
    }
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny data, 1 epoch (smoke run)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--input-size", type=int, nargs=2, default=(80, 40))
    p.add_argument("--max-images", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--part-loss-weight", type=float, default=1.0)
    p.add_argument("--detach-masks", action="store_true")
    p.add_argument("--color-jitter", type=float, default=0.0)
    p.add_argument("--part-head", choices=("decoder", "linear"), default="decoder")
    p.add_argument("--directions", nargs="+", choices=("a2b", "b2a"), default=("a2b", "b2a"))
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--work-dir", default="/tmp/bench_part_maps")
    args = p.parse_args(argv)
    size_opt = "?size=tiny" if args.quick else ""
    if args.quick:
        args.epochs, args.input_size, args.max_images = 1, (64, 32), 32
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(args.work_dir)
    results = {}
    for src, tgt in (("a", "b"), ("b", "a")):
        if f"{src}2{tgt}" not in args.directions:
            continue
        results[f"{src} -> {tgt}"] = run_direction(
            f"synthetic:{src}{size_opt}", f"synthetic:{tgt}{size_opt}", args, out)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return report(targets(results), checked=not args.quick, why_unchecked="quick run")


def targets(results: dict[str, Any]) -> list[Target]:
    """The semantic-parts issue's targets for each direction."""
    out = []
    for direction, r in results.items():
        pred, prior = r["predicted"], r["positional prior"]
        out += [
            Target(f"{direction}: predicted mIoU", pred["mIoU"], ">=", 0.70, fmt=".3f"),
            Target(f"{direction}: mIoU above the positional prior",
                   pred["mIoU"] - prior["mIoU"], ">=", 0.10, fmt="+.3f"),
            Target(f"{direction}: head IoU", pred["head"], ">=", 0.50, fmt=".3f"),
            Target(f"{direction}: image-specific pixels", 100 * r["image_specific_fraction"],
                   ">=", 10.0, unit="%", fmt=".1f"),
        ]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
