"""One direction's runs in this process: source training, then each adaptation.

Every adaptation of a direction starts from the same source checkpoint
(:func:`~.settings.source_checkpoint`) and runs the same schedule, so the comparison
isolates what the objective and the semantic part features add during adaptation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import train_config
from .rows import Rows, score_modes
from .settings import (
    Adaptation,
    DemoSettings,
    chosen_adaptations,
    is_part_figure_method,
    method_folder,
    source_checkpoint,
)

__all__ = ["adapt_from", "run_direction", "train_source_model"]

log = logging.getLogger(__name__)


def adapt_from(
    settings: DemoSettings,
    method: Adaptation,
    source_ckpt: Path,
    source: Any,
    target: Any,
    out: Path,
    seed: int,
    device: str,
) -> tuple[Rows, Any]:
    """Adapt the source model in ``source_ckpt`` with ``method``, writing to ``out``.

    Returns its scores keyed by retrieval feature (``"global"``, ``"global + parts"``)
    and the adapted model.
    """
    from ..engine.trainer import DomainAdaptTrainer
    from ..models.factory import build_model

    cfg = train_config(settings, out, seed, device, method=method, source=source)
    model = build_model(settings.arch, num_classes=source.num_train_pids,
                        input_size=settings.input_size, detach_masks=method.detach_masks)
    trainer = DomainAdaptTrainer(model, source, target, cfg)
    trainer.load_weights(source_ckpt)
    trainer.adapt(cfg.optim.epochs)
    return score_modes(trainer), trainer.model


def train_source_model(
    settings: DemoSettings, source: Any, target: Any, out: Path, seed: int, device: str
) -> tuple[Rows, Any]:
    """Source training and direct transfer of one direction.

    Writes :func:`~.settings.source_checkpoint` of ``out`` (every adaptation starts
    from it). Returns the two ``Direct transfer (...)`` rows and the source model.
    """
    from ..engine.distributed import seed_everything
    from ..engine.trainer import DomainAdaptTrainer
    from ..models.factory import build_model

    t0 = time.perf_counter()
    cfg = train_config(settings, source_checkpoint(out).parent, seed, device)
    seed_everything(seed)  # --seed fixes the initial weights too
    model = build_model(settings.arch, num_classes=source.num_train_pids,
                        input_size=settings.input_size)
    trainer = DomainAdaptTrainer(model, source, target, cfg)
    trainer.train_source(cfg.optim.source_epochs)
    rows = {f"Direct transfer ({k})": v for k, v in score_modes(trainer).items()}
    log.info("source training: %.1f s", time.perf_counter() - t0)
    return rows, trainer.model


def run_direction(
    settings: DemoSettings, source: Any, target: Any, out: Path, seed: int, device: str,
    methods: Sequence[Adaptation] | None = None,
) -> tuple[Rows, Any]:
    """Source training → direct transfer → every adaptation of one direction, in this
    process, one after another.

    ``methods``: the adaptations to run (default: :func:`~.settings.chosen_adaptations`).
    Returns the rows and the ECN + parts model (the source model when ECN + parts did
    not run).
    """
    rows, part_model = train_source_model(settings, source, target, out, seed, device)
    source_ckpt = source_checkpoint(out)
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
