"""Part-aware distance: the global distance combined with visibility-aware part distances.

For a query ``q`` and a gallery image ``g`` with part visibilities ``v`` (1 visible, 0 not;
soft values in ``[0, 1]`` act as weights) the shared visibility of part ``k`` is
``s_k = v_qk * v_gk`` and

.. math::

    d(q, g) = \\begin{cases}
        (1 - \\lambda)\\, d_{glob}(q, g) + \\lambda \\,
            \\frac{\\sum_k s_k \\, d_k(q, g)}{\\sum_k s_k} & \\text{if } \\sum_k s_k > 0 \\\\
        d_{glob}(q, g) & \\text{otherwise (no part visible in both images)}
    \\end{cases}

with ``lambda = part_weight``. So parts that are occluded or cut off in either image never
contribute, and a pair sharing no visible part is compared globally only. Each ``d_k`` and
``d_glob`` uses the same metric (:mod:`semparts_reid.metrics.distance`), and everything is
computed a block of query rows at a time: peak memory is ``O(chunk_size * G)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .blocks import DistanceBlocks
from .distance import compute_distance, iter_distance_chunks

__all__ = [
    "iter_part_aware_distance_chunks",
    "part_aware_distance",
    "part_aware_distance_blocks",
]

ArrayLike = np.ndarray | torch.Tensor


def _as_tensor(name: str, x: object, ndim: int, layout: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")
    if t.ndim != ndim:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(t.shape)}")
    return t


def _validate(
    query_global: object,
    gallery_global: object,
    query_parts: object,
    gallery_parts: object,
    query_visibility: object,
    gallery_visibility: object,
    part_weight: float,
) -> tuple[list[torch.Tensor], bool]:
    if not 0.0 <= part_weight <= 1.0:
        raise ValueError(f"part_weight must be in [0, 1], got {part_weight}")
    inputs = (
        query_global,
        gallery_global,
        query_parts,
        gallery_parts,
        query_visibility,
        gallery_visibility,
    )
    as_torch = any(isinstance(x, torch.Tensor) for x in inputs)
    qg = _as_tensor("query_global", query_global, 2, "(Q, D)")
    gg = _as_tensor("gallery_global", gallery_global, 2, "(G, D)")
    qp = _as_tensor("query_parts", query_parts, 3, "(Q, K, D)")
    gp = _as_tensor("gallery_parts", gallery_parts, 3, "(G, K, D)")
    qv = _as_tensor("query_visibility", query_visibility, 2, "(Q, K)")
    gv = _as_tensor("gallery_visibility", gallery_visibility, 2, "(G, K)")
    num_q, num_g, num_k = qg.shape[0], gg.shape[0], qp.shape[1]
    expected = {
        "query_parts": (qp, (num_q, num_k)),
        "gallery_parts": (gp, (num_g, num_k)),
        "query_visibility": (qv, (num_q, num_k)),
        "gallery_visibility": (gv, (num_g, num_k)),
    }
    for name, (t, lead) in expected.items():
        if tuple(t.shape[:2]) != lead:
            raise ValueError(
                f"{name} has shape {tuple(t.shape)}; expected leading dims {lead} "
                f"(Q={num_q} queries, G={num_g} gallery images, K={num_k} parts)"
            )
    if num_k and (qp.shape[2] != gp.shape[2]):
        raise ValueError(
            f"query_parts and gallery_parts feature dims differ: {qp.shape[2]} vs {gp.shape[2]}"
        )
    for name, v in (("query_visibility", qv), ("gallery_visibility", gv)):
        if v.numel() and not bool(((v >= 0) & (v <= 1)).all()):
            raise ValueError(f"{name} must hold values in [0, 1] (1 = visible)")
    device = next((x.device for x in inputs if isinstance(x, torch.Tensor)), qg.device)
    return [t.to(device) for t in (qg, gg, qp, gp, qv, gv)], as_torch


def _combined_blocks(
    tensors: list[torch.Tensor], metric: str, part_weight: float, chunk_size: int
) -> Iterator[tuple[int, int, torch.Tensor]]:
    qg, gg, qp, gp, qv, gv = tensors
    num_k = qp.shape[1]
    streams = [iter_distance_chunks(qg, gg, metric, chunk_size)]
    streams += [iter_distance_chunks(qp[:, k], gp[:, k], metric, chunk_size) for k in range(num_k)]
    for blocks in zip(*streams):
        start, stop, d_glob = blocks[0]
        assert isinstance(d_glob, torch.Tensor)
        if num_k == 0:
            yield start, stop, d_glob
            continue
        dtype = d_glob.dtype
        qv_c = qv[start:stop].to(dtype)
        gv_t = gv.to(dtype)
        shared = qv_c @ gv_t.T  # (c, G): sum_k s_k
        part_sum = torch.zeros_like(d_glob)
        for k, (_, _, d_k) in enumerate(blocks[1:]):  # K (= 3) parts, each a (c, G) block
            assert isinstance(d_k, torch.Tensor)
            part_sum.addcmul_(d_k, qv_c[:, k : k + 1] * gv_t[:, k].unsqueeze(0))
        mixed = (1.0 - part_weight) * d_glob + part_weight * part_sum / shared.clamp_min(1e-12)
        yield start, stop, torch.where(shared > 0, mixed, d_glob)


def iter_part_aware_distance_chunks(
    query_global: ArrayLike,
    gallery_global: ArrayLike,
    query_parts: ArrayLike,
    gallery_parts: ArrayLike,
    query_visibility: ArrayLike,
    gallery_visibility: ArrayLike,
    metric: str = "cosine",
    *,
    part_weight: float = 0.5,
    chunk_size: int = 1024,
) -> Iterator[tuple[int, int, ArrayLike]]:
    """Yield the part-aware distance matrix a block of query rows at a time.

    Same arguments as :func:`part_aware_distance`; yields ``(start, stop, dist)`` with
    ``dist`` of shape ``(stop - start, G)``. Inputs are validated before the first block.
    """
    tensors, as_torch = _validate(
        query_global,
        gallery_global,
        query_parts,
        gallery_parts,
        query_visibility,
        gallery_visibility,
        part_weight,
    )
    blocks = _combined_blocks(tensors, metric, part_weight, chunk_size)
    return ((a, b, d if as_torch else d.cpu().numpy()) for a, b, d in blocks)


def part_aware_distance(
    query_global: ArrayLike,
    gallery_global: ArrayLike,
    query_parts: ArrayLike,
    gallery_parts: ArrayLike,
    query_visibility: ArrayLike,
    gallery_visibility: ArrayLike,
    metric: str = "cosine",
    *,
    part_weight: float = 0.5,
    chunk_size: int | None = 1024,
) -> ArrayLike:
    """Global distance combined with per-part distances over the parts visible in both.

    Args:
        query_global: ``(Q, D)`` global features (``ReIDOutput.global_feat``).
        gallery_global: ``(G, D)`` global features.
        query_parts: ``(Q, K, Dp)`` part features (``ReIDOutput.part_feats``); ``K = 0``
            gives the plain global distance.
        gallery_parts: ``(G, K, Dp)`` part features.
        query_visibility: ``(Q, K)`` visibility in ``[0, 1]`` (``ReIDOutput.visibility``).
        gallery_visibility: ``(G, K)`` visibility.
        metric: ``"cosine"`` (default), ``"euclidean"`` or ``"sqeuclidean"``, used for the
            global and every part distance.
        part_weight: ``lambda`` in ``[0, 1]``, the share of the averaged part distance
            (see the module docs); 0 gives the global distance.
        chunk_size: query rows per block; ``None`` computes one block.

    Returns:
        ``(Q, G)`` distances: a torch tensor if any input is a tensor, else numpy; float64
        if the features are float64, else float32.

    Raises:
        ValueError: inconsistent shapes, visibility outside ``[0, 1]``, bad ``part_weight``,
            unknown metric, NaN/inf features.
        TypeError: inputs that are neither numpy arrays nor tensors.

    Example:
        >>> import numpy as np
        >>> qg, gg = np.eye(2, 4, dtype=np.float32), np.eye(2, 4, dtype=np.float32)
        >>> qp = np.ones((2, 3, 4), np.float32); gp = -np.ones((2, 3, 4), np.float32)
        >>> qv = np.array([[1, 0, 0], [0, 0, 0]], np.float32); gv = np.ones((2, 3), np.float32)
        >>> part_aware_distance(qg, gg, qp, gp, qv, gv)  # row 0: (0 + 2)/2, (1 + 2)/2
        array([[1. , 1.5],
               [1. , 0. ]], dtype=float32)
    """
    tensors, as_torch = _validate(
        query_global,
        gallery_global,
        query_parts,
        gallery_parts,
        query_visibility,
        gallery_visibility,
        part_weight,
    )
    num_q, num_g = tensors[0].shape[0], tensors[1].shape[0]
    if num_q == 0:  # nothing to chunk: an empty (0, G) matrix with the usual dtype rules
        empty = compute_distance(tensors[0], tensors[1], metric)
        return empty if as_torch else empty.cpu().numpy()
    step = num_q if chunk_size is None else chunk_size
    out: torch.Tensor | None = None
    for start, stop, block in _combined_blocks(tensors, metric, part_weight, step):
        if stop - start == num_q:
            out = block
            break
        if out is None:
            out = torch.empty((num_q, num_g), dtype=block.dtype, device=block.device)
        out[start:stop] = block
    assert out is not None
    return out if as_torch else out.cpu().numpy()


def part_aware_distance_blocks(
    query_global: ArrayLike,
    gallery_global: ArrayLike,
    query_parts: ArrayLike,
    gallery_parts: ArrayLike,
    query_visibility: ArrayLike,
    gallery_visibility: ArrayLike,
    metric: str = "cosine",
    *,
    part_weight: float = 0.5,
) -> DistanceBlocks:
    """The part-aware distance as :class:`~semparts_reid.metrics.blocks.DistanceBlocks`.

    Hand it to :func:`~semparts_reid.metrics.rank.evaluate_cmc_map` to score the part
    distance without holding the ``(Q, G)`` matrix. Arguments as in
    :func:`part_aware_distance`.
    """
    args = (query_global, gallery_global, query_parts, gallery_parts, query_visibility,
            gallery_visibility)
    shape = (int(len(query_global)), int(len(gallery_global)))  # type: ignore[arg-type]
    return DistanceBlocks(
        shape,
        lambda chunk: iter_part_aware_distance_chunks(
            *args, metric, part_weight=part_weight, chunk_size=chunk
        ),
    )
