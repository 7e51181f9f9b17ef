"""``semparts-reid demo``: the paper's ablation on the embedded synthetic pair.

For each direction (``a→b``, ``b→a``):

1. **source training** of the semantic-part network on the labeled source domain
   (identity CE on global + head + upper + lower, pixel-wise part loss on the source's
   ground-truth part maps);
2. **direct transfer**: that source model on the target query/gallery;
3. four adaptations from that same source checkpoint, with the same schedule:
   **ECN** (exemplar memory on the global feature only, no part branch in any loss),
   **ECN + semantic parts** (the paper's method: identity and memory losses on the
   global and the head / upper / lower features, part loss on the target too),
   **clustering** (DBSCAN pseudo-identities on the k-reciprocal Jaccard distance and a
   cluster memory, global feature only) and **clustering + semantic parts** (part
   centroid banks and the semantic-part label refinement).

Every method is scored twice, with the **same retrieval features**: the global feature
(``global``) and the concatenation of the global and the part features
(``global + parts``), so a row never gains from a longer feature alone.

The target's part maps are **withheld** by default, as on real data: the part loss on
target images uses the labels ``TrainConfig.unlabeled_part_labels`` names (the
classifier's own confident predictions by default). ``--target-part-maps`` reads the
synthetic ground truth instead (what a human parser would bring); the table's header
says which. The clustering settings (k1, k2, eps, min_samples) are derived from the
*source*'s images per identity (``ClusterSettings.for_identity_size``), never from the
target's identities.

With no ImageNet weights on a fresh machine, source training stands in for the
ImageNet initialisation ECN starts from. Outputs in ``out_dir``: ``results.json``,
``cmc.png``, ``part_maps.png`` and ``ranked.png`` (8 target queries and their top 8
under the ``a -> b`` ECN + parts model; figures need the ``plot`` extra).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._io import atomic_write_text
from ..errors import InputError
from . import demo_figures
from .common import EXIT_OK, add_deprecated_alias, add_device_option, positive_int

log = logging.getLogger(__name__)

DIRECTIONS = {"a2b": ("a", "b"), "b2a": ("b", "a")}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and schedule of the demo (``quick`` is the tiny preset the tests run)."""

    dataset_size: str = "default"
    backbone: str = "resnet18"
    input_size: tuple[int, int] = (80, 40)
    source_epochs: int = 8
    adapt_epochs: int = 4
    batch_size: int = 32
    target_batch_size: int = 32
    num_instances: int = 4
    neighbour_start_epoch: int = 2
    lr: float = 3.5e-4
    parts_eval_mode: str = "concat"
    target_part_maps: bool = False
    unlabeled_part_labels: Literal["self", "pseudo", "none"] = "self"
    self_label_class_portion: float = 0.0
    objectives: tuple[str, ...] = ("ecn", "cluster")

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


@dataclass(frozen=True)
class Adaptation:
    """One adapted method of the table: its name, target objective and part use.

    ``parts``: identity and target losses on the head / upper / lower features too
    (``False``: the global feature only). ``part_map_loss``: the pixel-wise part loss
    during adaptation; ``None`` follows ``parts`` (the demo's methods). The benchmarks'
    diagnostic rows set it apart from ``parts`` to separate the two effects.
    ``target_part_maps``: this method trains with the target's ground-truth part maps
    whatever the settings say (an oracle that real data does not have: only for the
    benchmarks' diagnostic rows, which name it; the demo's methods never set it).
    ``detach_masks``: adapt with :class:`~semparts_reid.models.SemPartsNet`'s
    ``detach_masks=True`` (the part classifier learns from the part-map loss only, not
    from the part features' identity and memory losses through its masks).
    ``overrides``: ``(field, value)`` pairs of :class:`~semparts_reid.engine.config.TrainConfig`
    set for this adaptation after everything above (a diagnostic row's one change, e.g.
    ``(("part_head_weight", 1 / 3),)``; the demo's methods have none). An unknown field
    is refused by :func:`adapt_from`, naming it.
    """

    name: str
    objective: str
    parts: bool
    part_map_loss: bool | None = None
    target_part_maps: bool = False
    detach_masks: bool = False
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def trains_part_maps(self) -> bool:
        """Whether the adaptation keeps the pixel-wise part loss."""
        return self.parts if self.part_map_loss is None else self.part_map_loss


def method_folder(method: Adaptation) -> str:
    """The name of the folder a method's adaptation run writes to under a direction's
    output folder: its name in lower case, ``" + "`` and spaces replaced by ``_`` (e.g.
    ``"ECN + semantic parts"`` -> ``"ecn_semantic_parts"``); any other character but a
    letter, a digit, ``_``, ``-`` or ``,`` (the ``/`` of ``"part heads 1/3"``) becomes
    ``_`` too, so the folder is one path component."""
    name = method.name.lower().replace(" + ", "_").replace(" ", "_")
    return re.sub(r"[^\w,-]", "_", name)


ADAPTATIONS = (
    Adaptation("ECN", "ecn", False),
    Adaptation("ECN + semantic parts", "ecn", True),
    Adaptation("Clustering", "cluster", False),
    Adaptation("Clustering + semantic parts", "cluster", True),
)
#: the two retrieval features every method is scored with: (row suffix, eval mode)
FEATURES = (("global", "global"), ("global + parts", "concat"))


def label_source(settings: DemoSettings) -> str:
    """Where the target's part labels came from, for the table header."""
    if settings.target_part_maps:
        return "target part maps: synthetic ground truth (--target-part-maps; real data has none)"
    return ("target part maps: withheld (as on real data); part loss on the target from "
            "the classifier's own confident predictions")


def _config(settings: DemoSettings, arch: str, out: Path, seed: int, device: str) -> Any:
    from ..engine.config import TrainConfig

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
        cache_images=True,  # ~1,500 images of 128x64: decode each once, not each epoch
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
        target_part_maps=settings.target_part_maps,
        unlabeled_part_labels=settings.unlabeled_part_labels,
        self_label_class_portion=settings.self_label_class_portion,
    )


def _row(metrics: Any) -> dict[str, Any]:
    return {
        "R1": metrics.rank(1),
        "R5": metrics.rank(5),
        "R10": metrics.rank(10),
        "mAP": metrics.mAP,
        "cmc": [float(v) for v in metrics.cmc[:20]],
    }


def _scores(trainer: Any) -> dict[str, dict[str, Any]]:
    """The trainer's model scored with each retrieval feature of :data:`FEATURES`."""
    scores = trainer.evaluate_modes([mode for _, mode in FEATURES])  # one extraction
    return {suffix: _row(scores[mode]) for suffix, mode in FEATURES}


def adapt_from(
    settings: DemoSettings,
    method: Adaptation,
    source_ckpt: Path,
    source: Any,
    target: Any,
    out: Path,
    seed: int,
    device: str,
) -> tuple[dict[str, dict[str, Any]], Any]:
    """Adapt the source model with ``method``; its scores per retrieval feature."""
    from ..engine.trainer import DomainAdaptTrainer
    from ..models.factory import build_model

    arch = f"semparts_{settings.backbone}"
    cfg = _config(settings, arch, out, seed, device)
    cfg = dataclasses.replace(cfg, target_objective=method.objective)
    if method.objective == "cluster":  # settings from the source's images per identity
        per_id = len(source.train) / max(1, source.num_train_pids)
        cfg = dataclasses.replace(cfg, cluster_images_per_identity=per_id)
    if not method.parts:  # the baselines: global feature only in the identity losses
        cfg = dataclasses.replace(cfg, use_parts=False)
    if not method.trains_part_maps:  # ... and (the baselines) no part-map loss either
        cfg = dataclasses.replace(cfg, part_labels="none")
    if method.target_part_maps:  # an oracle diagnostic row of the benchmarks
        cfg = dataclasses.replace(cfg, target_part_maps=True)
    if method.overrides:  # a diagnostic row's one change
        known = {f.name for f in dataclasses.fields(cfg)}
        unknown = [k for k, _ in method.overrides if k not in known]
        if unknown:
            raise InputError(f"{method.name!r} overrides {unknown}: not TrainConfig fields")
        cfg = dataclasses.replace(cfg, **dict(method.overrides))
        cfg.validate()
    model = build_model(arch, num_classes=source.num_train_pids, input_size=settings.input_size,
                        detach_masks=method.detach_masks)
    trainer = DomainAdaptTrainer(model, source, target, cfg)
    trainer.load_weights(source_ckpt)
    trainer.adapt(cfg.epochs)
    return _scores(trainer), trainer.model


def train_source_model(
    settings: DemoSettings, source: Any, target: Any, out: Path, seed: int, device: str
) -> tuple[dict[str, dict[str, Any]], Any]:
    """Source training and direct transfer of one direction.

    Writes ``out / "source" / "source_final.pt"`` (every adaptation starts from it).
    Returns the two ``Direct transfer (...)`` rows and the source model.
    """
    from ..engine.distributed import seed_everything
    from ..engine.trainer import DomainAdaptTrainer
    from ..models.factory import build_model

    arch = f"semparts_{settings.backbone}"
    t0 = time.perf_counter()
    cfg = _config(settings, arch, out / "source", seed, device)
    seed_everything(seed)  # --seed fixes the initial weights too
    model = build_model(arch, num_classes=source.num_train_pids, input_size=settings.input_size)
    trainer = DomainAdaptTrainer(model, source, target, cfg)
    trainer.train_source(cfg.source_epochs)
    rows = {f"Direct transfer ({k})": v for k, v in _scores(trainer).items()}
    log.info("source training: %.1f s", time.perf_counter() - t0)
    return rows, trainer.model


def chosen_adaptations(settings: DemoSettings) -> list[Adaptation]:
    """The methods of :data:`ADAPTATIONS` whose objective ``settings.objectives`` names."""
    return [m for m in ADAPTATIONS if m.objective in settings.objectives]


def is_part_figure_method(method: Adaptation) -> bool:
    """The method whose model draws ``part_maps.png`` and ``ranked.png``: ECN + parts."""
    return method == ADAPTATIONS[1]


def _run_direction(
    settings: DemoSettings, source: Any, target: Any, out: Path, seed: int, device: str,
    methods: Sequence[Adaptation] | None = None,
) -> tuple[dict[str, dict[str, Any]], Any]:
    """Source training → direct transfer → every adaptation of one direction, in this
    process, one after another.

    All adaptations start from the same source-trained network and run the same
    schedule, so the comparison isolates what the objective and the semantic part
    features add during adaptation. ``methods``: the adaptations to run (default:
    :func:`chosen_adaptations`). Returns the rows and the ECN + parts model (the source
    model when ECN + parts did not run).
    """
    rows, part_model = train_source_model(settings, source, target, out, seed, device)
    source_ckpt = out / "source" / "source_final.pt"
    for method in chosen_adaptations(settings) if methods is None else methods:
        print(f"  adapting: {method.name} ...", flush=True)
        folder = out / method_folder(method)
        scores, model = adapt_from(
            settings, method, source_ckpt, source, target, folder, seed, device
        )
        rows.update({f"{method.name} ({k})": v for k, v in scores.items()})
        if is_part_figure_method(method):
            part_model = model
    return rows, part_model


def format_table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Paper-style table: one row per method and retrieval feature, R1/R5/R10/mAP (%)
    per direction."""
    directions = list(results)
    methods = list(next(iter(results.values()))) if results else []
    head = f"{'method (retrieval feature)':<46}" + "".join(f"| {d:^27} " for d in directions)
    sub = f"{'':<46}" + "".join(
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
        lines.append(f"{m:<46}" + cells)
    return "\n".join(lines)


def run_demo(
    out_dir: str | Path = "demo_out",
    *,
    quick: bool = False,
    directions: str = "both",
    seed: int = 0,
    device: str = "auto",
    settings: DemoSettings | None = None,
    target_part_maps: bool = False,
    workers: int | None = None,
    keep_checkpoints: bool = False,
) -> dict[str, Any]:
    """Run the ablation and write ``results.json`` (+ figures) to ``out_dir``.

    ``keep_checkpoints``: keep every run's final model; by default only the source
    models and the ECN + semantic parts models stay (:func:`prune_checkpoints`).

    ``target_part_maps``: train the parts methods with the target's ground-truth part
    maps (off: withheld, as on real data); overrides ``settings.target_part_maps``.

    ``workers``: processes that run the source trainings and adaptations side by side
    (:mod:`semparts_reid.cli.demo_jobs`); ``None``: one per CPU core (at most 8) on the
    CPU, 1 on a GPU; ``1`` runs everything in this process, one job after another.

    Returns:
        ``{"results": {direction: {method (feature): {R1, R5, R10, mAP, cmc}}},
        "target_part_labels": ..., "settings": ..., "seed": ..., "seconds": ...}``.

    Raises:
        InputError: ``directions`` is not ``"both"``, ``"a2b"`` or ``"b2a"``;
            ``workers < 1``.
    """
    from ..data.datasets import build_dataset

    if directions not in ("both", *DIRECTIONS):
        raise InputError(f"directions={directions!r}: expected 'both', 'a2b' or 'b2a'")
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers
                                or workers < 1):
        raise InputError(f"workers={workers!r}: expected a positive integer or None")
    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    if target_part_maps:
        settings = dataclasses.replace(settings, target_part_maps=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    print(f"semparts-reid demo: synthetic a <-> b ({settings.dataset_size} size) -> {out}")
    print(label_source(settings))
    specs = {d: f"synthetic:{d}?size={settings.dataset_size}&seed={seed}" for d in ("a", "b")}
    domains = {d: build_dataset(spec) for d, spec in specs.items()}
    for d, ds in domains.items():
        print(f"synthetic:{d}\n{ds.summary_table()}")
    todo = list(DIRECTIONS) if directions == "both" else [directions]
    if workers is None:
        from .demo_jobs import default_workers

        workers = default_workers(device)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    part_model = None
    models: dict[str, Any] = {}
    if workers > 1:
        from ..inference.extractor import load_model_from_checkpoint
        from .demo_jobs import DirectionSpec, run_directions

        runs = [DirectionSpec(f"{s} -> {t}", specs[s], specs[t], out / key)
                for key, (s, t) in ((k, DIRECTIONS[k]) for k in todo)]
        done = run_directions(runs, settings, seed=seed, device=device, workers=workers)
        for key, run in zip(todo, runs, strict=True):
            results[run.label] = done[run.label].rows
            model = load_model_from_checkpoint(done[run.label].figure_checkpoint)
            part_model = models[key] = (model, domains[DIRECTIONS[key][1]])
            label = run.label
    else:
        for key in todo:
            s, t = DIRECTIONS[key]
            label = f"{s} -> {t}"
            print(f"[{label}] source training on synthetic:{s} ...", flush=True)
            results[label], model = _run_direction(
                settings, domains[s], domains[t], out / key, seed, device
            )
            part_model = models[key] = (model, domains[t])
    seconds = time.perf_counter() - t_start
    payload = {
        "results": results,
        "target_part_labels": label_source(settings),
        "settings": dataclasses.asdict(settings),
        "seed": seed,
        "workers": workers,
        "seconds": seconds,
    }
    atomic_write_text(out / "results.json", json.dumps(payload, indent=2))
    print()
    print(label_source(settings))
    print(format_table(results))
    print(f"\n{seconds:.0f} s; results.json in {out}")
    ranked = ("a -> b", models["a2b"]) if "a2b" in models else (label, part_model)
    demo_figures.write_figures(out, results, part_model, ranked, settings.parts_eval_mode,
                               device)
    if not keep_checkpoints:
        prune_checkpoints(out, [out / key for key in todo])
    return payload


def prune_checkpoints(out: Path, direction_dirs: Sequence[Path]) -> list[Path]:
    """Delete the adapted models no later step reads, so a demo leaves ~200 MB, not ~500.

    Kept in each direction folder: ``source/source_final.pt`` (every adaptation starts
    from it) and the ECN + semantic parts model (the paper's method, drawn in the
    figures). Every other ``adapt_final.pt`` is removed once the table and the figures
    are written (``--keep-checkpoints`` keeps them). Returns the removed files.
    """
    keep = method_folder(ADAPTATIONS[1])
    removed = []
    for folder in direction_dirs:
        for ckpt in sorted(folder.glob("*/adapt_final.pt")):
            if ckpt.parent.name != keep:
                ckpt.unlink()
                removed.append(ckpt)
    if removed:
        log.info("removed %d adapted checkpoints under %s (--keep-checkpoints keeps them)",
                 len(removed), out)
    return removed


def cmd_demo(args: argparse.Namespace) -> int:
    """``semparts-reid demo``: :func:`run_demo` with the command's options."""
    run_demo(
        out_dir=args.output_dir,
        quick=args.quick,
        directions=args.direction,
        seed=args.seed,
        device=args.device,
        target_part_maps=args.target_part_maps,
        workers=args.workers,
        keep_checkpoints=args.keep_checkpoints,
    )
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``demo`` on the sub-parsers action ``sub``."""
    p = sub.add_parser(
        "demo", help="the paper's ablation on the synthetic a<->b pair"
    )
    p.add_argument(
        "--output-dir", default="demo_out", metavar="DIR",
        help="output folder (default: demo_out)",
    )
    add_deprecated_alias(p, "--out", dest="output_dir", new="--output-dir")
    p.add_argument("--quick", action="store_true", help="tiny run (<= 60 s) used by the tests")
    p.add_argument(
        "--direction",
        choices=["both", *DIRECTIONS],
        default="both",
        help="adaptation direction(s) (default: both)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--target-part-maps", action="store_true",
        help="train the parts methods with the target's ground-truth part maps (what a "
        "human parser would bring; default: withheld, as on real data)",
    )
    p.add_argument(
        "--workers", type=positive_int, default=None, metavar="N",
        help="processes that train side by side (default: one per CPU core, at most 8; "
        "1 on a GPU; 1 runs everything in this process)",
    )
    p.add_argument(
        "--keep-checkpoints", action="store_true",
        help="keep every adapted model's adapt_final.pt (default: only the source models "
        "and the ECN + semantic parts models stay, about 200 MB)",
    )
    add_device_option(p)
    p.set_defaults(func=cmd_demo)
