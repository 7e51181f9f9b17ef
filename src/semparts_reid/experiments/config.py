"""The one place an experiment builds its :class:`~semparts_reid.engine.config.TrainConfig`.

The demo's schedule (:class:`~.settings.DemoSettings`) and, for an adaptation, its
method's choices (:class:`~.settings.Adaptation`) become one config here, set through
the flat field names of ``TrainConfig.replace``, so a change to how ``TrainConfig`` is
spelt touches this module only.

Example:
    >>> from pathlib import Path
    >>> from semparts_reid.experiments import ADAPTATIONS
    >>> cfg = train_config(DemoSettings.quick(), Path("out"), seed=0, device="cpu",
    ...                    method=ADAPTATIONS[0])
    >>> cfg.arch, cfg.target_objective, cfg.parts.use_parts, cfg.parts.part_labels
    ('semparts_resnet18', 'ecn', False, 'none')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from .settings import Adaptation, DemoSettings

__all__ = ["train_config"]


def train_config(
    settings: DemoSettings,
    out: Path,
    seed: int,
    device: str,
    method: Adaptation | None = None,
    source: Any = None,
) -> Any:
    """The ``TrainConfig`` of a source training (``method=None``) or of ``method``'s
    adaptation.

    Args:
        settings: sizes and schedule.
        out: the run's output folder.
        seed, device: as ``TrainConfig.seed`` / ``TrainConfig.device``.
        method: the adaptation; its objective, part use, oracle maps and overrides are
            applied in that order.
        source: the labeled source dataset (``train``, ``num_train_pids``); a clustering
            method derives its settings from the source's images per identity.

    Raises:
        InputError: ``method.overrides`` names a field ``TrainConfig`` does not have.
    """
    from ..engine.config import TrainConfig

    cfg = TrainConfig().replace(
        arch=settings.arch,
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
    return cfg if method is None else _for_method(cfg, method, source)


def _for_method(cfg: Any, method: Adaptation, source: Any) -> Any:
    """``cfg`` with ``method``'s choices (see :func:`train_config`)."""
    from ..engine.config import flat_fields

    cfg = cfg.replace(target_objective=method.objective)
    if method.objective == "cluster":  # settings from the source's images per identity
        per_id = len(source.train) / max(1, source.num_train_pids)
        cfg = cfg.replace(cluster_images_per_identity=per_id)
    if not method.parts:  # the baselines: global feature only in the identity losses
        cfg = cfg.replace(use_parts=False)
    if not method.trains_part_maps:  # ... and (the baselines) no part-map loss either
        cfg = cfg.replace(part_labels="none")
    if method.target_part_maps:  # an oracle diagnostic row of the benchmarks
        cfg = cfg.replace(target_part_maps=True)
    if method.overrides:  # a diagnostic row's one change
        known = flat_fields()
        unknown = [k for k, _ in method.overrides if k not in known]
        if unknown:
            raise InputError(f"{method.name!r} overrides {unknown}: not TrainConfig fields")
        cfg = cfg.replace(**dict(method.overrides))
    return cfg
