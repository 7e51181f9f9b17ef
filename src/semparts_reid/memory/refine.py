"""Semantic-part refinement of cluster pseudo-labels (pure tensor code).

PPLR (Cho et al., "Part-based Pseudo Label Refinement for Unsupervised Person
Re-identification", CVPR 2022) refines the pseudo-labels of a clustering method with
horizontal stripes. Here the parts are **semantic** (head / upper / lower) and may be
invisible, so every part is gated by its visibility:

* **Agreement** (:func:`knn_agreement`): for image ``i`` and part ``k``,
  ``a_ik = |N_g(i) ∩ N_k(i)| / |N_g(i) ∪ N_k(i)|``, the Jaccard overlap of the
  ``k``-nearest-neighbour list of the global feature with that of the part feature,
  over the target training set (self excluded; a part's neighbours are searched among
  the images where that part is visible). An invisible part has ``a_ik = 0``.
* **Refined global target** (:func:`refined_global_targets`):
  ``t_i = β onehot(y_i) + (1-β) Σ_k w_ik p_ik`` with ``p_ik = softmax(f_ik · C_kᵀ / τ)``
  (the part's prediction against its own centroid bank, no gradient) and
  ``w_ik = v_ik a_ik / Σ_j v_ij a_ij``. PPLR weights the stripes by ``softmax_k(a_ik)``,
  which gives every stripe a weight within a factor ``e`` of the others however badly it
  agrees; here the weight is proportional to the agreement, and an invisible part
  (``v_ik = 0``) or one whose neighbours share nothing with the global ones gets none.
  When no visible part agrees at all, ``t_i`` is the one-hot label.
* **Agreement-aware label smoothing** (:func:`agreement_smoothed_targets`): the part
  ``k`` target is ``a_ik onehot(y_i) + (1 - a_ik) / C`` (smoothing weight ``1 - a_ik``):
  a part whose neighbourhood disagrees with the global one is trusted less. (PPLR
  writes the same loss as ``a CE + (1-a) KL(u || p)``; the two differ by a constant.)
  The loss itself gives invisible parts no term (:meth:`ClusterMemory.loss`).

Example:
    >>> import torch
    >>> g = torch.nn.functional.normalize(torch.randn(50, 8), dim=1)
    >>> p = torch.nn.functional.normalize(torch.randn(50, 3, 8), dim=2)
    >>> vis = torch.ones(50, 3); vis[0, 2] = 0
    >>> a = knn_agreement(g, p, vis, k=5)
    >>> a.shape, float(a[0, 2])
    (torch.Size([50, 3]), 0.0)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["agreement_smoothed_targets", "knn_agreement", "refined_global_targets"]


def _topk_lists(
    feats: torch.Tensor, valid: torch.Tensor | None, k: int, chunk_size: int
) -> torch.Tensor:
    """``(N, k)`` indices of the ``k`` most similar rows of ``feats`` (N, D) to each row,
    self excluded, candidates restricted to ``valid`` (N,) bool; missing entries ``-1``."""
    n = feats.shape[0]
    out = torch.empty(n, k, dtype=torch.long, device=feats.device)
    rows = torch.arange(n, device=feats.device)
    for start in range(0, n, chunk_size):  # chunks bound the memory at chunk x N
        stop = min(start + chunk_size, n)
        sim = feats[start:stop] @ feats.t()  # (c, N)
        sim[torch.arange(stop - start, device=feats.device), rows[start:stop]] = -torch.inf
        if valid is not None:
            sim.masked_fill_(~valid.view(1, n), -torch.inf)
        val, idx = sim.topk(k, dim=1)
        out[start:stop] = torch.where(torch.isinf(val), torch.full_like(idx, -1), idx)
    return out


def knn_agreement(
    global_feat: torch.Tensor,
    part_feats: torch.Tensor,
    visibility: torch.Tensor | None = None,
    *,
    k: int = 20,
    chunk_size: int = 2048,
) -> torch.Tensor:
    """Cross agreement of each part with the global feature: Jaccard of top-k lists.

    Args:
        global_feat: ``(N, D)`` global features (cosine similarity: normalised here).
        part_feats: ``(N, K, D)`` part features.
        visibility: optional ``(N, K)``, 1 where the part is visible (> 0.5); an
            invisible part scores 0 and is nobody's neighbour in that part.
        k: neighbours per list (PPLR: 20); ``min(k, N - 1)`` when the set is smaller.
        chunk_size: query rows per similarity block (memory ``chunk_size x N``).

    Returns:
        ``(N, K)`` float32 agreement in ``[0, 1]`` (a part with fewer visible neighbours
        than ``k`` is compared over the lists it has).
    """
    if global_feat.dim() != 2:
        raise ValueError(f"global_feat of shape {tuple(global_feat.shape)}: expected (N, D)")
    n, d = global_feat.shape
    if part_feats.dim() != 3 or part_feats.shape[0] != n or part_feats.shape[2] != d:
        raise ValueError(
            f"part_feats of shape {tuple(part_feats.shape)}: expected ({n}, K, {d})"
        )
    num_parts = part_feats.shape[1]
    if visibility is not None and visibility.shape != (n, num_parts):
        raise ValueError(
            f"visibility of shape {tuple(visibility.shape)}: expected ({n}, {num_parts})"
        )
    if k < 1 or chunk_size < 1:
        raise ValueError(f"k={k}, chunk_size={chunk_size}: expected values >= 1")
    kk = min(k, n - 1)
    out = torch.zeros(n, num_parts, dtype=torch.float32, device=global_feat.device)
    if kk < 1 or num_parts == 0:
        return out
    vis = (
        torch.ones(n, num_parts, dtype=torch.bool, device=global_feat.device)
        if visibility is None else visibility.to(global_feat.device) > 0.5
    )
    g = _topk_lists(F.normalize(global_feat.float(), dim=1), None, kk, chunk_size)  # (N, kk)
    for part in range(num_parts):  # K = 3 semantic parts
        p = _topk_lists(F.normalize(part_feats[:, part].float(), dim=1), vis[:, part], kk,
                        chunk_size)
        for start in range(0, n, chunk_size):
            gs, ps = g[start:start + chunk_size], p[start:start + chunk_size]
            same = (gs[:, :, None] == ps[:, None, :]) & (ps[:, None, :] >= 0)
            inter = same.any(dim=2).sum(dim=1).float()  # lists hold distinct indices
            union = kk + (ps >= 0).sum(dim=1).float() - inter
            out[start:start + chunk_size, part] = inter / union.clamp_min(1.0)
    return out * vis.float()


def refined_global_targets(
    labels: torch.Tensor,
    part_probs: torch.Tensor,
    agreement: torch.Tensor,
    visibility: torch.Tensor | None = None,
    *,
    beta: float = 0.5,
) -> torch.Tensor:
    """Part-guided soft targets of the global head.

    Args:
        labels: ``(B,)`` cluster labels (``-1``: an outlier, whose row the loss ignores).
        part_probs: ``(B, K, C)`` part predictions ``softmax(f_k · C_kᵀ / τ)``.
        agreement: ``(B, K)`` agreement scores in ``[0, 1]``.
        visibility: optional ``(B, K)`` (> 0.5: visible).
        beta: weight of the one-hot label (PPLR: 0.5).

    Returns:
        ``(B, C)`` rows summing to 1: ``β onehot + (1-β) Σ_k w_k p_k`` with
        ``w_k ∝ v_k a_k``, or the one-hot where no visible part agrees.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta={beta!r}: expected a value in [0, 1]")
    b, num_parts, c = part_probs.shape
    if labels.shape != (b,) or agreement.shape != (b, num_parts):
        raise ValueError(
            f"labels {tuple(labels.shape)} / agreement {tuple(agreement.shape)}: expected "
            f"({b},) / ({b}, {num_parts}) for part_probs {tuple(part_probs.shape)}"
        )
    onehot = F.one_hot(labels.clamp_min(0), c).to(part_probs.dtype)
    w = agreement.to(part_probs.dtype).clamp_min(0.0)
    if visibility is not None:
        w = w * (visibility.to(w.device) > 0.5).to(w.dtype)
    total = w.sum(dim=1, keepdim=True)  # (B, 1)
    ens = ((w / total.clamp_min(1e-12))[..., None] * part_probs).sum(dim=1)  # (B, C)
    refined = beta * onehot + (1.0 - beta) * ens
    return torch.where(total > 0, refined, onehot)


def agreement_smoothed_targets(
    labels: torch.Tensor, agreement: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Label smoothing by agreement: ``a onehot(y) + (1 - a) / C``.

    Args:
        labels: ``(B,)`` cluster labels (``-1`` rows are ignored by the loss).
        agreement: ``(B,)`` agreement of the part, or ``(B, K)`` for K parts.
        num_classes: ``C``.

    Returns:
        ``(B, C)`` (or ``(K, B, C)`` for ``(B, K)`` agreement) rows summing to 1.
    """
    onehot = F.one_hot(labels.clamp_min(0), num_classes).float()  # (B, C)
    a = agreement.float().clamp(0.0, 1.0)
    if a.dim() == 1:
        return a[:, None] * onehot + (1.0 - a[:, None]) / num_classes
    a = a.t()[..., None]  # (K, B, 1)
    return a * onehot + (1.0 - a) / num_classes
