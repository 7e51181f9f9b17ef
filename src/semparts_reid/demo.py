"""``semparts-reid demo``: the paper's ablation on the embedded synthetic pair.

For each direction (``a→b``, ``b→a``) and each network (the ECN baseline ``ecn_*``,
global feature only, and the semantic-part network ``semparts_*``):

1. source training on the labeled source domain (identity CE; for the part network
   also on head/upper/lower and the pixel-wise part loss on the ground-truth maps);
2. **direct transfer**: evaluate that source model on the target query/gallery;
3. **adaptation**: joint training with the exemplar memory on the unlabeled target
   (exemplar, camera and neighbourhood invariance; per part for the part network);
4. evaluate again.

With no ImageNet weights on a fresh machine, source training stands in for the
ImageNet initialisation ECN starts from; both networks get the same schedule, so the
comparison isolates what the semantic parts add. The table has the shape of the
paper's Tables 1 and 2 (R1, R5, R10, mAP). Outputs in ``out_dir``: ``results.json``,
``cmc.png`` and ``part_maps.png`` (figures need the ``plot`` extra).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import atomic_write_text

log = logging.getLogger(__name__)

DIRECTIONS = {"a2b": ("a", "b"), "b2a": ("b", "a")}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and schedule of the demo (``quick`` is the tiny preset the tests run)."""

    dataset_size: str = "default"
    backbone: str = "resnet18"
    input_size: tuple[int, int] = (64, 32)
    source_epochs: int = 8
    adapt_epochs: int = 4
    batch_size: int = 32
    target_batch_size: int = 32
    num_instances: int = 4
    neighbour_start_epoch: int = 2
    lr: float = 3.5e-4
    parts_eval_mode: str = "concat"

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(
            dataset_size="tiny",
            input_size=(64, 32),
            source_epochs=2,
            adapt_epochs=1,
            batch_size=16,
            target_batch_size=16,
            neighbour_start_epoch=0,
        )


def _config(settings: DemoSettings, arch: str, out: Path, seed: int, device: str) -> Any:
    from .engine.config import TrainConfig

    return TrainConfig(
        arch=arch,
        pretrained=None,
        input_size=settings.input_size,
        source_epochs=settings.source_epochs,
        epochs=settings.adapt_epochs,
        batch_size=settings.batch_size,
        target_batch_size=settings.target_batch_size,
        num_instances=settings.num_instances,
        num_workers=0,
        lr=settings.lr,
        lr_step=0,
        neighbour_start_epoch=settings.neighbour_start_epoch,
        eval_every=0,
        output_dir=str(out),
        checkpoint_every=0,
        seed=seed,
        device=device,
        progress=False,
        eval_batch_size=128,
    )


def _row(metrics: Any) -> dict[str, Any]:
    return {
        "R1": metrics.rank(1),
        "R5": metrics.rank(5),
        "R10": metrics.rank(10),
        "mAP": metrics.mAP,
        "cmc": [float(v) for v in metrics.cmc[:20]],
    }


def _train_pair(
    settings: DemoSettings,
    arch: str,
    source: Any,
    target: Any,
    out: Path,
    seed: int,
    device: str,
    eval_mode: str,
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """Source training → direct transfer → adaptation → evaluation of one network."""
    from .engine.trainer import DomainAdaptTrainer
    from .models.factory import build_model

    cfg = _config(settings, arch, out, seed, device)
    model = build_model(arch, num_classes=source.num_train_pids, input_size=settings.input_size)
    trainer = DomainAdaptTrainer(model, source, target, cfg)
    t0 = time.perf_counter()
    trainer.train_source(cfg.source_epochs)
    direct = _row(trainer.evaluate(mode=eval_mode))
    trainer.adapt(cfg.epochs)
    adapted = _row(trainer.evaluate(mode=eval_mode))
    log.info("%s: %.1f s", arch, time.perf_counter() - t0)
    return direct, adapted, trainer.model


@torch.no_grad()
def _part_map_examples(model: Any, records: Sequence[Any], n: int = 6) -> tuple[np.ndarray, ...]:
    """Images (N,H,W,3) in [0,1] and predicted part probabilities (N,4,H,W)."""
    from .data.image_dataset import ReIDImageDataset
    from .data.transforms import build_transforms

    cfg = model.data_config
    picks = np.linspace(0, len(records) - 1, num=min(n, len(records))).astype(int)
    ds = ReIDImageDataset(
        [records[i] for i in picks], build_transforms(cfg, train=False), part_maps=False
    )
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    model.eval()
    device = next(model.parameters()).device
    out = model(x.to(device).float())
    probs = torch.nn.functional.interpolate(
        out.part_logits.float().softmax(1),
        size=x.shape[-2:],
        mode="bilinear",
        align_corners=False,
    )
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    images = (x * std + mean).clamp(0, 1).permute(0, 2, 3, 1)
    return images.numpy(), probs.cpu().numpy()


def format_table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Paper-style table: one row per method, R1/R5/R10/mAP (%) per direction."""
    directions = list(results)
    methods = list(next(iter(results.values()))) if results else []
    head = f"{'method':<34}" + "".join(f"| {d:^27} " for d in directions)
    sub = f"{'':<34}" + "".join(
        f"| {'R1':>5} {'R5':>5} {'R10':>5} {'mAP':>6}  " for _ in directions
    )
    lines = [head, sub, "-" * len(sub)]
    for m in methods:
        cells = "".join(
            "| {R1:5.1f} {R5:5.1f} {R10:5.1f} {mAP:6.1f}  ".format(
                **{k: 100 * results[d][m][k] for k in ("R1", "R5", "R10", "mAP")}
            )
            for d in directions
        )
        lines.append(f"{m:<34}" + cells)
    return "\n".join(lines)


def run_demo(
    out_dir: str | Path = "demo_out",
    *,
    quick: bool = False,
    directions: str = "both",
    seed: int = 0,
    device: str = "auto",
    settings: DemoSettings | None = None,
) -> dict[str, Any]:
    """Run the ablation and write ``results.json`` (+ figures) to ``out_dir``.

    Returns:
        ``{"results": {direction: {method: {R1, R5, R10, mAP, cmc}}}, "settings": ...,
        "seconds": ...}``.
    """
    from .data.datasets import build_dataset

    if directions not in ("both", *DIRECTIONS):
        raise ValueError(f"directions={directions!r}: expected 'both', 'a2b' or 'b2a'")
    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    print(f"semparts-reid demo: synthetic a <-> b ({settings.dataset_size} size) -> {out}")
    domains = {
        d: build_dataset(f"synthetic:{d}?size={settings.dataset_size}&seed={seed}")
        for d in ("a", "b")
    }
    for d, ds in domains.items():
        print(f"synthetic:{d}\n{ds.summary_table()}")
    todo = list(DIRECTIONS) if directions == "both" else [directions]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    part_model = None
    for key in todo:
        s, t = DIRECTIONS[key]
        label = f"{s} -> {t}"
        results[label] = {}
        for family, arch, mode in (
            ("ECN (global)", f"ecn_{settings.backbone}", "global"),
            ("ECN + semantic parts", f"semparts_{settings.backbone}", settings.parts_eval_mode),
        ):
            print(f"[{label}] {family}: source training + adaptation ...", flush=True)
            direct, adapted, model = _train_pair(
                settings, arch, domains[s], domains[t], out / key / arch, seed, device, mode
            )
            results[label][f"Direct transfer: {family}"] = direct
            results[label][f"Adapted: {family}"] = adapted
            if arch.startswith("semparts_"):
                part_model = (model, domains[t])
    order = [
        "Direct transfer: ECN (global)",
        "Direct transfer: ECN + semantic parts",
        "Adapted: ECN (global)",
        "Adapted: ECN + semantic parts",
    ]
    results = {d: {m: rows[m] for m in order} for d, rows in results.items()}
    seconds = time.perf_counter() - t_start
    payload = {
        "results": results,
        "settings": dataclasses.asdict(settings),
        "seed": seed,
        "seconds": seconds,
    }
    atomic_write_text(out / "results.json", json.dumps(payload, indent=2))
    print()
    print(format_table(results))
    print(f"\n{seconds:.0f} s; results.json in {out}")
    _write_figures(out, results, part_model)
    return payload


def _write_figures(out: Path, results: dict[str, Any], part_model: Any) -> None:
    from .viz import PlotUnavailable, plot_cmc_curves, plot_part_maps

    curves = {f"{d}: {m}": row["cmc"] for d, rows in results.items() for m, row in rows.items()}
    try:
        plot_cmc_curves(curves, out / "cmc.png", title="CMC on the target domain")
        if part_model is not None:
            model, target = part_model
            images, probs = _part_map_examples(model, target.query)
            plot_part_maps(images, probs, out / "part_maps.png")
        print(f"figures: {out / 'cmc.png'}, {out / 'part_maps.png'}")
    except PlotUnavailable as exc:
        print(f"figures skipped: {exc}")
