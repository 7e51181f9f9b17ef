"""``DomainAdaptTrainer``: source pre-training and joint source + target adaptation.

The trainer is a thin loop over parts that sit in their own modules and that a user
can also call alone: the per-epoch batches (:mod:`~semparts_reid.engine.batches`),
the step's forward and losses (:mod:`~semparts_reid.engine.step`), the target
objective (:mod:`~semparts_reid.engine.objectives`: ECN's exemplar memory by default,
or any object with the objective interface), checkpoints
(:mod:`~semparts_reid.engine.checkpoint`), loggers
(:mod:`~semparts_reid.engine.loggers`) and THE evaluation path
(:func:`semparts_reid.inference.evaluate_model`). It can be driven piecewise::

    trainer = DomainAdaptTrainer(model, source, target, config)
    trainer.train_source(epochs=20)        # stage 1: labeled source only
    direct = trainer.evaluate()            # direct transfer on the target query/gallery
    trainer.adapt(epochs=30)               # stage 2: source CE + exemplar memory
    adapted = trainer.evaluate(mode="parts")
    trainer.save("run/final.pt")

``fit()`` runs both stages as the config says. A checkpoint (``output_dir/last.pt``) is
written every ``checkpoint_every`` epochs with model, optimiser, scheduler, objective
(memory) and RNG states; :meth:`resume` continues from it and reproduces the
uninterrupted run's losses (samplers are seeded from ``(seed, stage, epoch)``, the RNG
states are restored). Only rank 0 writes files under ``torchrun``.

(Over 400 lines on purpose: one public class whose methods are the documented API, with
their docstrings and argument checks; the work itself is in the modules named above.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..memory import ClusterMemory, ExemplarMemory
from ..precision import resolve_precision
from .batches import STAGES, EpochBatches
from .checkpoint import (
    CHECKPOINT_FORMAT,
    load_training_checkpoint,
    restore_rng_state,
    save_checkpoint,
    unwrap_model,
)
from .config import TrainConfig
from .distributed import (
    barrier,
    get_rank,
    get_world_size,
    init_distributed,
    is_distributed,
    is_main_process,
    seed_everything,
)
from .epoch import run_epoch
from .loggers import MetricsLogger
from .objectives import EpochState, TargetObjective
from .optim import build_optimizer
from .step import NonFiniteLossError, camstyle_swap, check_finite_losses, step_losses, wrap_step_net
from .trainer_setup import (
    check_labels_once,
    check_trainer_args,
    check_world_batches,
    config_for_target,
    make_loggers,
    make_objective,
    model_data_config,
    probe_num_parts,
)
from .training_state import final_state, restore_objective, training_state

__all__ = ["DomainAdaptTrainer", "NonFiniteLossError"]

logger = logging.getLogger(__name__)


class DomainAdaptTrainer:
    """Train a :class:`~semparts_reid.models.sempartsnet.SemPartsNet` across domains.

    Args:
        model: a model with ``forward_features`` / ``forward_head`` returning a
            ``ReIDOutput`` (any :func:`~semparts_reid.build_model` model), built with
            ``num_classes = source.num_train_pids``.
        source: labeled source dataset (``.train`` list of ``ImageRecord``).
        target: unlabeled target dataset (``.train`` for adaptation, ``.query`` /
            ``.gallery`` for evaluation); may be None for source-only training.
        config: a :class:`TrainConfig`.
        objective: the target objective (see :mod:`~semparts_reid.engine.objectives`);
            default: the built-in one named by ``config.target_objective``.
        memory: an :class:`ExemplarMemory` to adapt with (wrapped in an
            :class:`~semparts_reid.engine.objectives.ExemplarObjective`); give
            ``objective`` or ``memory``, not both.
        loggers: where per-epoch records go; default: a
            :class:`~semparts_reid.engine.loggers.JsonLinesLogger` writing
            ``output_dir/metrics.jsonl``, plus a
            :class:`~semparts_reid.engine.loggers.TensorBoardLogger` writing
            ``output_dir/tensorboard`` when ``config.runtime.tensorboard``. :meth:`fit` closes
            them at its end and when a stage stops on an error (:meth:`close`).

    Attributes:
        model: the (unwrapped) model, on the trainer's device.
        objective: the target objective (None without a target).
        stage: ``"source"`` or ``"adapt"``: the stage of the last epoch run.
        epoch: completed epochs of :attr:`stage`.
        history: one dict per finished epoch (also given to the loggers).
    """

    def __init__(
        self,
        model: nn.Module,
        source: Any,
        target: Any | None = None,
        config: TrainConfig | None = None,
        objective: TargetObjective | None = None,
        *,
        memory: ExemplarMemory | None = None,
        loggers: list[MetricsLogger] | None = None,
    ) -> None:
        cfg = check_trainer_args(model, source, target, config, objective, memory)
        cfg = self.config = config_for_target(cfg, target)
        self.source, self.target = source, target
        self.device = init_distributed(cfg.runtime.device)
        self.rank, self.world = get_rank(), get_world_size()
        check_world_batches(cfg, self.world)
        self.policy = resolve_precision(self.device, cfg.runtime.precision,
                                        channels_last=cfg.runtime.channels_last)
        seed_everything(cfg.seed + self.rank)
        self.model = self.policy.prepare_module(unwrap_model(model))
        self.num_parts = probe_num_parts(self.model, cfg.input_size, self.device)
        self.use_parts = cfg.parts.use_parts and self.num_parts > 0
        self.scaler = self.policy.grad_scaler()
        self.objective: TargetObjective | None = make_objective(
            cfg, objective, memory, target, device=self.device,
            feat_dim=int(getattr(self.model, "feat_dim")),  # noqa: B009 - checked above
            num_heads=1 + self.num_parts if self.use_parts else 1,
        )
        self.stage, self.epoch, self.global_step = "source", 0, 0
        self.history: list[dict[str, Any]] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self._net: nn.Module | None = None
        self.output_dir = Path(cfg.runtime.output_dir)
        self.loggers = make_loggers(loggers, self.output_dir, cfg)
        self._pids_checked = check_labels_once(self.model, source, target, self.objective)
        self.batches = EpochBatches(source, target, cfg, self._data_config(),
                                    rank=self.rank, world=self.world,
                                    pin_memory=self.device.type == "cuda",
                                    part_model=self.num_parts > 0)
        logger.info(
            "trainer: device=%s precision=%s world=%d parts=%s objective=%s", self.device,
            self.policy.name, self.world, self.use_parts, type(self.objective).__name__,
        )

    @property
    def memory(self) -> ExemplarMemory | ClusterMemory | None:
        """The objective's memory: the :class:`ExemplarMemory` of ECN, the
        :class:`ClusterMemory` of the clustering objective (None without one)."""
        mem = getattr(self.objective, "memory", None)
        return mem if isinstance(mem, (ExemplarMemory, ClusterMemory)) else None

    # ------------------------------------------------------------------ setup
    def _wrap(self) -> nn.Module:
        if self._net is None:
            # a part model trained without its part heads (the ECN ablation) or without
            # the part-map loss leaves parameters unused; every other setup uses all
            unused = self.num_parts > 0 and (
                not self.use_parts or self.config.parts.part_labels == "none"
            )
            self._net = wrap_step_net(self.model, self.device, distributed=is_distributed(),
                                      unused_parameters=unused)
        return self._net

    def _build_optimizer(self) -> None:
        self.optimizer, self.scheduler = build_optimizer(self.model, self.config)

    def _start_stage(self, stage: str) -> None:
        """Fresh optimiser and schedule when a stage starts (not on resume)."""
        if stage == "adapt" and (self.target is None or self.objective is None):
            raise ValueError("adapt(): the trainer was built without a target dataset")
        self.stage, self.epoch = stage, 0
        self._build_optimizer()

    # ------------------------------------------------------------------ stages
    def fit(self) -> dict[str, Any]:
        """Run source pre-training (``config.optim.source_epochs``) then adaptation (``epochs``).

        Continues where a :meth:`resume` left off (a finished stage is skipped).
        Returns the last evaluation as a dict ({} when none ran).
        """
        cfg = self.config
        try:
            resumed_in_adapt = self.stage == "adapt" and self.optimizer is not None
            if cfg.optim.source_epochs and not resumed_in_adapt:
                self.train_source(cfg.optim.source_epochs)
            if self.target is not None and cfg.optim.epochs:
                self.adapt(cfg.optim.epochs)
        finally:
            self.close()
        evals = [r["eval"] for r in self.history if "eval" in r]
        return evals[-1] if evals else {}

    def train_source(self, epochs: int | None = None) -> None:
        """Stage 1: identity CE (+ part-map loss) on the labeled source, ``epochs`` epochs."""
        self._run_stage("source", self.config.optim.source_epochs if epochs is None else epochs)

    def adapt(self, epochs: int | None = None) -> None:
        """Stage 2: source loss + exemplar-memory loss on the target, ``epochs`` epochs."""
        self._run_stage("adapt", self.config.optim.epochs if epochs is None else epochs)

    def _run_stage(self, stage: str, epochs: int) -> None:
        if epochs < 0:
            raise ValueError(f"epochs={epochs}: expected >= 0")
        if self.optimizer is not None and self.stage == stage:
            if self.epoch >= epochs:
                logger.info("%s stage already has %d epochs: nothing to do", stage, self.epoch)
                return
        else:
            self._start_stage(stage)
        cfg = self.config
        try:
            while self.epoch < epochs:
                record = self._train_epoch(stage, self.epoch)
                self.epoch += 1
                assert self.scheduler is not None
                self.scheduler.step()
                last = self.epoch == epochs
                if self.target is not None and cfg.runtime.eval_every and (
                    self.epoch % cfg.runtime.eval_every == 0 or last
                ):
                    metrics = self.evaluate()
                    if metrics is not None:
                        record["eval"] = metrics.as_dict()
                self._log(record)
                every = cfg.runtime.checkpoint_every
                if (every and self.epoch % every == 0) or last:
                    self.save(self.output_dir / "last.pt")
        except KeyboardInterrupt:
            path = self.output_dir / "interrupted.pt"
            logger.warning("interrupted: saving %s (resumes at the start of the epoch)", path)
            try:
                self.save(path)
            finally:
                self.close()
            raise
        except BaseException:
            self.close()
            raise
        if epochs:
            self.save(self.output_dir / f"{stage}_final.pt", final=True)
            planned = cfg.optim.source_epochs if stage == "source" else cfg.optim.epochs
            if self.epoch >= planned and not cfg.runtime.keep_resume:
                self._drop_resume_state()

    def _drop_resume_state(self) -> None:
        """Remove ``last.pt`` once its stage ran the epochs the config plans (rank 0).

        It is kept while the stage runs, after a crash or an interrupt (it is what the
        run resumes from), after a shorter call such as ``adapt(1)`` of a 4-epoch
        config, and always with ``TrainConfig.keep_resume``.
        """
        if is_main_process():
            (self.output_dir / "last.pt").unlink(missing_ok=True)

    # ------------------------------------------------------------------ epochs
    def _data_config(self) -> dict[str, Any]:
        return model_data_config(self.model, self.config.input_size)

    def _target_features(self) -> Any:
        """The current model's features of the target training images (for objectives
        that re-cluster; see :meth:`TargetObjective.start_epoch`)."""
        from ..inference.evaluation import extract_split
        from .target_features import gather_split_features

        assert self.target is not None
        extractor = self._extractor()  # under torchrun: one shard per rank, all-gathered
        return gather_split_features(
            lambda recs: extract_split(extractor, recs, parts=self.use_parts,
                                       split="target train"),
            self.target.train, rank=self.rank, world=self.world, device=self.device,
        )

    def _extractor(self) -> Any:
        from ..inference.extractor import FeatureExtractor

        return FeatureExtractor(
            self.model, device=self.device, precision=self.policy.name,
            channels_last=self.policy.channels_last, batch_size=self.config.runtime.eval_batch_size,
            num_workers=self.config.runtime.num_workers, data_config=self._data_config(),
            progress=self.config.runtime.progress and is_main_process(), fuse_bn=False,
            part_maps=self.batches.parser if self.config.parts.pool_with_parser_maps else None,
        )

    def _train_epoch(self, stage: str, epoch: int) -> dict[str, Any]:
        steps = self.batches.steps_per_epoch()
        if stage == "adapt" and self.objective is not None:
            was = self.model.training
            self.objective.start_epoch(
                EpochState(stage, epoch, self.global_step, self.rank, self.world),
                self._target_features,
            )
            self.model.train(was)
        from ..inference.preprocess import cudnn_benchmark

        src = self.batches.iterator("source", stage, epoch, steps)
        tgt = self.batches.iterator("target", stage, epoch, steps) if stage == "adapt" else None
        self._wrap().train()
        # train_step replaced (a subclass, a patched instance): the loop keeps calling it
        custom = "train_step" in vars(self) or (
            type(self).train_step is not DomainAdaptTrainer.train_step
        )
        with cudnn_benchmark(self.device):  # fixed-size inputs; restored after the epoch
            terms = run_epoch(
                (lambda bs, bt, where: self.train_step(bs, bt, epoch=epoch, where=where))
                if custom else (lambda bs, bt, where: self._step(bs, bt, where=where)),
                src, tgt, steps, self.policy, desc=f"{stage} {epoch + 1}",
                progress=self.config.runtime.progress and is_main_process(),
                check_every=self.config.runtime.check_finite_every,
            )
        assert self.optimizer is not None
        # an objective may report on its epoch start (a clustering one: clusters, outliers)
        extra = getattr(self.objective, "epoch_metrics", None) if stage == "adapt" else None
        return {"stage": stage, "epoch": epoch + 1, "step": self.global_step, **terms,
                **(extra() if callable(extra) else {}),
                "lr": self.optimizer.param_groups[-1]["lr"]}

    # ------------------------------------------------------------------ one step
    def train_step(
        self,
        batch_s: dict[str, Any],
        batch_t: dict[str, Any] | None,
        *,
        epoch: int,
        where: str = "",
    ) -> dict[str, float]:
        """One optimiser step; returns the loss terms as floats.

        Checks the pids, the memory indices and every term's finiteness before the
        optimiser step, and reads the terms back: host synchronisations on a GPU. The
        trainer's own loop runs the same step without them (its data was checked once,
        finiteness every ``config.runtime.check_finite_every`` steps).

        Args:
            batch_s: source batch dict (``image``, ``pid``, ``parts``) on the device.
            batch_t: target batch dict (``image``, ``index``, ``parts``, optional
                ``image_cam``) or None for a source-only step.
            epoch: 0-based epoch of the current stage (for the messages; the objective
                learned the epoch in ``start_epoch``).
        """
        mem = self.memory
        if batch_t is not None and isinstance(mem, ExemplarMemory) and batch_t["index"].numel():
            lo, hi = int(batch_t["index"].min()), int(batch_t["index"].max())
            if lo < 0 or hi >= mem.num_samples:
                raise ValueError(f"target indices in [{lo}, {hi}]: expected values in "
                                 f"[0, {mem.num_samples - 1}]")
        terms = self._step(batch_s, batch_t, where=where or f"step {self.global_step + 1}",
                           checked=True)
        return {k: float(v) for k, v in terms.items()}

    def _step(
        self,
        batch_s: dict[str, Any],
        batch_t: dict[str, Any] | None,
        *,
        where: str,
        checked: bool = False,
    ) -> dict[str, torch.Tensor]:
        """:meth:`train_step` with the terms left on the device (detached, 0-d); with
        ``checked``, pids and finiteness are checked before the optimiser step."""
        assert self.optimizer is not None
        net = self._wrap()
        images = [batch_s["image"]]
        if batch_t is not None:
            if self.objective is None:
                raise ValueError("a target batch needs a target objective")
            cams = int(getattr(self.target, "num_train_cams", 2))
            images.append(camstyle_swap(batch_t, cams, self.config.augment.camstyle))
        pool = [_pool_masks(batch_s), _pool_masks(batch_t)][:len(images)]
        with self.policy.autocast():
            outs = net(*images, pool_masks=pool) if any(p is not None for p in pool) \
                else net(*images)
        out_t = outs[1] if batch_t is not None else None
        terms = step_losses(outs[0], batch_s, out_t, batch_t, objective=self.objective,
                            config=self.config, use_parts=self.use_parts,
                            check_labels=checked or not self._pids_checked)
        if checked:
            check_finite_losses(terms, where)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["loss"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if batch_t is not None and out_t is not None and self.objective is not None:
            self.objective.update(out_t, batch_t)
        self.global_step += 1
        return {k: v.detach() for k, v in terms.items()}

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self,
        query: list[Any] | None = None,
        gallery: list[Any] | None = None,
        *,
        mode: str | None = None,
        metric: str = "cosine",
    ) -> Any:
        """CMC / mAP of the current model on ``query`` vs ``gallery`` (default: target's).

        Runs :func:`semparts_reid.inference.evaluate_model` (the library's one evaluation
        path, also behind ``semparts-reid evaluate``) with the trainer's device,
        precision policy, preprocessing and ``eval_batch_size``.

        Args:
            query, gallery: lists of ``ImageRecord``.
            mode: ``"global"``, ``"concat"`` or ``"parts"`` (visibility-aware part
                distance); default ``config.runtime.eval_mode``.
            metric: ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"``.

        Returns:
            ``ReIDMetrics`` on rank 0; None on other ranks (they wait at a barrier).
        """
        mode = mode or self.config.runtime.eval_mode
        scores = self.evaluate_modes((mode,), query, gallery, metric=metric)
        return None if scores is None else scores[mode]

    def evaluate_modes(
        self,
        modes: Sequence[str],
        query: list[Any] | None = None,
        gallery: list[Any] | None = None,
        *,
        metric: str = "cosine",
    ) -> dict[str, Any] | None:
        """:meth:`evaluate` for several retrieval ``modes`` from one feature extraction
        (:func:`semparts_reid.inference.evaluation.evaluate_model_modes`).

        Returns:
            ``{mode: ReIDMetrics}`` on rank 0; None on other ranks.
        """
        from ..inference.evaluation import evaluate_model_modes

        if query is None or gallery is None:
            if self.target is None:
                raise ValueError("evaluate(): give query and gallery, or build with a target")
            query = self.target.query if query is None else query
            gallery = self.target.gallery if gallery is None else gallery
        result = None
        if is_main_process():
            was = self.model.training
            try:
                result = evaluate_model_modes(self._extractor(), query, gallery,
                                              modes=tuple(modes), metric=metric)
            finally:
                self.model.train(was)
        barrier()
        return result

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The full training state (see :mod:`~semparts_reid.engine.training_state`)."""
        return training_state(
            self.model, optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
            objective=self.objective, config=self.config, world=self.world, stage=self.stage,
            epoch=self.epoch, global_step=self.global_step, history=self.history,
        )

    def save(self, path: str | os.PathLike[str], *, final: bool = False) -> Path | None:
        """Write a checkpoint atomically (rank 0 only; other ranks return None).

        ``final=False``: the full training state (:meth:`state_dict`), what
        :meth:`resume` continues from exactly. ``final=True``: weights, architecture,
        data config and config only (:func:`~.training_state.final_state`), a third of
        the size; :meth:`resume` from it restarts the next stage from those weights.
        """
        if not is_main_process():
            return None
        payload = (
            final_state(self.model, config=self.config, stage=self.stage, epoch=self.epoch,
                        global_step=self.global_step, history=self.history)
            if final else self.state_dict()
        )
        out = save_checkpoint(payload, path)
        logger.info("checkpoint: %s (%s epoch %d%s)", out, self.stage, self.epoch,
                    ", final" if final else "")
        return out

    def resume(self, path: str | os.PathLike[str]) -> None:
        """Restore a checkpoint from :meth:`save`: model, optimiser, memory, RNG, epoch.

        The next :meth:`fit` / :meth:`train_source` / :meth:`adapt` call continues with
        the epoch after the saved one and gives the same losses as the uninterrupted run.
        """
        ckpt = load_training_checkpoint(path, map_location="cpu")
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:  # missing/unexpected keys or shapes: another model's run
            raise InputError(f"{path}: the checkpoint does not fit this model ({exc})") from exc
        stage = ckpt.get("stage", "source")
        if stage not in STAGES:
            raise InputError(f"{path}: stage {stage!r}, expected one of {STAGES}")
        if ckpt.get("optimizer") is not None:
            self._start_stage(stage)
            assert self.optimizer is not None and self.scheduler is not None
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if ckpt.get("scheduler") is not None:
                self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        restore_objective(self.objective, ckpt, path)
        self.stage, self.epoch = stage, int(ckpt.get("epoch", 0))
        self.global_step = int(ckpt.get("global_step", 0))
        self.history = list(ckpt.get("history", []))
        if "rng" in ckpt:
            restore_rng_state(ckpt["rng"])
            if self.rank:
                seed_everything(self.config.seed + self.rank + 7919 * self.epoch)
        logger.info("resumed %s: %s epoch %d", path, self.stage, self.epoch)

    def load_weights(
        self,
        path_or_state: str | os.PathLike[str] | dict[str, Any],
        *,
        strict: bool | None = None,
        format: str = "auto",
    ) -> None:
        """Load only model weights (a checkpoint path or dict, or a plain state dict).

        Keys are matched by :func:`semparts_reid.hub.load_matching_weights`: tensors whose
        name or shape does not match (e.g. the identity classifier of another source) are
        skipped, and every missing, unexpected or mismatched key is logged at WARNING with
        counts and the first names.

        Args:
            path_or_state: a checkpoint file written by :meth:`save`, a torchreid or
                fast-reid checkpoint, or a checkpoint / state dict.
            strict: ``None`` (default): raise when the weights fill less than half of the
                model's weight kernels (a checkpoint of another architecture). ``True``:
                every key must match. ``False``: load whatever matches, however little.
            format: the key layout: ``"auto"`` (detected), ``"semparts"``, ``"torchreid"``
                or ``"fastreid"`` (see :func:`semparts_reid.hub.load_pretrained`).

        Raises:
            WeightsMismatchError: ``strict=None`` and the weights are for another
                architecture (the message names the file and the fraction filled).
            RuntimeError: ``strict=True`` and some key did not match.
        """
        from ..hub import load_matching_weights, load_weights_file

        if isinstance(path_or_state, dict):
            weights, label = path_or_state, "<state dict>"
        else:  # ours, or another library's (a plain state dict, a 'state_dict' entry)
            weights, label = load_weights_file(path_or_state), os.fspath(path_or_state)
            if weights.get("format", CHECKPOINT_FORMAT) != CHECKPOINT_FORMAT:
                raise InputError(f"{label}: checkpoint format {weights['format']!r}, "
                                 f"expected {CHECKPOINT_FORMAT!r}")
        load_matching_weights(self.model, weights, source=label, strict=strict, format=format)

    # ------------------------------------------------------------------ logging
    def close(self) -> None:
        """Close the loggers (flush event files) and stop the loader workers. :meth:`fit`
        calls it at its end and a stage calls it when it stops on an error; a trainer
        used again logs again (the built-in loggers reopen) and starts new workers. A
        logger whose ``close()`` fails is logged and skipped, so one cannot hide
        another's close or the error that stopped training."""
        self.batches.close()
        for sink in self.loggers:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 - reported, and the others still close
                logger.exception("closing logger %r failed", sink)

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if not is_main_process():
            return
        for sink in self.loggers:
            sink.log(record)


def _pool_masks(batch: dict[str, Any] | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(pool_parts, pool_known)`` of a batch whose items carry a parser's maps as
    pooling masks (``pool_with_parser_maps``), else None."""
    if batch is None or "pool_parts" not in batch:
        return None
    return batch["pool_parts"], batch["pool_known"]
