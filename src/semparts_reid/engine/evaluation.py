"""Evaluation used by the trainer: extract query / gallery features, rank, score.

Three retrieval modes, each with a ``metric`` (cosine by default, or Euclidean) on
L2-normalised features:

* ``"global"``: the distance of the global features;
* ``"concat"``: the distance of ``[global, head, upper, lower]`` (each L2-normalised,
  invisible parts zero) — one vector per image, usable with any index;
* ``"parts"``: the visibility-aware part distance
  (:func:`semparts_reid.metrics.part_distance.part_aware_distance`): global plus the
  parts visible in both images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..metrics.distance import METRICS, compute_distance
from ..metrics.rank import ReIDMetrics, evaluate_cmc_map
from ..precision import PrecisionPolicy, forward_with_fp32_fallback
from .loaders import build_eval_loader

__all__ = ["evaluate_features", "evaluate_model", "extract_features"]

MODES = ("global", "concat", "parts")


@torch.no_grad()
def extract_features(
    model: nn.Module,
    records: Sequence[Any],
    *,
    policy: PrecisionPolicy,
    data_config: dict[str, Any],
    batch_size: int = 128,
    num_workers: int = 0,
) -> dict[str, torch.Tensor]:
    """Run ``model`` in eval mode over ``records`` (``ImageRecord`` list).

    Returns:
        ``{"global": (N, D), "parts": (N, K, D), "visibility": (N, K), "pids": (N,),
        "camids": (N,)}``, float32 features on the CPU.
    """
    was = model.training
    model.eval()
    chunks: dict[str, list[torch.Tensor]] = {k: [] for k in ("global", "parts", "visibility")}
    try:
        loader = build_eval_loader(records, data_config, batch_size, num_workers)
        for i, batch in enumerate(loader):
            x = policy.prepare_input(batch["image"])
            out = forward_with_fp32_fallback(
                policy, model, x, lambda o: o.global_feat, label=f"evaluation batch {i}"
            )
            chunks["global"].append(out.global_feat.float().cpu())
            chunks["parts"].append(out.part_feats.float().cpu())
            chunks["visibility"].append(out.visibility.float().cpu())
    finally:
        model.train(was)
    feats = {k: torch.cat(v) for k, v in chunks.items()}
    feats["pids"] = torch.tensor([int(r[1]) for r in records], dtype=torch.long)
    feats["camids"] = torch.tensor([int(r[2]) for r in records], dtype=torch.long)
    return feats


def _concat(feats: dict[str, torch.Tensor]) -> torch.Tensor:
    g = F.normalize(feats["global"], dim=1)
    if feats["parts"].shape[1] == 0:
        return g
    p = F.normalize(feats["parts"], dim=2) * (feats["visibility"][..., None] > 0.5)
    return F.normalize(torch.cat([g, p.flatten(1)], dim=1), dim=1)


def distance_matrix(
    q: dict[str, torch.Tensor],
    g: dict[str, torch.Tensor],
    mode: str,
    metric: str = "cosine",
) -> np.ndarray:
    """(Q, G) distances between two :func:`extract_features` outputs.

    The features are first L2-normalised (global and each part), as
    :class:`~semparts_reid.inference.FeatureExtractor` and ``semparts-reid extract``
    return them, so a checkpoint and its saved features give the same distances.
    ``metric`` is ``"cosine"``, ``"euclidean"`` or ``"sqeuclidean"``
    (:func:`~semparts_reid.metrics.distance.compute_distance`); on unit vectors the
    Euclidean distance is ``sqrt(2 * cosine)``, so it ranks ``global`` and ``concat``
    retrieval the same way, but not the part-weighted sum of ``"parts"`` nor re-ranking.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {MODES}")
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: expected one of {METRICS}")
    if mode == "parts" and q["parts"].shape[1] == 0:
        mode = "global"  # a global-only model has no parts to compare
    d: Any
    if mode == "global":
        d = compute_distance(
            F.normalize(q["global"], dim=1), F.normalize(g["global"], dim=1), metric=metric
        )
    elif mode == "concat":
        d = compute_distance(_concat(q), _concat(g), metric=metric)
    else:
        from ..metrics.part_distance import part_aware_distance

        d = part_aware_distance(
            F.normalize(q["global"], dim=1), F.normalize(g["global"], dim=1),
            F.normalize(q["parts"], dim=2), F.normalize(g["parts"], dim=2),
            q["visibility"], g["visibility"], metric=metric,
        )
    return d.cpu().numpy() if isinstance(d, torch.Tensor) else np.asarray(d)


def evaluate_features(
    q: dict[str, torch.Tensor],
    g: dict[str, torch.Tensor],
    *,
    mode: str = "global",
    metric: str = "cosine",
) -> ReIDMetrics:
    """CMC / mAP (Market-1501 protocol) from two :func:`extract_features` outputs."""
    dist = distance_matrix(q, g, mode, metric)
    return evaluate_cmc_map(
        dist, q["pids"].numpy(), g["pids"].numpy(), q["camids"].numpy(), g["camids"].numpy()
    )


def evaluate_model(
    model: nn.Module,
    query: Sequence[Any],
    gallery: Sequence[Any],
    *,
    mode: str,
    policy: PrecisionPolicy,
    data_config: dict[str, Any],
    batch_size: int = 128,
    num_workers: int = 0,
    metric: str = "cosine",
) -> ReIDMetrics:
    """Extract features of ``query`` and ``gallery`` with ``model`` and score them.

    ``mode`` and ``metric``: see :func:`distance_matrix`.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {MODES}")
    kw: dict[str, Any] = dict(
        policy=policy, data_config=data_config, batch_size=batch_size, num_workers=num_workers
    )
    q = extract_features(model, query, **kw)
    g = extract_features(model, gallery, **kw)
    return evaluate_features(q, g, mode=mode, metric=metric)
