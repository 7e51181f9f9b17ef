"""``TrainConfig``: every setting of source pre-training and domain adaptation, in groups.

A config is a few top-level choices (the network, its input size, the seed and the
target objective) and one nested dataclass per concern:

========== ============================================================================
``optim``    :class:`OptimConfig`: schedule, batches, optimiser and the loss weights
``augment``  :class:`AugmentConfig`: training augmentation and camera invariance
``parts``    :class:`PartsConfig`: the part heads, their losses and the part-map loss
``ecn``      :class:`EcnConfig`: ECN's exemplar memory (``target_objective="ecn"``)
``cluster``  :class:`ClusterConfig`: clustering + cluster memory (``"cluster"``)
``video``    :class:`VideoConfig`: constraints from video (tracks); none yet
``runtime``  :class:`RuntimeConfig`: device, precision, loading, evaluation, output
========== ============================================================================

Every field keeps the flat name it always had (``cfg.optim.lr`` is the ``lr`` of
``--lr``), so a flat name says which group holds it (:func:`flat_fields`),
:meth:`TrainConfig.replace` takes flat names (``cfg.replace(lr=1e-3,
target_objective="cluster")``) and :meth:`TrainConfig.from_dict` reads the flat dicts
of checkpoints written before the groups existed. The command line turns every field
into a ``--field-name`` flag.

The defaults are the paper's (ResNet-50, 256×128 input, Adam with lr 3e-4 and weight
decay 5e-4, 80 epochs, random crop + flip + random erasing) and ECN's for the exemplar
memory (β = 0.05, k = 6, momentum 0.01 × epoch, neighbourhood invariance from epoch 5,
target-loss weight λ = 0.3): ``TrainConfig()`` is the ``paper`` recipe
(:mod:`~semparts_reid.engine.recipes`, ``TrainConfig.from_recipe``).

Loss mixing: the paper writes the joint objective as ``L = L_s + L_t``; ECN's released
code trains with ``(1-λ) L_s + λ L_t``, ``λ = 0.3``. ``loss_mix="convex"`` (default)
follows ECN's code, ``loss_mix="sum"`` gives ``L_s + λ L_t`` (``λ = 1`` is the paper's
equation). See ``docs/training.md`` for the measurement behind the default.

Each group checks itself (``validate()``, run on construction); every choice list is
the ``Literal`` annotation of its field (:func:`field_choices`).

Example:
    >>> cfg = TrainConfig(arch="semparts_resnet18", input_size=(128, 64)).replace(epochs=2)
    >>> cfg.optim.epochs, cfg.to_flat_dict()["epochs"]
    (2, 2)
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> TrainConfig.from_dict(cfg.to_flat_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..errors import InputError

__all__ = [
    "MODES",
    "OBJECTIVES",
    "AugmentConfig",
    "ClusterConfig",
    "EcnConfig",
    "OptimConfig",
    "PartsConfig",
    "RuntimeConfig",
    "TrainConfig",
    "VideoConfig",
    "field_choices",
    "flat_fields",
]

SEED_LIMIT = 2**64  # torch generators take seeds in [0, 2**64)

PartLabelSource = Literal["auto", "gt", "pseudo", "self", "band", "none", "parser"]
EvalMode = Literal["global", "concat", "parts"]
ObjectiveName = Literal["ecn", "cluster"]

#: retrieval features of the evaluation (``RuntimeConfig.eval_mode``), torch-free
MODES: tuple[str, ...] = typing.get_args(EvalMode)
#: the built-in target objectives (``TrainConfig.target_objective``), torch-free
OBJECTIVES: tuple[str, ...] = typing.get_args(ObjectiveName)


def _f(default: Any, help: str, **meta: Any) -> Any:  # noqa: A002 - 'help' reads best here
    return field(default=default, metadata={"help": help, **meta})


def field_choices(cls: type, name: str) -> tuple[Any, ...] | None:
    """The allowed values of field ``name`` of dataclass ``cls``: the arguments of its
    ``Literal`` annotation (also inside ``X | None``), or None for a free field."""
    tp = typing.get_type_hints(cls)[name]
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    for arg in typing.get_args(tp):  # Optional[Literal[...]]
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return None


# ---------------------------------------------------------------------- checks
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _ints_at_least(obj: Any, names: tuple[str, ...], low: int) -> None:
    for name in names:
        value = getattr(obj, name)
        if not _is_int(value) or value < low:
            raise InputError(f"{name}={value!r}: expected an int >= {low}")


def _reals(obj: Any, names: tuple[str, ...], *, positive: bool) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (_is_real(value) and (value > 0 if positive else value >= 0)):
            bound = ">" if positive else ">="
            raise InputError(f"{name}={value!r}: expected a finite value {bound} 0")


def _units(obj: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise InputError(f"{name}={value!r}: expected a value in [0, 1]")


def _half_open_unit(obj: Any, name: str) -> None:
    value = getattr(obj, name)
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise InputError(f"{name}={value!r}: expected [0, 1)")


def _check_choices(obj: Any) -> None:
    for f in dataclasses.fields(obj):
        allowed = field_choices(type(obj), f.name)
        value = getattr(obj, f.name)
        if allowed is not None and value not in allowed:
            raise InputError(f"{f.name}={value!r}: expected one of {allowed}")


class _Group:
    """What every group of :class:`TrainConfig` does: validate itself on construction."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # set by @dataclass

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~semparts_reid.errors.InputError` naming the first bad field."""
        _check_choices(self)
        self._check()

    def _check(self) -> None:
        """The group's own range checks (beyond its ``Literal`` choices)."""


@dataclass
class OptimConfig(_Group):
    """Optimisation: the schedule, the batches, the optimiser and the loss weights."""

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
    optimizer: Literal["adam", "sgd"] = _f("adam", "optimiser")
    lr: float = _f(3e-4, "learning rate")
    weight_decay: float = _f(5e-4, "weight decay")
    backbone_lr_mult: float = _f(1.0, "learning-rate multiplier of the backbone (ECN: 0.1)")
    lr_step: int = _f(40, "decay the learning rate every this many epochs (0: never)")
    lr_gamma: float = _f(0.1, "learning-rate decay factor at each step")
    warmup_epochs: int = _f(0, "linear learning-rate warm-up epochs")
    target_weight: float = _f(0.3, "lambda: weight of the target (memory) loss")
    loss_mix: Literal["convex", "sum"] = _f(
        "convex",
        "'convex': (1-lambda) L_s + lambda L_t (ECN's code); "
        "'sum': L_s + lambda L_t (the paper's L_s + L_t with lambda=1)",
    )
    label_smoothing: float = _f(0.0, "label smoothing of the source identity loss")
    triplet_weight: float = _f(
        0.0,
        "weight of the batch-hard triplet loss on the source batch, added to the total "
        "(0: off; needs num_instances >= 2 for P x K batches)",
    )
    triplet_margin: float | None = _f(
        0.3,
        "margin of the triplet loss: relu(d_ap - d_an + margin); 'soft' (None in "
        "Python): softplus(d_ap - d_an)",
        none_word="soft",
    )

    def _check(self) -> None:
        _ints_at_least(self, ("source_epochs", "epochs", "num_instances", "lr_step",
                              "warmup_epochs"), 0)
        _ints_at_least(self, ("batch_size", "target_batch_size"), 1)
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise InputError(
                f"max_steps_per_epoch={self.max_steps_per_epoch!r}: expected None or >= 1"
            )
        if self.num_instances and self.batch_size % self.num_instances:
            raise InputError(
                f"batch_size={self.batch_size} is not a multiple of "
                f"num_instances={self.num_instances}"
            )
        _reals(self, ("lr",), positive=True)
        _reals(self, ("weight_decay", "backbone_lr_mult", "target_weight", "triplet_weight"),
               positive=False)
        _units(self, ("lr_gamma",))
        _half_open_unit(self, "label_smoothing")
        if self.triplet_weight > 0 and self.num_instances < 2:
            raise InputError(
                f"triplet_weight={self.triplet_weight!r} needs P x K source batches: set "
                f"num_instances >= 2 (got {self.num_instances})"
            )
        m = self.triplet_margin
        if m is not None and not (_is_real(m) and not isinstance(m, bool) and m > 0):
            raise InputError(
                f"triplet_margin={m!r}: expected a value > 0, or None "
                "('soft' on the command line) for the soft margin"
            )
        if self.loss_mix == "convex" and self.target_weight > 1:
            raise InputError(
                f"target_weight={self.target_weight!r} with loss_mix='convex': expected <= 1"
            )

    def loss_weights(self) -> tuple[float, float]:
        """``(w_source, w_target)`` of the joint objective per :attr:`loss_mix`."""
        lam = float(self.target_weight)
        return (1.0 - lam, lam) if self.loss_mix == "convex" else (1.0, lam)


@dataclass
class AugmentConfig(_Group):
    """Augmentation of the training images, and ECN's camera-style inputs."""

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

    def _check(self) -> None:
        _units(self, ("flip_prob", "random_erasing"))
        _half_open_unit(self, "color_jitter")


@dataclass
class PartsConfig(_Group):
    """Semantic parts: the part classifier, the losses of the head / upper / lower
    features, and the pixel-wise part-map loss with its label source."""

    part_head: Literal["decoder", "linear"] = _f(
        "decoder",
        "part classifier of a semparts_* model: 'decoder' (layer1 + layer2 + last map, "
        "stride-4 part maps) or 'linear' (the paper's 1x1 conv on the last map)",
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
        "predictions), 'band' (fixed horizontal bands), 'none' (no part-map loss), 'parser' "
        "(as 'auto', but the images of parser_domains take their maps from the parser_maps "
        "folder(s) instead of beside the image; a crop without a parser map falls back to "
        "unlabeled_part_labels, and their count is logged)",
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
    parser_maps: str | None = _f(
        None,
        "folder written by 'semparts-reid parse' (several: comma-separated, e.g. one per "
        "domain): a human parser's part maps, looked up by crop path; read by "
        "part_labels='parser' and pool_with_parser_maps for the images of parser_domains",
    )
    parser_domains: Literal["source", "target", "both"] = _f(
        "target", "which domain's training images use the parser_maps: 'source', 'target' "
        "or 'both'",
    )
    pool_with_parser_maps: bool = _f(
        False,
        "pool the part features with the parser's maps instead of the predicted part maps: "
        "in training for the images of parser_domains, and at evaluation on the target "
        "(crop by crop: one without a parser map pools with its predicted maps)",
    )

    def uses_parser(self, domain: str) -> bool:
        """Whether ``domain`` (``"source"`` / ``"target"``) reads the parser maps."""
        uses = self.part_labels == "parser" or self.pool_with_parser_maps
        return uses and self.parser_domains in (domain, "both")

    def _check(self) -> None:
        _reals(self, ("part_loss_weight", "part_dice_weight", "part_head_lr_mult",
                      "part_head_weight"), positive=False)
        _units(self, ("self_label_threshold", "self_label_class_portion"))
        if self.parser_maps is not None and not isinstance(self.parser_maps, str):
            raise InputError(f"parser_maps={self.parser_maps!r}: expected a folder path or None")
        # part_labels='parser' / pool_with_parser_maps without parser_maps is refused by
        # the trainer (EpochBatches), so each choice of part_labels is valid on its own
        from ..data.part_tables import GROUPING_TABLES  # torch-free

        if self.part_table not in GROUPING_TABLES:
            raise InputError(
                f"part_table={self.part_table!r}: expected one of {sorted(GROUPING_TABLES)}"
            )


@dataclass
class EcnConfig(_Group):
    """ECN's exemplar memory (``target_objective="ecn"``): exemplar, camera and
    neighbourhood invariance."""

    memory_temperature: float = _f(0.05, "beta: temperature of the memory logits")
    memory_knn: int = _f(6, "k: neighbours for neighbourhood invariance")
    memory_momentum: float = _f(0.01, "memory momentum alpha = this x epoch")
    memory_dtype: Literal["float32", "bfloat16"] = _f(
        "float32", "storage dtype of the memory slots (bfloat16 halves its size)"
    )
    neighbour_start_epoch: int = _f(
        5, "first (0-based) adaptation epoch with neighbourhood invariance (ECN: 5)"
    )

    def _check(self) -> None:
        _ints_at_least(self, ("memory_knn", "neighbour_start_epoch"), 0)
        _reals(self, ("memory_temperature",), positive=True)
        _reals(self, ("memory_momentum",), positive=False)


@dataclass
class ClusterConfig(_Group):
    """``target_objective="cluster"``: DBSCAN pseudo-identities on the k-reciprocal
    Jaccard distance, a cluster memory, and semantic-part label refinement
    (cluster-contrast's defaults; PPLR's for the refinement). Checked whatever the
    objective, so a config that switches to ``"cluster"`` later is already valid."""

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

    def _check(self) -> None:
        _ints_at_least(self, ("cluster_min_samples", "cluster_k1", "cluster_k2",
                              "cluster_agreement_k"), 1)
        if not (isinstance(self.cluster_eps, (int, float)) and 0.0 < self.cluster_eps < 1.0):
            raise InputError(
                f"cluster_eps={self.cluster_eps!r}: expected 0 < eps < 1 (pairs without "
                "overlapping k-reciprocal encodings are at Jaccard distance 1)"
            )
        _reals(self, ("cluster_temperature",), positive=True)
        _units(self, ("cluster_momentum", "cluster_beta"))
        m = self.cluster_images_per_identity
        if m is not None and not (_is_real(m) and not isinstance(m, bool) and m >= 1):
            raise InputError(f"cluster_images_per_identity={m!r}: expected None or >= 1")


@dataclass
class VideoConfig(_Group):
    """Constraints that video gives the target: the crops of one tracklet show one person
    (must-links), two people in one frame are two (cannot-links). They need a target
    that knows each crop's frame and tracklet, such as a ``mot:`` dataset
    (:class:`~semparts_reid.data.MOTDataset`); no identity label is used."""

    video_constraints: bool = _f(
        False,
        "use a video target's tracklets as must-links and its same-frame crops as "
        "cannot-links: in the cluster objective's pseudo-labels and in ECN's neighbourhood",
    )
    video_tracker: Literal["iou", "none"] = _f(
        "iou",
        "tracklets of crops the target gives none (detections, ground-truth boxes without "
        "ids): 'iou' links them with the appearance-free IoU tracker, 'none' leaves them "
        "unlinked (cannot-links only)",
    )
    tracklet_weight: float | None = _f(
        None,
        "ECN: neighbourhood weight of each tracklet mate (default: 1 / memory_knn, as a "
        "nearest neighbour's)",
    )

    def _check(self) -> None:
        w = self.tracklet_weight
        if w is not None and not (_is_real(w) and not isinstance(w, bool) and 0 <= w <= 1):
            raise InputError(f"tracklet_weight={w!r}: expected None or a value in [0, 1]")


@dataclass
class RuntimeConfig(_Group):
    """Where and how a run executes: device, precision, data loading, evaluation,
    checkpoints, logging. None of it changes what the method learns (given a seed)."""

    device: str = _f("auto", "'auto', 'cpu' or 'cuda:N'")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = _f(
        "auto", "autocast policy: 'auto' = bf16/fp16 where the hardware runs it natively"
    )
    channels_last: bool | None = _f(None, "channels_last memory format (default: auto)")
    num_workers: int = _f(4, "data-loading worker processes (0: load in the main process)")
    cache_images: bool = _f(
        False,
        "keep decoded training images and part maps in memory after their first read "
        "(datasets that fit in memory; each loader worker holds its own copy)",
    )
    eval_every: int = _f(
        10, "evaluate on the target query/gallery every N epochs and after the last (0: never)"
    )
    eval_mode: EvalMode = _f("global", "retrieval feature for evaluation")
    eval_batch_size: int = _f(128, "batch size of feature extraction")
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

    def _check(self) -> None:
        _ints_at_least(self, ("num_workers", "eval_every", "checkpoint_every"), 0)
        _ints_at_least(self, ("eval_batch_size", "check_finite_every"), 1)


def _group(cls: type, help: str) -> Any:  # noqa: A002
    return field(default_factory=cls, metadata={"help": help, "group": True})


@dataclass
class TrainConfig:
    """Settings of :class:`~semparts_reid.engine.trainer.DomainAdaptTrainer`.

    Five top-level choices and seven groups (see the module docstring). All values are
    plain (str / int / float / bool / tuples), so a config round-trips through JSON and
    through checkpoints (:meth:`to_dict` / :meth:`from_dict`). :meth:`validate` (called
    by ``__post_init__``) raises ``InputError`` (a ``ValueError``) naming the first bad
    field. Build a variant with flat names: ``TrainConfig().replace(epochs=2, lr=1e-3)``
    or ``TrainConfig.from_recipe("parts-aux", epochs=2)``.
    """

    # the model (used by the command line to build it; the trainer records them)
    arch: str = _f("semparts_resnet50", "build_model name of the network")
    pretrained: str | None = _f(
        "imagenet", "initial weights: 'imagenet', a registry name, a path, a URL, or none"
    )
    input_size: tuple[int, int] = _f((256, 128), "input height and width in pixels")
    seed: int = _f(0, "random seed in [0, 2**64): initial weights, batch order, augmentation")
    target_objective: ObjectiveName = _f(
        "ecn", "how the unlabeled target is learned: 'ecn' = exemplar memory; 'cluster' = "
        "DBSCAN pseudo-identities each epoch + cluster memory, with semantic-part label "
        "refinement (a user can pass any objective object to DomainAdaptTrainer instead)"
    )
    optim: OptimConfig = _group(OptimConfig, "schedule, batches, optimiser, loss weights")
    augment: AugmentConfig = _group(AugmentConfig, "training augmentation")
    parts: PartsConfig = _group(PartsConfig, "semantic parts and the part-map loss")
    ecn: EcnConfig = _group(EcnConfig, "ECN's exemplar memory")
    cluster: ClusterConfig = _group(ClusterConfig, "clustering objective")
    video: VideoConfig = _group(VideoConfig, "video constraints")
    runtime: RuntimeConfig = _group(RuntimeConfig, "device, precision, loading, output")

    def __post_init__(self) -> None:
        if isinstance(self.input_size, list):
            self.input_size = tuple(self.input_size)  # type: ignore[assignment]
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`~semparts_reid.errors.InputError` (a ``ValueError``) naming the
        first field whose value is out of range: the top-level fields, then each group's
        own :meth:`validate`."""
        size = self.input_size
        if not (isinstance(size, tuple) and len(size) == 2
                and all(isinstance(v, int) and v >= 16 for v in size)):
            raise InputError(f"input_size={size!r}: expected (height, width), each >= 16")
        if not (_is_int(self.seed) and 0 <= self.seed < SEED_LIMIT):
            raise InputError(f"seed={self.seed!r}: expected an int in [0, 2**64)")
        from ..models.names import MODEL_NAMES  # torch-free

        if self.arch not in MODEL_NAMES:
            raise InputError(f"arch={self.arch!r}: expected one of {list(MODEL_NAMES)}")
        _check_choices_of(self, ("target_objective",))
        for name in _GROUPS:
            group = getattr(self, name)
            if not isinstance(group, _GROUPS[name]):
                raise InputError(f"{name}={group!r}: expected a {_GROUPS[name].__name__}")
            group.validate()

    # ------------------------------------------------------------------ helpers
    def loss_weights(self) -> tuple[float, float]:
        """``(w_source, w_target)`` of the joint objective (:meth:`OptimConfig.loss_weights`)."""
        return self.optim.loss_weights()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe nested dict: the top-level fields, and one dict per group."""
        out = dataclasses.asdict(self)
        out["input_size"] = list(self.input_size)
        return out

    def to_flat_dict(self) -> dict[str, Any]:
        """Every field under its flat name (the command line's, and the pre-group
        checkpoints' layout)."""
        flat = {k: v for k, v in self.to_dict().items() if k not in _GROUPS}
        for name in _GROUPS:
            flat.update(dataclasses.asdict(getattr(self, name)))
        return flat

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from :meth:`to_dict` output, or from a flat dict (checkpoints
        written before the groups; :meth:`to_flat_dict`), or a mix of both. Unknown
        keys raise ``InputError``."""
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if key in _GROUPS and isinstance(value, dict):
                known = _GROUP_FIELDS[key]
                unknown = sorted(set(value) - known)
                if unknown:
                    raise InputError(f"unknown {key} field(s) {unknown}; known: {sorted(known)}")
                flat.update(value)
            else:
                flat[key] = value
        return cls().replace(**flat)

    @classmethod
    def from_recipe(cls, name: str, **overrides: Any) -> TrainConfig:
        """The config of recipe ``name`` (:mod:`~semparts_reid.engine.recipes`) with
        ``overrides`` (flat names, as :meth:`replace`) on top."""
        from .recipes import get_recipe

        return cls().replace(**{**get_recipe(name).overrides(), **overrides})

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with ``changes`` applied. Keys are flat field names
        (``lr=1e-3``, routed to :attr:`optim`), top-level names, or group names given a
        whole group object (``optim=OptimConfig(...)``). An unknown name raises
        :class:`~semparts_reid.errors.InputError` naming it."""
        index = flat_fields()
        top: dict[str, Any] = {}
        grouped: dict[str, dict[str, Any]] = {}
        unknown = []
        for key, value in changes.items():
            where = index.get(key, key if key in _GROUPS else "?")
            if where == "?":
                unknown.append(key)
            elif where in ("", key):
                top[key] = value
            else:
                grouped.setdefault(where, {})[key] = value
        if unknown:
            raise InputError(f"unknown TrainConfig field(s) {sorted(unknown)}; known: "
                             f"{sorted(index)}")
        for name, kw in grouped.items():
            top[name] = dataclasses.replace(top.get(name, getattr(self, name)), **kw)
        return dataclasses.replace(self, **top)


_GROUPS: dict[str, type[_Group]] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(TrainConfig) if f.metadata.get("group")
}
_GROUP_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(f.name for f in dataclasses.fields(cls)) for name, cls in _GROUPS.items()
}


def _check_choices_of(obj: Any, names: tuple[str, ...]) -> None:
    for name in names:
        allowed = field_choices(type(obj), name)
        if allowed is not None and getattr(obj, name) not in allowed:
            raise InputError(f"{name}={getattr(obj, name)!r}: expected one of {allowed}")


def flat_fields() -> dict[str, str]:
    """``{flat field name: its group}`` for every setting of :class:`TrainConfig`
    (``""`` for the top-level ones), in declaration order.

    Example:
        >>> flat_fields()["lr"], flat_fields()["cluster_eps"], flat_fields()["seed"]
        ('optim', 'cluster', '')
    """
    out: dict[str, str] = {}
    for f in dataclasses.fields(TrainConfig):
        if f.name in _GROUPS:
            out.update((g.name, f.name) for g in dataclasses.fields(_GROUPS[f.name]))
        else:
            out[f.name] = ""
    return out
