"""SemPartsNet: a ResNet re-ID network with semantic part features.

Data flow for a batch of images ``(B, 3, H, W)``::

    backbone                 -> M      (B, C, h, w)          forward_features
                                (+ layer1, layer2 maps     forward_stages)
    part head                -> logits (B, K+1, h', w') -> softmax P (bg, head, upper, lower)
       "decoder" (default):  PartDecoder on layer1 + layer2 + M, h' x w' = H/4 x W/4;
                             P is area-pooled to h x w for the pooling below
       "linear" (paper):     SemanticPartClassifier (BN + 1x1 conv) on M, h' x w' = h x w
    GAP / GeM of M           -> global_raw (B, C)      -> BNNeck -> global_feat
    PartMaskPooling(M, P)    -> (B, K+1, C): background_feat | part_raw (B, K, C)
    part_raw                 -> one BNNeck per part    -> part_feats (B, K, C)
    [global_feat, part_feats] -> 1+K identity classifiers -> id_logits (training only)

Part features are the mask-weighted means ``sum(P_k * M) / sum(P_k)`` (the pooled
``P_k o M``). The background is pooled for inspection only and has no identity
classifier. ``parts=False`` gives the ECN-style global-only baseline (no part branch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..hub.constants import IMAGENET_MEAN, IMAGENET_STD  # re-exported: the one definition
from ..layers.heads import BNNeck, GeM, MultiBNNeck, MultiLinear, global_avg_pool
from ..layers.part_classifier import SemanticPartClassifier
from ..layers.part_clustering import pseudo_part_labels
from ..layers.part_decoder import PartDecoder
from ..layers.part_pooling import PartMaskPooling, labels_to_masks, resize_masks
from ..layers.parts import IGNORE_INDEX, NUM_BODY_PARTS, NUM_PART_CLASSES
from .backbones import ResNetBackbone

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ReIDOutput", "SemPartsNet", "default_data_config"]

_POOLINGS = ("avg", "gem")
_PART_HEADS = ("decoder", "linear")
#: backbone stages (0-based: layer1, layer2) the decoder reads besides the last map
_DECODER_SKIPS = (0, 1)


def default_data_config(
    input_size: tuple[int, int] = (256, 128),
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> dict[str, Any]:
    """The preprocessing a model expects: ``input_size (H, W)``, ``mean``, ``std``,
    ``interpolation``."""
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f"input_size must be (H, W) with positive sizes, got {input_size}")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std must hold 3 values (std > 0), got {mean}, {std}")
    return {
        "input_size": (int(input_size[0]), int(input_size[1])),
        "mean": tuple(float(v) for v in mean),
        "std": tuple(float(v) for v in std),
        "interpolation": "bilinear",
    }


def _area_pool(maps: Tensor, size: torch.Size) -> Tensor:
    """Average ``maps`` down to ``size`` (area pooling keeps the maps' mass; bilinear
    would sample points). An integer ratio uses ``avg_pool2d``, which ONNX exports."""
    (h, w), (mh, mw) = (int(v) for v in size), (int(v) for v in maps.shape[-2:])
    if mh % h == 0 and mw % w == 0:
        return F.avg_pool2d(maps, (mh // h, mw // w))
    return F.adaptive_avg_pool2d(maps, (h, w))


@dataclass
class ReIDOutput:
    """What :meth:`SemPartsNet.forward` returns (see ``docs/architecture.md``).

    Attributes:
        global_feat: ``(B, D)`` retrieval feature after the BNNeck.
        part_feats: ``(B, K, D)`` head/upper/lower features after their BNNecks
            (``K = 0`` for ``parts=False``); exactly zero where a part is invisible.
        visibility: ``(B, K)`` float32, 1.0 where the part is visible.
        part_logits: ``(B, K+1, h', w')`` part-classifier logits (channel 0 background),
            at stride 4 for the ``"decoder"`` part head and on the feature map's grid
            for ``"linear"``; None for ``parts=False``.
        id_logits: ``(B, 1+K, num_classes)`` identity logits of global, head, upper, lower
            (training mode with ``num_classes > 0``), else None.
        global_raw: ``(B, D)`` global feature before the BNNeck.
        part_raw: ``(B, K, D)`` part features before their BNNecks.
        background_feat: ``(B, D)`` pooled background feature (inspection only), or None.
    """

    global_feat: Tensor
    part_feats: Tensor
    visibility: Tensor
    part_logits: Tensor | None
    id_logits: Tensor | None
    global_raw: Tensor
    part_raw: Tensor
    background_feat: Tensor | None

    @property
    def num_parts(self) -> int:
        """``K``: 3 for the part model, 0 for the global-only baseline."""
        return int(self.part_feats.shape[1])


def _check_net_args(
    num_classes: int, input_size: tuple[int, int], pooling: str, part_head: str
) -> None:
    """Raise ``ValueError`` on a bad argument of :class:`SemPartsNet`."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes}")
    if len(input_size) != 2:
        raise ValueError(f"input_size must be (H, W), got {input_size}")
    if pooling not in _POOLINGS:
        raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")
    if part_head not in _PART_HEADS:
        raise ValueError(f"part_head must be one of {_PART_HEADS}, got {part_head!r}")


class SemPartsNet(nn.Module):
    """ResNet backbone + semantic part classifier + mask-pooled part features.

    Args:
        backbone: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        parts: build the part branch; ``False`` is the global-only (ECN) baseline.
        num_classes: source identities; ``> 0`` adds ``1 + K`` bias-free identity
            classifiers (global + each body part; never the background).
        pooling: global pooling, ``"avg"`` (GAP) or ``"gem"`` (learnable GeM).
        gem_p: initial GeM exponent.
        last_stride: stride of ``layer4`` (1 by default).
        frozen_stages: see :class:`ResNetBackbone` (``-1``: nothing frozen).
        visibility_threshold: mass threshold of the visibility rule of
            :class:`PartMaskPooling` (``None``: argmax rule only).
        hard_resize: how given hard label maps are resized to the feature map
            (``"area"`` or ``"nearest"``).
        detach_masks: stop the identity losses' gradient from reaching the part
            classifier through the masks (it then learns from the part loss only).
        part_head: ``"decoder"`` (default): a light :class:`PartDecoder` on ``layer1``,
            ``layer2`` and ``M`` predicts the part maps at stride 4, so they can follow
            each body even when ``M`` is a few cells wide; ``"linear"``: the paper's
            ``1x1`` classifier on ``M`` (:class:`SemanticPartClassifier`).
        decoder_width: channels of the decoder's fused map.
        input_size, mean, std: the preprocessing recorded in :attr:`data_config`.

    Attributes:
        arch: the :func:`build_model` name (``semparts_<backbone>`` or ``ecn_<backbone>``).
        build_kwargs: keyword arguments with which ``build_model(arch, **build_kwargs)``
            rebuilds this network.
        feat_dim: ``D``, the feature dimension (the backbone's channels).
        data_config: ``{"input_size", "mean", "std", "interpolation"}``.

    Example:
        >>> net = SemPartsNet("resnet18", num_classes=5).eval()
        >>> out = net(torch.randn(2, 3, 64, 32))
        >>> out.global_feat.shape, out.part_feats.shape, out.part_logits.shape
        (torch.Size([2, 512]), torch.Size([2, 3, 512]), torch.Size([2, 4, 16, 8]))
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        *,
        parts: bool = True,
        num_classes: int = 0,
        pooling: str = "avg",
        gem_p: float = 3.0,
        last_stride: int = 1,
        frozen_stages: int = -1,
        visibility_threshold: float | None = 0.05,
        hard_resize: str = "area",
        detach_masks: bool = False,
        part_head: str = "decoder",
        decoder_width: int = 64,
        input_size: tuple[int, int] = (256, 128),
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        _check_net_args(num_classes, input_size, pooling, part_head)
        self.data_config = default_data_config(
            (int(input_size[0]), int(input_size[1])), tuple(mean), tuple(std)
        )
        self.backbone = ResNetBackbone(
            backbone, last_stride=last_stride, frozen_stages=frozen_stages
        )
        self.arch = f"{'semparts' if parts else 'ecn'}_{backbone}"
        self.build_kwargs: dict[str, Any] = {
            "num_classes": int(num_classes),
            "pooling": pooling,
            "gem_p": float(gem_p),
            "last_stride": int(last_stride),
            "frozen_stages": int(frozen_stages),
            "visibility_threshold": visibility_threshold,
            "hard_resize": hard_resize,
            "detach_masks": bool(detach_masks),
            "part_head": part_head,
            "decoder_width": int(decoder_width),
            "input_size": self.data_config["input_size"],
            "mean": self.data_config["mean"],
            "std": self.data_config["std"],
        }
        self.parts = bool(parts)
        self.num_classes = int(num_classes)
        self.detach_masks = bool(detach_masks)
        self.feat_dim = self.backbone.out_channels
        self.num_parts = NUM_BODY_PARTS if parts else 0
        dim = self.feat_dim

        self.global_pool: nn.Module | None = GeM(gem_p) if pooling == "gem" else None
        self.global_neck = BNNeck(dim)
        self.part_head = part_head
        self.part_classifier: SemanticPartClassifier | PartDecoder | None = None
        self.part_pool: PartMaskPooling | None = None
        self.part_necks: MultiBNNeck | None = None
        if parts:
            self._build_part_branch(decoder_width, hard_resize, visibility_threshold)
        self.id_classifier: MultiLinear | None = (
            MultiLinear(1 + self.num_parts, dim, num_classes) if num_classes > 0 else None
        )

    def _build_part_branch(
        self, decoder_width: int, hard_resize: str, visibility_threshold: float | None
    ) -> None:
        """The part classifier (``self.part_head``), part pooling and part necks, built in
        this order (the order of their parameters and of their random initialisation)."""
        dim = self.feat_dim
        if self.part_head == "decoder":
            chans = [self.backbone.stage_channels[i] for i in _DECODER_SKIPS] + [dim]
            self.part_classifier = PartDecoder(chans, NUM_PART_CLASSES, decoder_width)
        else:
            self.part_classifier = SemanticPartClassifier(dim, NUM_PART_CLASSES)
        self.part_pool = PartMaskPooling(
            hard_resize=hard_resize, visibility_threshold=visibility_threshold
        )
        self.part_necks = MultiBNNeck(NUM_BODY_PARTS, dim)

    # ------------------------------------------------------------------ stages
    def forward_features(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` images -> ``(B, C, h, w)`` feature map ``M``."""
        return self.backbone(images)

    @property
    def needs_skips(self) -> bool:
        """Whether :meth:`forward_head` needs the early stages (the decoder part head)."""
        return self.part_classifier is not None and self.part_head == "decoder"

    def forward_stages(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(M, skips)``: the feature map and the early-stage maps :meth:`forward_head`
        needs (``layer1`` and ``layer2`` for the decoder part head, else none)."""
        if not self.needs_skips:
            return self.backbone(images), []
        stages = self.backbone.forward_stages(images)
        return stages[-1], [stages[i] for i in _DECODER_SKIPS]

    def _part_logits(self, feature_map: Tensor, skips: list[Tensor] | None) -> Tensor:
        assert self.part_classifier is not None
        if isinstance(self.part_classifier, SemanticPartClassifier):
            return self.part_classifier(feature_map)
        if not skips:
            raise ValueError(
                "the 'decoder' part head needs the backbone's layer1/layer2 maps: call "
                "forward(images), or forward_head(M, skips=...) with the skips of "
                "forward_stages(images)"
            )
        return self.part_classifier([*skips, feature_map])

    def _pooling_masks(
        self, feature_map: Tensor, part_logits: Tensor, part_labels: Tensor | None,
        known: Tensor | None = None,
    ) -> tuple[Tensor, bool]:
        """The masks to pool ``feature_map`` with and whether they are hard: the given
        ``part_labels``, else the predicted part maps at the feature map's size (detached
        with ``detach_masks``); with ``known`` (B,) bool, the given masks of the images
        it marks and the predicted ones of the others (both at the feature map's size,
        the given ones resized as pooling resizes them, so a marked image pools exactly
        as with ``part_labels`` alone)."""
        if part_labels is not None and known is None:
            return self._given_masks(part_labels, feature_map.shape[0])
        masks = SemanticPartClassifier.to_maps(part_logits)
        if masks.shape[-2:] != feature_map.shape[-2:]:
            masks = _area_pool(masks, feature_map.shape[-2:])
        if self.detach_masks:
            masks = masks.detach()
        if part_labels is None:
            return masks, False
        assert known is not None and self.part_pool is not None
        if known.shape != (feature_map.shape[0],):
            raise ValueError(f"known must have shape ({feature_map.shape[0]},), got "
                             f"{tuple(known.shape)}")
        given, hard = self._given_masks(part_labels, feature_map.shape[0])
        size = (int(feature_map.shape[-2]), int(feature_map.shape[-1]))
        given = resize_masks(given, size, hard=hard,
                             hard_resize=self.part_pool.hard_resize)
        keep = known.to(device=masks.device, dtype=torch.bool).view(-1, 1, 1, 1)
        return torch.where(keep, given.float(), masks.float()), False

    def forward_head(
        self,
        feature_map: Tensor,
        part_labels: Tensor | None = None,
        *,
        skips: list[Tensor] | None = None,
        known: Tensor | None = None,
    ) -> ReIDOutput:
        """Pool, neck and classify a ``(B, C, h, w)`` feature map (see :meth:`forward`).

        ``skips``: the early-stage maps of :meth:`forward_stages` (needed by the
        ``"decoder"`` part head). ``known``: as in :meth:`forward`.
        """
        if feature_map.ndim != 4 or feature_map.shape[1] != self.feat_dim:
            raise ValueError(
                f"feature_map must have shape (B, {self.feat_dim}, h, w), "
                f"got {tuple(feature_map.shape)}"
            )
        batch = feature_map.shape[0]
        if self.global_pool is None:
            global_raw = global_avg_pool(feature_map)
        else:
            global_raw = self.global_pool(feature_map)
        global_feat = self.global_neck(global_raw)

        if self.part_classifier is None:
            if part_labels is not None:
                raise ValueError(
                    f"part_labels were given but model {self.arch!r} has no part branch "
                    "(parts=False)"
                )
            part_logits = None
            background_feat = None
            part_raw = feature_map.new_zeros(batch, 0, self.feat_dim)
            part_feats = global_feat.new_zeros(batch, 0, self.feat_dim)
            visibility = feature_map.new_zeros(batch, 0, dtype=torch.float32)
        else:
            assert self.part_pool is not None and self.part_necks is not None
            part_logits = self._part_logits(feature_map, skips)
            masks, hard = self._pooling_masks(feature_map, part_logits, part_labels, known)
            pooled, vis = self.part_pool(feature_map, masks, hard=hard)  # (B, K+1, C)
            background_feat = pooled[:, 0]
            part_raw = pooled[:, 1:]
            visibility = vis[:, 1:]
            # an invisible part is a zero feature: without the mask its BNNeck would map
            # the zero pooled vector to -running_mean / sigma, a full vector after L2
            necked = self.part_necks(part_raw)
            part_feats = necked * visibility.to(necked.dtype).unsqueeze(-1)

        id_logits = None
        if self.training and self.id_classifier is not None:
            stacked = torch.cat([global_feat.unsqueeze(1), part_feats.to(global_feat.dtype)], 1)
            id_logits = self.id_classifier(stacked)
        return ReIDOutput(
            global_feat=global_feat,
            part_feats=part_feats,
            visibility=visibility,
            part_logits=part_logits,
            id_logits=id_logits,
            global_raw=global_raw,
            part_raw=part_raw,
            background_feat=background_feat,
        )

    def forward(
        self, images: Tensor, part_labels: Tensor | None = None, *, known: Tensor | None = None
    ) -> ReIDOutput:
        """Run the network.

        Args:
            images: ``(B, 3, H, W)`` normalised images.
            part_labels: optional **given** masks to pool with instead of the predicted
                part maps: a ``(B, H', W')`` int64 label map (0 bg, 1 head, 2 upper,
                3 lower, 255 ignore) or ``(B, K+1, H', W')`` soft maps. The part logits
                are still computed (for the part loss).
            known: optional ``(B,)`` bool with ``part_labels``: the images that pool with
                their given masks; the others pool with their predicted part maps (e.g.
                crops a human parser found no pose in). Default: all of them.

        Returns:
            A :class:`ReIDOutput`.
        """
        if not isinstance(images, Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images must be a (B, 3, H, W) tensor, got {shape}")
        feature_map, skips = self.forward_stages(images)
        if known is None:
            return self.forward_head(feature_map, part_labels, skips=skips)
        return self.forward_head(feature_map, part_labels, skips=skips, known=known)

    # ----------------------------------------------------------------- helpers
    def _given_masks(self, part_labels: Tensor, batch: int) -> tuple[Tensor, bool]:
        if not isinstance(part_labels, Tensor):
            raise TypeError(f"part_labels must be a tensor, got {type(part_labels).__name__}")
        if part_labels.shape[0] != batch:
            raise ValueError(
                f"part_labels batch size {part_labels.shape[0]} does not match images ({batch})"
            )
        is_int = not part_labels.is_floating_point()
        if part_labels.ndim == 4 and part_labels.shape[1] == 1 and is_int:
            part_labels = part_labels[:, 0]
        if part_labels.ndim == 3:
            return labels_to_masks(part_labels, NUM_PART_CLASSES, ignore_index=IGNORE_INDEX), True
        if part_labels.ndim == 4 and part_labels.shape[1] == NUM_PART_CLASSES:
            return part_labels, not part_labels.is_floating_point()
        raise ValueError(
            "part_labels must be a (B, H, W) label map or (B, "
            f"{NUM_PART_CLASSES}, H, W) part maps, got {tuple(part_labels.shape)}"
        )

    @staticmethod
    def pseudo_part_labels(
        feature_map: Tensor, output_size: tuple[int, int] | None = None, **kwargs: Any
    ) -> Tensor:
        """ISP-style pseudo labels from a feature map (see
        :func:`~semparts_reid.layers.part_clustering.pseudo_part_labels`)."""
        return pseudo_part_labels(feature_map, output_size=output_size, **kwargs)
