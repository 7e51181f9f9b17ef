"""``TrainConfig``: every setting of source pre-training and domain adaptation.

The defaults are the paper's (ResNet-50, 256×128 input, Adam with lr 3e-4 and weight
decay 5e-4, 80 epochs, random crop + flip + random erasing) and ECN's for the exemplar
memory (β = 0.05, k = 6, momentum 0.01 × epoch, neighbourhood invariance from epoch 5,
target-loss weight λ = 0.3). Every field carries a help string in its metadata; the
command line turns each field into a ``--field-name`` flag.

Loss mixing: the paper writes the joint objective as ``L = L_s + L_t``; ECN's released
code trains with ``(1-λ) L_s + λ L_t``, ``λ = 0.3``. ``loss_mix="convex"`` (default)
follows ECN's code, ``loss_mix="sum"`` gives ``L_s + λ L_t`` (``λ = 1`` is the paper's
equation). See ``docs/training.md`` for the measurement behind the default.

Example:
    >>> cfg = TrainConfig(arch="semparts_resnet18", input_size=(128, 64), epochs=2)
    >>> cfg.to_dict()["epochs"]
    2
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InputError

__all__ = ["TrainConfig"]

SEED_LIMIT = 2**64  # torch generators take seeds in [0, 2**64)


def _f(default: Any, help: str) -> Any:  # noqa: A002 - 'help' reads best here
    return field(default=default, metadata={"help": help})


PartLabelSource = Literal["auto", "gt", "pseudo", "self", "band", "none"]


@dataclass
class TrainConfig:
    """Settings of :class:`~semparts_reid.engine.trainer.DomainAdaptTrainer`.

    All fields are plain values (str / int / float / bool / tuples), so a config
    round-trips through JSON and through checkpoints (:meth:`to_dict` /
    :meth:`from_dict`). :meth:`validate` (called by ``__post_init__``) raises
    ``ValueError`` naming the first bad field.
    """

    # model (used by the command line to build the model; the trainer records them)
    arch: str = _f("semparts_resnet50", "build_model name of the network")
    pretrained: str | None = _f(
        "imagenet", "initial weights: 'imagenet', a registry name, a path, a URL, or none"
    )
    input_size: tuple[int, int] = _f((256, 128), "input height and width in pixels")
    part_head: Literal["decoder", "linear"] = _f(
        "decoder",
        "part classifier of a semparts_* model: 'decoder' (layer1 + layer2 + last map, "
        "stride-4 part maps) or 'linear' (the paper's 1x1 conv on the last map)",
    )

    # schedule
    source_epochs: int = _f(
        0,
        "epochs of source-only pre-training run by fit() before adaptation "
        "(0: adapt from the initial weights, as ECN and the paper do)",
    )
    epochs: int = _f(80, "epochs of joint adaptation (source + target)")
    max_steps_per_epoch: int | None = _f(
        None, "cap on optimiser steps per epoch (default: one pass over the source train split)"
    )
    batch_size: int = _f(128, "source images per step (global batch under torchrun)")
    target_batch_size: int = _f(128, "target images per step (global batch under torchrun)")
    num_instances: int = _f(
        0, "images per identity in a source batch (P x K sampler); 0: plain random sampling"
    )
    num_workers: int = _f(4, "data-loading worker processes (0: load in the main process)")
    cache_images: bool = _f(
        False,
        "keep decoded training images and part maps in memory after their first read "
        "(datasets that fit in memory; each loader worker holds its own copy)",
    )

    # optimiser
    optimizer: Literal["adam", "sgd"] = _f("adam", "optimiser")
    lr: float = _f(3e-4, "learning rate")
    weight_decay: float = _f(5e-4, "weight decay")
    backbone_lr_mult: float = _f(1.0, "learning-rate multiplier of the backbone (ECN: 0.1)")
    lr_step: int = _f(40, "decay the learning rate every this many epochs (0: never)")
    lr_gamma: float = _f(0.1, "learning-rate decay factor at each step")
    warmup_epochs: int = _f(0, "linear learning-rate warm-up epochs")

    # augmentation
    random_crop: bool = _f(True, "random crop after padding")
    flip_prob: float = _f(0.5, "horizontal flip probability")
    color_jitter: float = _f(
        0.0,
        "strength s of the training colour jitter (brightness, contrast and saturation "
        "factors in [1-s, 1+s]); 0: off",
    )
    random_erasing: float = _f(0.5, "random erasing probability")
    camstyle: bool = _f(
        True, "camera invariance: add the loss on camera-style target images (where available)"
    )

    # losses
    target_weight: float = _f(0.3, "lambda: weight of the target (memory) loss")
    loss_mix: Literal["convex", "sum"] = _f(
        "convex",
        "'convex': (1-lambda) L_s + lambda L_t (ECN's code); "
        "'sum': L_s + lambda L_t (the paper's L_s + L_t with lambda=1)",
    )
    use_parts: bool = _f(
        True, "identity and memory losses on head/upper/lower features (False: global only)"
    )
    head_reduction: Literal["sum", "mean"] = _f(
        "sum",
        "combine the per-head (global, head, upper, lower) identity and memory losses by "
        "'sum' or 'mean' (mean keeps the loss scale of a global-only model)",
    )
    part_head_weight: float = _f(
        1.0,
        "weight of each part head's (head, upper, lower) identity and memory loss next to "
        "the global head's weight 1 (1: the paper's sum; 1/3: the three parts together "
        "weigh as much as the global feature)",
    )
    label_smoothing: float = _f(0.0, "label smoothing of the source identity loss")
    triplet_weight: float = _f(
        0.0,
        "weight of the batch-hard triplet loss on the source batch, added to the total "
        "(0: off; needs num_instances >= 2 for P x K batches)",
    )
    triplet_margin: float | None = field(
        default=0.3,
        metadata={
            "help": "margin of the triplet loss: relu(d_ap - d_an + margin); 'soft' (None in "
            "Python): softplus(d_ap - d_an)",
            "none_word": "soft",
        },
    )
    triplet_parts: bool = _f(
        False, "triplet loss on the head/upper/lower features too (with use_parts)"
    )
    part_loss_weight: float = _f(1.0, "weight of the pixel-wise part-classification loss")
    part_labels: PartLabelSource = _f(
        "auto",
        "part labels for the part-map loss: 'auto' (label maps where an image has them, "
        "the unlabeled_part_labels source for the others), 'gt' (label maps on disk only: "
        "ground truth or a parser's), 'pseudo' (self-supervised clustering of the current "
        "feature maps, at every step), 'self' (the part classifier's own confident "
        "predictions), 'band' (fixed horizontal bands), 'none' (no part-map loss)",
    )
    unlabeled_part_labels: Literal["self", "pseudo", "none"] = _f(
        "self",
        "with part_labels='auto', the labels of images that have no part map (the target "
        "domain by default): 'self' (the classifier's own predictions where its confidence "
        ">= self_label_threshold), 'pseudo' (self-supervised clustering of the feature maps) "
        "or 'none' (no part loss on them); see docs/semantic_parts.md for the measurements",
    )
    self_label_threshold: float = _f(
        0.9, "confidence a pixel needs to keep its self-training part label (else ignored)"
    )
    self_label_class_portion: float = _f(
        0.0,
        "class-balanced self-training (CBST): each part keeps at least this portion of the "
        "batch's pixels predicted as it, its most confident ones, even below "
        "self_label_threshold (0: one global threshold)",
    )
    target_part_maps: bool = _f(
        False,
        "read the target domain's part maps from disk (a human parser's output, or the "
        "synthetic ground truth); off by default: real target data has none",
    )
    part_head_lr_mult: float = _f(
        10.0,
        "learning-rate multiplier of the part classifier (a freshly initialised head: at "
        "the base rate the decoder needs many epochs to find the head, a small part)",
    )
    part_dice_weight: float = _f(
        1.0, "weight of the dice term added to the part-map cross-entropy (0: off)"
    )
    part_class_balance: bool = _f(
        False, "weight the part-map cross-entropy by inverse class frequency in the batch"
    )
    part_table: str = _f(
        "parts4",
        "grouping table of the label maps on disk: 'parts4' (already background/head/"
        "upper/lower), 'lip', 'cihp', 'atr', 'pascal', 'parts8' or 'densepose24' "
        "(a human parser's classes)",
    )
    target_part_loss: bool = _f(
        True, "apply the part-map loss to target images too (part labels carry no identity)"
    )

    # target objective; exemplar memory (ECN)
    target_objective: Literal["ecn", "cluster"] = _f(
        "ecn", "how the unlabeled target is learned: 'ecn' = exemplar memory; 'cluster' = "
        "DBSCAN pseudo-identities each epoch + cluster memory, with semantic-part label "
        "refinement (a user can pass any objective object to DomainAdaptTrainer instead)"
    )
    memory_temperature: float = _f(0.05, "beta: temperature of the memory logits")
    memory_knn: int = _f(6, "k: neighbours for neighbourhood invariance")
    memory_momentum: float = _f(0.01, "memory momentum alpha = this x epoch")
    memory_dtype: Literal["float32", "bfloat16"] = _f(
        "float32", "storage dtype of the memory slots (bfloat16 halves its size)"
    )
    neighbour_start_epoch: int = _f(
        5, "first (0-based) adaptation epoch with neighbourhood invariance (ECN: 5)"
    )

    # target objective 'cluster' (cluster-contrast's defaults; PPLR's for the refinement)
    cluster_eps: float = _f(0.6, "DBSCAN radius on the k-reciprocal Jaccard distance, in (0, 1)")
    cluster_min_samples: int = _f(
        4, "DBSCAN: images within eps (itself included) that make an image a core point"
    )
    cluster_k1: int = _f(30, "k1 of the k-reciprocal encoding behind the Jaccard distance")
    cluster_k2: int = _f(6, "k2 (query expansion) of the k-reciprocal encoding")
    cluster_images_per_identity: float | None = _f(
        None,
        "expected target images per identity (e.g. the source's; never measured on the "
        "evaluation identities): derive cluster eps / min_samples / k1 / k2 from it instead "
        "of the four settings above (none: use them)",
    )
    cluster_temperature: float = _f(0.05, "tau: temperature of the cluster-memory logits")
    cluster_momentum: float = _f(0.1, "weight of the old centroid in a cluster-memory update")
    cluster_hard_update: bool = _f(
        False, "update a cluster with its least similar batch member, not the batch mean"
    )
    cluster_refine_global: bool = _f(
        True, "refine the global target with the part predictions, weighted by each visible "
        "part's k-NN agreement with the global feature (with use_parts)",
    )
    cluster_part_smoothing: bool = _f(
        False, "agreement-aware label smoothing of the part targets (weight 1 - agreement); "
        "off by default: on the synthetic domains it cost accuracy in every direction "
        "(docs/semantic_parts.md)",
    )
    cluster_beta: float = _f(0.5, "weight of the cluster label in the refined global target")
    cluster_agreement_k: int = _f(20, "neighbours of the part / global k-NN agreement score")

    # evaluation
    eval_every: int = _f(
        10, "evaluate on the target query/gallery every N epochs and after the last (0: never)"
    )
    eval_mode: Literal["global", "concat", "parts"] = _f(
        "global", "retrieval feature for evaluation"
    )
    eval_batch_size: int = _f(128, "batch size of feature extraction")

    # run
    seed: int = _f(0, "random seed in [0, 2**64): initial weights, batch order, augmentation")
    device: str = _f("auto", "'auto', 'cpu' or 'cuda:N'")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = _f(
        "auto", "autocast policy: 'auto' = bf16/fp16 where the hardware runs it natively"
    )
    channels_last: bool | None = _f(None, "channels_last memory format (default: auto)")
    output_dir: str = _f("runs/semparts", "folder for checkpoints and the metrics log")
    checkpoint_every: int = _f(1, "save a checkpoint every N epochs (0: only at the end)")
    keep_resume: bool = _f(
        False,
        "keep output_dir/last.pt (optimiser, memory, RNG) once a stage completes; by default "
        "it is dropped then and only the weights-only <stage>_final.pt stays",
    )
    progress: bool = _f(True, "tqdm progress bar per epoch")
    check_finite_every: int = _f(
        50,
        "read the loss terms back and stop on NaN/inf every N steps and at each epoch's "
        "end (each check is one GPU synchronisation; a NaN in between is still caught)",
    )
    tensorboard: bool = _f(
        False,
        "also log the metrics to TensorBoard in output_dir/tensorboard (the tensorboard extra)",
    )

    def __post_init__(self) -> None:
        if isinstance(self.input_size, list):
            self.input_size = tuple(self.input_size)  # type: ignore[assignment]
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`~semparts_reid.errors.InputError` (a ``ValueError``) naming the
        first field whose value is out of range."""
        if (
            not isinstance(self.input_size, tuple)
            or len(self.input_size) != 2
            or not all(isinstance(v, int) and v >= 16 for v in self.input_size)
        ):
            raise InputError(
                f"input_size={self.input_size!r}: expected (height, width), each >= 16"
            )
        non_negative = (
            "source_epochs", "epochs", "num_workers", "num_instances", "lr_step",
            "warmup_epochs", "memory_knn", "neighbour_start_epoch", "eval_every",
            "checkpoint_every",
        )
        for name in non_negative:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name}={value!r}: expected an int >= 0")
        for name in ("batch_size", "target_batch_size", "eval_batch_size", "check_finite_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}={value!r}: expected an int >= 1")
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or not 0 <= self.seed < SEED_LIMIT
        ):
            raise InputError(f"seed={self.seed!r}: expected an int in [0, 2**64)")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise InputError(
                f"max_steps_per_epoch={self.max_steps_per_epoch!r}: expected None or >= 1"
            )
        if self.num_instances and self.batch_size % self.num_instances:
            raise InputError(
                f"batch_size={self.batch_size} is not a multiple of "
                f"num_instances={self.num_instances}"
            )
        positive = ("lr", "memory_temperature")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"{name}={value!r}: expected a finite value > 0")
        for name in ("weight_decay", "backbone_lr_mult", "part_loss_weight", "target_weight",
                     "memory_momentum", "triplet_weight", "part_dice_weight",
                     "part_head_lr_mult", "part_head_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InputError(f"{name}={value!r}: expected a finite value >= 0")
        for name in ("flip_prob", "random_erasing", "lr_gamma", "self_label_threshold",
                     "self_label_class_portion"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name}={value!r}: expected a value in [0, 1]")
        if self.triplet_weight > 0 and self.num_instances < 2:
            raise InputError(
                f"triplet_weight={self.triplet_weight!r} needs P x K source batches: set "
                f"num_instances >= 2 (got {self.num_instances})"
            )
        if self.triplet_margin is not None and not (
            isinstance(self.triplet_margin, (int, float))
            and not isinstance(self.triplet_margin, bool)
            and math.isfinite(self.triplet_margin)
            and self.triplet_margin > 0
        ):
            raise InputError(
                f"triplet_margin={self.triplet_margin!r}: expected a value > 0, or None "
                "('soft' on the command line) for the soft margin"
            )
        if not 0.0 <= self.color_jitter < 1.0:
            raise InputError(f"color_jitter={self.color_jitter!r}: expected [0, 1)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise InputError(f"label_smoothing={self.label_smoothing!r}: expected [0, 1)")
        if self.loss_mix == "convex" and self.target_weight > 1:
            raise InputError(
                f"target_weight={self.target_weight!r} with loss_mix='convex': expected <= 1"
            )
        # both name lists are torch-free: validating a config needs no torch
        from ..models.names import MODEL_NAMES

        if self.arch not in MODEL_NAMES:
            raise InputError(f"arch={self.arch!r}: expected one of {list(MODEL_NAMES)}")
        from ..data.part_tables import GROUPING_TABLES

        if self.part_table not in GROUPING_TABLES:
            raise InputError(
                f"part_table={self.part_table!r}: expected one of {sorted(GROUPING_TABLES)}"
            )
        choices: dict[str, tuple[str, ...]] = {
            "optimizer": ("adam", "sgd"),
            "loss_mix": ("convex", "sum"),
            "head_reduction": ("sum", "mean"),
            "part_labels": ("auto", "gt", "pseudo", "self", "band", "none"),
            "unlabeled_part_labels": ("self", "pseudo", "none"),
            "part_head": ("decoder", "linear"),
            "memory_dtype": ("float32", "bfloat16"),
            "target_objective": ("ecn", "cluster"),
            "eval_mode": ("global", "concat", "parts"),
            "precision": ("auto", "fp32", "bf16", "fp16"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"{name}={getattr(self, name)!r}: expected one of {allowed}")
        self._validate_cluster()

    def _validate_cluster(self) -> None:
        """The ``cluster_*`` settings (checked whatever the objective, so a config that
        switches to ``"cluster"`` later is already valid)."""
        for name in ("cluster_min_samples", "cluster_k1", "cluster_k2", "cluster_agreement_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name}={value!r}: expected an int >= 1")
        if not (isinstance(self.cluster_eps, (int, float)) and 0.0 < self.cluster_eps < 1.0):
            raise InputError(
                f"cluster_eps={self.cluster_eps!r}: expected 0 < eps < 1 (pairs without "
                "overlapping k-reciprocal encodings are at Jaccard distance 1)"
            )
        t = self.cluster_temperature
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
            raise InputError(f"cluster_temperature={t!r}: expected a finite value > 0")
        for name in ("cluster_momentum", "cluster_beta"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise InputError(f"{name}={value!r}: expected a value in [0, 1]")
        m = self.cluster_images_per_identity
        if m is not None and not (
            isinstance(m, (int, float)) and not isinstance(m, bool) and math.isfinite(m)
            and m >= 1
        ):
            raise InputError(f"cluster_images_per_identity={m!r}: expected None or >= 1")

    # ------------------------------------------------------------------ helpers
    def loss_weights(self) -> tuple[float, float]:
        """``(w_source, w_target)`` of the joint objective per :attr:`loss_mix`."""
        lam = float(self.target_weight)
        return (1.0 - lam, lam) if self.loss_mix == "convex" else (1.0, lam)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["input_size"] = list(self.input_size)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from :meth:`to_dict` output; unknown keys raise ``InputError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown TrainConfig field(s) {unknown}; known: {sorted(names)}")
        kw = dict(data)
        if "input_size" in kw:
            kw["input_size"] = tuple(kw["input_size"])
        return cls(**kw)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)
