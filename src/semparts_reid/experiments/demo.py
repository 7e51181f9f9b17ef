"""The paper's ablation on the embedded synthetic pair (``semparts-reid demo``).

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
classifier's own confident predictions by default). ``target_part_maps=True`` reads the
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

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from ..errors import InputError
from . import figures
from .jobs import DirectionSpec, default_workers, run_directions
from .rows import Rows, format_table
from .runs import run_direction
from .settings import (
    ADAPTATIONS,
    DIRECTIONS,
    DemoSettings,
    label_source,
    method_folder,
    synthetic_spec,
)

__all__ = ["prune_checkpoints", "run_demo"]

log = logging.getLogger(__name__)

#: per direction key: (the ECN + parts model, the target dataset) for the figures
_Models = dict[str, tuple[Any, Any]]


def _check_args(directions: str, workers: int | None) -> None:
    if directions not in ("both", *DIRECTIONS):
        raise InputError(f"directions={directions!r}: expected 'both', 'a2b' or 'b2a'")
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers
                                or workers < 1):
        raise InputError(f"workers={workers!r}: expected a positive integer or None")


def _run_pooled(todo: list[str], specs: dict[str, str], domains: dict[str, Any],
                settings: DemoSettings, out: Path, seed: int, device: str,
                workers: int) -> tuple[dict[str, Rows], _Models]:
    """Every direction of ``todo`` as jobs on ``workers`` processes."""
    from ..inference.extractor import load_model_from_checkpoint

    results: dict[str, Rows] = {}
    models: _Models = {}
    runs = [DirectionSpec(f"{s} -> {t}", specs[s], specs[t], out / key)
            for key, (s, t) in ((k, DIRECTIONS[k]) for k in todo)]
    done = run_directions(runs, settings, seed=seed, device=device, workers=workers)
    for key, run in zip(todo, runs, strict=True):
        results[run.label] = done[run.label].rows
        model = load_model_from_checkpoint(done[run.label].figure_checkpoint)
        models[key] = (model, domains[DIRECTIONS[key][1]])
    return results, models


def _run_in_process(todo: list[str], domains: dict[str, Any], settings: DemoSettings,
                    out: Path, seed: int, device: str) -> tuple[dict[str, Rows], _Models]:
    """Every direction of ``todo`` in this process, one job after another."""
    results: dict[str, Rows] = {}
    models: _Models = {}
    for key in todo:
        s, t = DIRECTIONS[key]
        label = f"{s} -> {t}"
        print(f"[{label}] source training on synthetic:{s} ...", flush=True)
        results[label], model = run_direction(
            settings, domains[s], domains[t], out / key, seed, device
        )
        models[key] = (model, domains[t])
    return results, models


def _report(out: Path, results: dict[str, Rows], settings: DemoSettings,
            payload: dict[str, Any]) -> None:
    """Write ``results.json`` and print the table."""
    atomic_write_text(out / "results.json", json.dumps(payload, indent=2))
    print()
    print(label_source(settings))
    print(format_table(results))
    print(f"\n{payload['seconds']:.0f} s; results.json in {out}")


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
    (:mod:`semparts_reid.experiments.jobs`); ``None``: one per CPU core (at most 8) on
    the CPU, 1 on a GPU; ``1`` runs everything in this process, one job after another.

    Returns:
        ``{"results": {direction: {method (feature): {R1, R5, R10, mAP, cmc}}},
        "target_part_labels": ..., "settings": ..., "seed": ..., "seconds": ...}``.

    Raises:
        InputError: ``directions`` is not ``"both"``, ``"a2b"`` or ``"b2a"``;
            ``workers < 1``.
    """
    from ..data.datasets import build_dataset

    _check_args(directions, workers)
    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    if target_part_maps:
        settings = dataclasses.replace(settings, target_part_maps=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    print(f"semparts-reid demo: synthetic a <-> b ({settings.dataset_size} size) -> {out}")
    print(label_source(settings))
    specs = {d: synthetic_spec(d, settings, seed) for d in ("a", "b")}
    domains = {d: build_dataset(spec) for d, spec in specs.items()}
    for d, ds in domains.items():
        print(f"synthetic:{d}\n{ds.summary_table()}")
    todo = list(DIRECTIONS) if directions == "both" else [directions]
    if workers is None:
        workers = default_workers(device)
    if workers > 1:
        results, models = _run_pooled(todo, specs, domains, settings, out, seed, device,
                                      workers)
    else:
        results, models = _run_in_process(todo, domains, settings, out, seed, device)
    payload = {
        "results": results,
        "target_part_labels": label_source(settings),
        "settings": dataclasses.asdict(settings),
        "seed": seed,
        "workers": workers,
        "seconds": time.perf_counter() - t_start,
    }
    _report(out, results, settings, payload)
    last = todo[-1]  # part_maps.png: the last direction; ranked.png: a -> b when it ran
    key = "a2b" if "a2b" in models else last
    ranked = ("{} -> {}".format(*DIRECTIONS[key]), models[key])
    figures.write_figures(out, results, models[last], ranked, settings.parts_eval_mode, device)
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
