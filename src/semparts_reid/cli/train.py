"""``semparts-reid train`` / ``adapt``: build datasets, model and trainer from arguments.

Every :class:`~semparts_reid.engine.config.TrainConfig` field is a flag
(:mod:`semparts_reid.cli.args`). :func:`run` is the same run without the parser, so it
can be called from Python (``run(config, source_spec, target_spec, ...)``) with the same
behaviour.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..engine.config import TrainConfig
from ..engine.recipes import list_recipes
from ..errors import InputError
from .args import add_dataclass_arguments, dataclass_from_args
from .common import EXIT_OK

__all__ = ["add_parsers", "cmd_adapt", "cmd_train", "config_for", "run", "run_training"]

log = logging.getLogger(__name__)

INIT_FORMATS = ("auto", "semparts", "torchreid", "fastreid")
"""``--init-format`` choices: ``semparts_reid.hub.WEIGHT_FORMATS``, spelled here so the
parser does not import torch."""


def config_for(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the resumed checkpoint's (if any) or the ``--recipe``'s (default:
    ``TrainConfig()``, the ``paper`` recipe), with the given flags on top."""
    base: TrainConfig | None = None
    recipe = getattr(args, "recipe", None)
    if recipe and getattr(args, "resume", None):
        raise InputError("--recipe: a resumed run keeps its checkpoint's config; give "
                         "--resume or --recipe, not both")
    if recipe:
        base = TrainConfig.from_recipe(recipe)
    if getattr(args, "resume", None):
        from ..engine.checkpoint import load_training_checkpoint

        ckpt = load_training_checkpoint(args.resume, map_location="cpu")
        if "config" not in ckpt:
            raise InputError(f"--resume: {args.resume} is not a training checkpoint (no config)")
        base = TrainConfig.from_dict(ckpt["config"])
    return dataclass_from_args(TrainConfig, args, base)


def run(
    config: TrainConfig,
    source_spec: str,
    target_spec: str | None,
    *,
    adapt: bool,
    resume: str | None = None,
    init: str | None = None,
    init_format: str = "auto",
) -> dict[str, Any]:
    """Train on ``source_spec`` (and adapt to ``target_spec`` when ``adapt``).

    ``train`` (``adapt=False``) runs source-only training for ``config.optim.epochs`` epochs;
    ``adapt`` runs ``config.optim.source_epochs`` of source pre-training, then
    ``config.optim.epochs`` of joint adaptation. Checkpoints and ``metrics.jsonl`` go to
    ``config.runtime.output_dir`` (and TensorBoard event files to ``output_dir/tensorboard`` with
    ``config.runtime.tensorboard``). ``config.seed`` seeds the model's initialisation too.

    Returns:
        The last evaluation on the target query/gallery as a dict ({} when none ran).
    """
    from ..data.datasets import build_dataset
    from ..engine.distributed import seed_everything
    from ..engine.trainer import DomainAdaptTrainer
    from ..models.factory import build_model

    if config.runtime.tensorboard:  # before any slow work
        from ..engine.loggers import require_tensorboard

        try:
            require_tensorboard()
        except ImportError as exc:
            raise InputError(f"--tensorboard: {exc}") from exc
    source = build_dataset(source_spec)
    target = build_dataset(target_spec) if target_spec else None
    pretrained = None if resume or init else config.pretrained
    # the model's random initialisation is part of the run: same seed, same weights (the
    # trainer seeds again, per rank, for data order and augmentation)
    seed_everything(config.seed)
    model = build_model(
        config.arch,
        num_classes=source.num_train_pids,
        pretrained=pretrained,
        input_size=tuple(config.input_size),
        part_head=config.parts.part_head,
    )
    trainer = DomainAdaptTrainer(model, source, target, config)
    if resume:
        trainer.resume(resume)
    elif init:
        trainer.load_weights(init, format=init_format)
    if adapt:
        result = trainer.fit()
    else:
        try:
            trainer.train_source(config.optim.epochs)
        finally:
            trainer.close()
        evals = [r["eval"] for r in trainer.history if "eval" in r]
        result = evals[-1] if evals else {}
    return result


def run_training(args: argparse.Namespace, *, adapt: bool) -> int:
    """Entry point of the ``train`` / ``adapt`` sub-commands."""
    config = config_for(args)
    result = run(
        config,
        args.source,
        args.target,
        adapt=adapt,
        resume=args.resume,
        init=getattr(args, "init", None),
        init_format=getattr(args, "init_format", "auto"),
    )
    from ..engine.distributed import is_main_process

    if not is_main_process():  # under torchrun only rank 0 reports
        return EXIT_OK
    out = Path(config.runtime.output_dir)
    if result:
        print(
            "target: "
            + ", ".join(f"{k}={v:.4f}" for k, v in result.items() if isinstance(v, float))
        )
    print(f"checkpoints and metrics.jsonl in {out}")
    if config.runtime.tensorboard:
        print(f"TensorBoard: tensorboard --logdir {out / 'tensorboard'}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    """``semparts-reid train``: source-only training."""
    return run_training(args, adapt=False)


def cmd_adapt(args: argparse.Namespace) -> int:
    """``semparts-reid adapt``: labeled source + unlabeled target with the exemplar memory."""
    return run_training(args, adapt=True)


def _add_train_arguments(p: argparse.ArgumentParser, *, adapt: bool) -> None:
    p.add_argument(
        "--source", required=True, help="labeled source dataset spec, e.g. market1501:/data/Market"
    )
    p.add_argument(
        "--target",
        required=adapt,
        help="unlabeled target dataset spec (evaluated on its query/gallery)"
        + ("" if adapt else "; optional: evaluation only"),
    )
    p.add_argument(
        "--resume", help="checkpoint to resume from (restores config, optimiser, memory, RNG)"
    )
    if adapt:
        p.add_argument(
            "--init",
            help="source-trained checkpoint to start adaptation from (skips source pre-training): "
            "ours, or a torchreid / fast-reid ResNet checkpoint (see docs/weights.md)",
        )
        p.add_argument(
            "--init-format",
            choices=INIT_FORMATS,
            default="auto",
            help="key layout of the --init file (default: auto, detected from its keys)",
        )
    p.add_argument(
        "--recipe",
        choices=list_recipes(),
        help="start from this recipe's configuration (docs/recipes.md; default: paper, "
        "the TrainConfig defaults); the flags below change it",
    )
    group = p.add_argument_group("training configuration (TrainConfig fields)")
    add_dataclass_arguments(group, TrainConfig, exclude=("source", "target"))


def add_parsers(sub: Any) -> None:
    """Register ``train`` and ``adapt`` on the sub-parsers action ``sub``."""
    for name, adapt, help_text in (
        ("train", False, "source-only training on a labeled dataset"),
        (
            "adapt",
            True,
            "joint training: labeled source + unlabeled target with the exemplar memory",
        ),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_train_arguments(p, adapt=adapt)
        p.set_defaults(func=cmd_adapt if adapt else cmd_train)
