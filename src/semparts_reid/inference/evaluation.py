"""``evaluate_model``: THE evaluation path of the library.

The trainer, ``semparts-reid evaluate`` and the demo all score a model here, so their
numbers come from the same preprocessing and the same distances:

1. features of the query and gallery images come from a
   :class:`~semparts_reid.inference.FeatureExtractor` (its batched resizing and
   normalisation, its precision policy, its guard against non-finite features);
2. the retrieval distance of ``mode`` is streamed into
   :func:`~semparts_reid.metrics.rank.evaluate_cmc_map` a block of queries at a time,
   so no ``(Q, G)`` matrix is held (re-ranking is the one exception: it returns the
   ``(Q, G)`` re-ranked matrix, from the features in tiles for ``"global"`` and
   ``"concat"``, from the three part-aware matrices for ``"parts"``).

Three retrieval modes:

* ``"global"``: the global features;
* ``"concat"``: ``[global, head, upper, lower]`` (each L2-normalised, invisible parts
  zero), renormalised: one vector per image, usable with any index;
* ``"parts"``: the visibility-aware part distance
  (:func:`~semparts_reid.metrics.part_distance.part_aware_distance`): the global
  distance plus the parts visible in both images.

Distances use ``metric`` on the L2-normalised features, exactly as ``semparts-reid
extract`` writes them (on unit vectors euclidean ranks like cosine; the metrics differ
for ``"parts"`` and for re-ranking).

Example:
    >>> from semparts_reid import build_model
    >>> from semparts_reid.data import build_dataset
    >>> ds = build_dataset("synthetic:b?size=tiny")  # doctest: +SKIP
    >>> evaluate_model(build_model("semparts_resnet18"), ds.query, ds.gallery,
    ...                mode="parts", device="cpu")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError
from ..metrics.blocks import DistanceBlocks
from ..metrics.distance import METRICS, compute_distance
from ..metrics.part_distance import part_aware_distance, part_aware_distance_blocks
from ..metrics.rank import ReIDMetrics, evaluate_cmc_map
from .extractor import FeatureExtractor, PartFeatures

__all__ = [
    "MODES",
    "evaluate_model",
    "evaluate_model_modes",
    "extract_split",
    "query_gallery_index",
    "retrieval_input",
]

MODES = ("global", "concat", "parts")




def _labels(records: Sequence[Any], split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    if len(records) == 0:
        raise InputError(f"{split}: no images to evaluate")
    try:
        paths = [str(r[0]) for r in records]
        pids = np.fromiter((int(r[1]) for r in records), np.int64, len(records))
        camids = np.fromiter((int(r[2]) for r in records), np.int64, len(records))
    except (TypeError, IndexError, ValueError) as exc:
        raise InputError(
            f"{split}: expected (path, pid, camid) records such as ImageRecord, got "
            f"{type(records[0]).__name__} ({exc})"
        ) from exc
    return paths, pids, camids


def extract_split(
    extractor: FeatureExtractor, records: Sequence[Any], *, parts: bool = True,
    split: str = "images", part_maps: Any = None,
) -> PartFeatures[Tensor]:
    """Run ``extractor`` over ``(path, pid, camid)`` records.

    Args:
        extractor: the feature extractor.
        records: ``ImageRecord`` s (or any ``(path, pid, camid, ...)`` tuples).
        parts: also extract part features (needs a model returning a ``ReIDOutput``);
            ``False`` gives ``K = 0``.
        split: name used in error messages.
        part_maps: given pooling masks per image (a human parser's ``ParsedPartMaps``,
            a callable ``path -> map | None`` or one map / None per record; see
            :class:`FeatureExtractor`); default: the extractor's own ``part_maps``.
    """
    paths, pids, camids = _labels(records, split)
    if parts and _returns_parts(extractor):
        out = extractor.extract_parts(paths, return_numpy=False, part_maps=part_maps)
        g, p, v = (torch.as_tensor(t) for t in (out.global_feat, out.part_feats,
                                                 out.visibility))
    else:
        g = torch.as_tensor(extractor(paths, return_numpy=False, part_maps=part_maps))
        p, v = g.new_zeros(len(g), 0, g.shape[1]), g.new_zeros(len(g), 0)
    return PartFeatures(g, p, v, pids, camids, paths)


def _returns_parts(extractor: FeatureExtractor) -> bool:
    k = getattr(extractor.model, "num_parts", None)
    return not isinstance(k, int) or k > 0


def retrieval_input(
    query: PartFeatures[Tensor], gallery: PartFeatures[Tensor], mode: str,
    metric: str = "cosine", *, part_weight: float = 0.5,
) -> tuple[Tensor, Tensor] | DistanceBlocks:
    """What :func:`evaluate_cmc_map` needs for ``mode``: features, or distance blocks."""
    check_mode(mode, metric)
    if mode == "parts" and min(query.num_parts, gallery.num_parts) > 0:
        return part_aware_distance_blocks(
            query.global_feat, gallery.global_feat, query.part_feats, gallery.part_feats,
            query.visibility, gallery.visibility, metric, part_weight=part_weight,
        )
    if mode == "concat":
        return query.concat(), gallery.concat()
    return query.global_feat, gallery.global_feat  # global, or "parts" without parts


def distance_matrix(
    a: PartFeatures[Tensor], b: PartFeatures[Tensor], mode: str, metric: str = "cosine",
    *, part_weight: float = 0.5,
) -> Tensor:
    """The full ``(len(a), len(b))`` distance matrix of ``mode`` (for re-ranking)."""
    check_mode(mode, metric)
    if mode == "parts" and min(a.num_parts, b.num_parts) > 0:
        d = part_aware_distance(a.global_feat, b.global_feat, a.part_feats, b.part_feats,
                                a.visibility, b.visibility, metric, part_weight=part_weight)
        return torch.as_tensor(d)
    fa, fb = (a.concat(), b.concat()) if mode == "concat" else (a.global_feat, b.global_feat)
    return torch.as_tensor(compute_distance(fa, fb, metric=metric))


def query_gallery_index(query_paths: Sequence[str], gallery_paths: Sequence[str]) -> np.ndarray:
    """``(Q,)`` int64: the gallery index of each query's own image, ``-1`` where none.

    The same image is the same file: paths are compared after ``os.path.abspath`` and
    ``os.path.normcase`` (no file is opened). This is the ``query_in_gallery`` argument
    of :func:`~semparts_reid.evaluate_cmc_map`: the query image itself is never its own
    match, whatever the camera ids say.
    """
    def key(p: str) -> str:
        return os.path.normcase(os.path.abspath(os.fspath(p)))

    where: dict[str, int] = {}
    for i, p in enumerate(gallery_paths):
        where.setdefault(key(p), i)
    return np.fromiter((where.get(key(p), -1) for p in query_paths), np.int64, len(query_paths))


def check_mode(mode: str, metric: str) -> None:
    """Raise ``InputError`` unless ``mode`` is one of :data:`MODES` and ``metric`` one of
    the distance metrics (before any extraction is paid for)."""
    if mode not in MODES:
        raise InputError(f"mode={mode!r}: expected one of {MODES}")
    if metric not in METRICS:
        raise InputError(f"metric={metric!r}: expected one of {tuple(METRICS)}")


def evaluate_model(
    model_or_extractor: nn.Module | FeatureExtractor,
    query: Sequence[Any],
    gallery: Sequence[Any],
    *,
    mode: str = "global",
    metric: str = "cosine",
    rerank: bool = False,
    rerank_kwargs: Mapping[str, Any] | None = None,
    part_weight: float = 0.5,
    protocol: str = "market1501",
    ap_mode: str = "standard",
    max_rank: int = 50,
    device: str | torch.device = "auto",
    precision: str = "auto",
    channels_last: bool | None = None,
    batch_size: int = 128,
    num_workers: int | None = None,
    data_config: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    part_maps: Any = None,
) -> ReIDMetrics:
    """CMC / mAP / mINP of a model on ``query`` vs ``gallery`` image records.

    Args:
        model_or_extractor: a model (a ``SemPartsNet`` or any module the
            :class:`FeatureExtractor` accepts) or a ready :class:`FeatureExtractor`
            (its device, precision, batch size and flip are then used as they are).
            A model's train/eval mode is restored afterwards.
        query, gallery: ``(path, pid, camid)`` records (``ImageRecord``).
        mode: ``"global"``, ``"concat"`` or ``"parts"`` (see the module docstring);
            a global-only model is scored globally in every mode.
        metric: ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"``.
        rerank: k-reciprocal re-ranking of the mode's distances: from the features
            (:func:`~semparts_reid.metrics.rerank.re_ranking_from_features`, no
            ``(Q + G)^2`` memory) for ``"global"``/``"concat"``; ``"parts"`` holds the
            three part-aware matrices (:func:`~semparts_reid.metrics.rerank.re_ranking`).
        rerank_kwargs: ``k1``, ``k2``, ``lambda_value``, ``max_n`` for re-ranking.
        part_weight: weight of the parts in the ``"parts"`` distance.
        protocol, ap_mode, max_rank: see :func:`~semparts_reid.evaluate_cmc_map`.
        device, precision, channels_last, batch_size, num_workers, data_config,
            progress: how to build the extractor for a model (see
            :class:`FeatureExtractor`).
        part_maps: pool the part features of the query and gallery images with given
            maps (a human parser's ``ParsedPartMaps`` or a callable ``path -> map |
            None``; an image without one pools with its predicted maps); default: the
            extractor's own (none for a model).

    The query image itself (the same file among the gallery's paths, see
    :func:`query_gallery_index`) is removed from its gallery under every camera rule;
    camera ids ``-1`` are unknown and never count as "the same camera" (``docs/evaluation.md``).

    Returns:
        :class:`~semparts_reid.metrics.rank.ReIDMetrics` (its ``protocol_note`` names the
        camera rule that ran).

    Raises:
        InputError: bad mode, metric or records; no valid query.
    """
    return evaluate_model_modes(
        model_or_extractor, query, gallery, modes=(mode,), metric=metric, rerank=rerank,
        rerank_kwargs=rerank_kwargs, part_weight=part_weight, protocol=protocol,
        ap_mode=ap_mode, max_rank=max_rank, device=device, precision=precision,
        channels_last=channels_last, batch_size=batch_size, num_workers=num_workers,
        data_config=data_config, progress=progress, part_maps=part_maps,
    )[mode]


def _score(
    q: PartFeatures[Tensor], g: PartFeatures[Tensor], mode: str, metric: str, *, rerank: bool,
    rerank_kwargs: Mapping[str, Any] | None, part_weight: float, protocol: str,
    ap_mode: str, max_rank: int,
) -> ReIDMetrics:
    """CMC / mAP of extracted query and gallery features under one retrieval mode."""
    scored: Any
    if rerank and mode == "parts" and min(q.num_parts, g.num_parts) > 0:
        from ..metrics.rerank import re_ranking

        scored = re_ranking(
            distance_matrix(q, g, mode, metric, part_weight=part_weight),
            distance_matrix(q, q, mode, metric, part_weight=part_weight),
            distance_matrix(g, g, mode, metric, part_weight=part_weight),
            **dict(rerank_kwargs or {}),
        )
    elif rerank:
        from ..metrics.rerank import re_ranking_from_features

        fq, fg = (q.concat(), g.concat()) if mode == "concat" else (q.global_feat, g.global_feat)
        scored = re_ranking_from_features(fq, fg, metric, **dict(rerank_kwargs or {}))
    else:
        scored = retrieval_input(q, g, mode, metric, part_weight=part_weight)
    (q_pids, q_camids), (g_pids, g_camids) = q.labels("query"), g.labels("gallery")
    return evaluate_cmc_map(
        scored, q_pids, g_pids, q_camids, g_camids, metric=metric, max_rank=max_rank,
        protocol=protocol, ap_mode=ap_mode,
        query_in_gallery=None if q.paths is None or g.paths is None
        else query_gallery_index(q.paths, g.paths),
    )


def evaluate_model_modes(
    model_or_extractor: nn.Module | FeatureExtractor,
    query: Sequence[Any],
    gallery: Sequence[Any],
    *,
    modes: Sequence[str] = ("global", "concat"),
    metric: str = "cosine",
    rerank: bool = False,
    rerank_kwargs: Mapping[str, Any] | None = None,
    part_weight: float = 0.5,
    protocol: str = "market1501",
    ap_mode: str = "standard",
    max_rank: int = 50,
    device: str | torch.device = "auto",
    precision: str = "auto",
    channels_last: bool | None = None,
    batch_size: int = 128,
    num_workers: int | None = None,
    data_config: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    part_maps: Any = None,
) -> dict[str, ReIDMetrics]:
    """:func:`evaluate_model` for several retrieval modes from one feature extraction.

    The query and gallery features are extracted once (with the parts when a mode
    needs them) and scored per mode exactly as :func:`evaluate_model` scores it; the
    other arguments are those of :func:`evaluate_model`.

    Returns:
        ``{mode: ReIDMetrics}`` in the order of ``modes``.

    Raises:
        InputError: no mode, a repeated or unknown mode, a bad metric or bad records.
    """
    modes = tuple(modes)
    if not modes or len(set(modes)) != len(modes):
        raise InputError(f"modes={modes!r}: expected one or more distinct modes of {MODES}")
    for mode in modes:
        check_mode(mode, metric)
    if isinstance(model_or_extractor, FeatureExtractor):
        extractor, model, was_training = model_or_extractor, None, False
    elif isinstance(model_or_extractor, nn.Module):
        model, was_training = model_or_extractor, model_or_extractor.training
        extractor = FeatureExtractor(
            model, device=device, precision=precision, channels_last=channels_last,
            batch_size=batch_size, num_workers=num_workers, data_config=data_config,
            progress=progress, fuse_bn=False,
        )
    else:
        raise TypeError("model_or_extractor: expected an nn.Module or a FeatureExtractor, "
                        f"got {type(model_or_extractor).__name__}")
    parts = any(mode != "global" for mode in modes)
    try:
        q = extract_split(extractor, query, parts=parts, split="query", part_maps=part_maps)
        g = extract_split(extractor, gallery, parts=parts, split="gallery", part_maps=part_maps)
    finally:
        if model is not None:
            model.train(was_training)
    return {
        mode: _score(q, g, mode, metric, rerank=rerank, rerank_kwargs=rerank_kwargs,
                     part_weight=part_weight, protocol=protocol, ap_mode=ap_mode,
                     max_rank=max_rank)
        for mode in modes
    }
