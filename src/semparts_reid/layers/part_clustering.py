"""Self-supervised pseudo part labels from feature maps (ISP-style) and a band prior.

No human parser needed: following ISP (Zhu et al., ECCV 2020) the network's own feature
map is clustered per image:

1. **foreground / background**: 2-means on the per-pixel feature norms; the cluster with
   the larger mean norm is the person (re-ID features fire on the person, not on the
   background);
2. **body parts**: the foreground pixels' (L2-normalised) features are clustered into 3
   groups with k-means; the groups are ordered by their mean height (row) and named
   head, upper, lower (labels 1, 2, 3; background 0).

Everything is batched over images: a k-means step for the whole batch is a handful of
tensor ops on ``(B, N, D)`` arrays (masked assignments, one-hot ``bmm`` for the centres),
with no Python loop over images. K-means starts from a **horizontal-band prior** (the
foreground pixels' mean feature in the head / upper / lower band), which makes the result
deterministic; the same prior (:func:`band_prior`, soft-edged) is also the fallback for
images whose foreground is degenerate, and a warm start before the features mean anything.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .parts import BACKGROUND, NUM_BODY_PARTS

__all__ = [
    "DEFAULT_BAND_EDGES",
    "band_labels",
    "band_prior",
    "batched_kmeans",
    "foreground_by_norm",
    "pseudo_part_labels",
]

#: Relative heights (0 = top, 1 = bottom) of the head/upper and upper/lower boundaries of
#: a pedestrian crop.
DEFAULT_BAND_EDGES: tuple[float, float] = (0.18, 0.55)


def band_prior(
    height: int,
    width: int,
    *,
    edges: tuple[float, float] = DEFAULT_BAND_EDGES,
    softness: float = 0.04,
    background: float = 0.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Soft horizontal-band part maps ``(K+1, height, width)``.

    Body part ``k`` is a band between two relative heights; its edges are sigmoids of
    width ``softness`` (relative height), so neighbouring bands blend smoothly. The body
    channels share ``1 - background`` at every pixel; channel 0 holds ``background``.

    Args:
        height, width: map size.
        edges: the two band boundaries (relative heights, increasing, in ``(0, 1)``).
        softness: sigmoid scale of the edges (relative height); ``0`` gives hard bands.
        background: constant background confidence in ``[0, 1)``.

    Example:
        >>> band_prior(8, 2).argmax(0)[:, 0]
        tensor([1, 2, 2, 2, 3, 3, 3, 3])
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height}x{width}")
    lo, hi = edges
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"edges must satisfy 0 < lo < hi < 1, got {edges}")
    if softness < 0:
        raise ValueError(f"softness must be >= 0, got {softness}")
    if not 0.0 <= background < 1.0:
        raise ValueError(f"background must be in [0, 1), got {background}")
    y = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    if softness > 0:
        below_lo = torch.sigmoid((y - lo) / softness)
        below_hi = torch.sigmoid((y - hi) / softness)
    else:
        below_lo = (y >= lo).float()
        below_hi = (y >= hi).float()
    head = 1.0 - below_lo
    upper = below_lo - below_hi
    lower = below_hi
    body = torch.stack([head, upper, lower]).clamp_min(0.0)
    body = body / body.sum(0, keepdim=True) * (1.0 - background)
    bg = torch.full_like(y, background).unsqueeze(0)
    maps = torch.cat([bg, body], dim=0)  # (K+1, height)
    return maps[:, :, None].expand(-1, -1, width).to(dtype).contiguous()


def band_labels(
    height: int,
    width: int,
    *,
    edges: tuple[float, float] = DEFAULT_BAND_EDGES,
    device: torch.device | str | None = None,
) -> Tensor:
    """Hard band labels ``(height, width)`` int64 in ``{1, 2, 3}`` (no background)."""
    return band_prior(height, width, edges=edges, softness=0.0, device=device)[1:].argmax(0) + 1


def _masked_two_means(values: Tensor, iters: int) -> Tensor:
    """1-D 2-means per row of ``values (B, N)``; returns True for the high cluster."""
    lo = values.amin(dim=1, keepdim=True)
    hi = values.amax(dim=1, keepdim=True)
    high = values > (lo + hi) / 2
    for _ in range(iters):
        high_f = high.to(values.dtype)
        n_high = high_f.sum(1, keepdim=True)
        n_low = values.shape[1] - n_high
        c_high = torch.where(
            n_high > 0, (values * high_f).sum(1, keepdim=True) / n_high.clamp_min(1), hi
        )
        c_low = torch.where(
            n_low > 0, (values * (1 - high_f)).sum(1, keepdim=True) / n_low.clamp_min(1), lo
        )
        new_high = values > (c_high + c_low) / 2
        # a fixed point: later iterations change nothing, so skipping the early exit on
        # a GPU (where the comparison is a host synchronisation) gives the same result
        if not values.is_cuda and torch.equal(new_high, high):
            break
        high = new_high
    return high


def foreground_by_norm(feature_map: Tensor, *, iters: int = 20) -> Tensor:
    """Foreground mask ``(B, h, w)`` bool by 2-means on per-pixel feature L2 norms.

    The threshold of each image is the midpoint between the two cluster means (1-D
    k-means). Pixels with the larger norms are foreground. An image whose norms are all
    equal gets an all-background mask.
    """
    if feature_map.ndim != 4:
        raise ValueError(
            f"feature_map must have shape (B, C, h, w), got {tuple(feature_map.shape)}"
        )
    batch, _, height, width = feature_map.shape
    norms = feature_map.float().norm(dim=1).reshape(batch, height * width)
    return _masked_two_means(norms, iters).view(batch, height, width)


def batched_kmeans(
    points: Tensor,
    init_centers: Tensor,
    *,
    valid: Tensor | None = None,
    iters: int = 20,
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means run independently on every batch element, fully vectorised.

    Args:
        points: ``(B, N, D)`` points.
        init_centers: ``(B, k, D)`` initial centres.
        valid: ``(B, N)`` bool; invalid points are ignored (assigned ``-1``).
        iters: maximum number of Lloyd iterations (stops early on the CPU when nothing
            changes; on a GPU all run, which gives the same result without a host
            synchronisation per iteration).

    Returns:
        ``assignments`` ``(B, N)`` int64 in ``[0, k)`` (``-1`` for invalid points) and
        ``centers`` ``(B, k, D)``. A centre that loses all its points keeps its position.
    """
    if points.ndim != 3 or init_centers.ndim != 3:
        raise ValueError(
            f"points must be (B, N, D) and init_centers (B, k, D), got "
            f"{tuple(points.shape)} and {tuple(init_centers.shape)}"
        )
    if init_centers.shape[0] != points.shape[0] or init_centers.shape[2] != points.shape[2]:
        raise ValueError(
            f"init_centers {tuple(init_centers.shape)} do not match points {tuple(points.shape)}"
        )
    batch, num_points, _ = points.shape
    if valid is None:
        valid = torch.ones(batch, num_points, dtype=torch.bool, device=points.device)
    elif valid.shape != (batch, num_points):
        raise ValueError(f"valid must have shape {(batch, num_points)}, got {tuple(valid.shape)}")
    k = init_centers.shape[1]
    pts = points.float()
    centers = init_centers.float().clone()
    valid_f = valid.unsqueeze(-1).float()
    assign = torch.full((batch, num_points), -1, dtype=torch.long, device=points.device)
    for _ in range(iters):
        new_assign = torch.cdist(pts, centers).argmin(dim=-1).masked_fill(~valid, -1)
        onehot = F.one_hot(new_assign.clamp_min(0), k).float() * valid_f  # (B, N, k)
        counts = onehot.sum(dim=1).unsqueeze(-1)  # (B, k, 1)
        sums = torch.bmm(onehot.transpose(1, 2), pts)  # (B, k, D)
        centers = torch.where(counts > 0, sums / counts.clamp_min(1.0), centers)
        # a fixed point (see _masked_two_means): no early exit, no synchronisation on a GPU
        if not pts.is_cuda and torch.equal(new_assign, assign):
            break
        assign = new_assign
    return assign, centers


def pseudo_part_labels(
    feature_map: Tensor,
    *,
    output_size: tuple[int, int] | None = None,
    edges: tuple[float, float] = DEFAULT_BAND_EDGES,
    iters: int = 20,
    min_foreground: float = 0.05,
    max_foreground: float = 0.95,
) -> Tensor:
    """ISP-style pseudo part labels ``(B, h, w)`` int64: 0 bg, 1 head, 2 upper, 3 lower.

    Args:
        feature_map: ``(B, C, h, w)`` backbone features (detached internally).
        output_size: resize the labels to ``(H, W)`` (nearest) when given.
        edges: band boundaries of the k-means warm start / fallback (relative heights).
        iters: iterations of the 2-means and of the 3-means.
        min_foreground, max_foreground: an image whose foreground fraction falls outside
            this range is treated as degenerate and gets the band prior on every pixel
            (no background).

    Returns:
        ``(B, h, w)`` (or ``(B, H, W)``) int64 part labels.

    Raises:
        ValueError: wrong shape or an invalid foreground range.
    """
    if feature_map.ndim != 4:
        raise ValueError(
            f"feature_map must have shape (B, C, h, w), got {tuple(feature_map.shape)}"
        )
    if not 0.0 <= min_foreground < max_foreground <= 1.0:
        raise ValueError(
            "need 0 <= min_foreground < max_foreground <= 1, "
            f"got {min_foreground}, {max_foreground}"
        )
    with torch.no_grad():
        fmap = feature_map.detach().float()
        batch, channels, height, width = fmap.shape
        n = height * width
        fg = foreground_by_norm(fmap, iters=iters).view(batch, n)
        bands = band_labels(height, width, edges=edges, device=fmap.device).view(n) - 1  # 0..2

        points = F.normalize(fmap.reshape(batch, channels, n).transpose(1, 2), dim=-1)
        band_onehot = F.one_hot(bands, NUM_BODY_PARTS).float()  # (n, 3)
        init_w = band_onehot.unsqueeze(0) * fg.unsqueeze(-1).float()  # (B, n, 3)
        init_counts = init_w.sum(1).unsqueeze(-1)
        init = torch.bmm(init_w.transpose(1, 2), points) / init_counts.clamp_min(1.0)
        # a band without foreground pixels starts from the band mean over all pixels
        band_all = (band_onehot.t() @ points) / band_onehot.sum(0).clamp_min(1.0)[:, None]
        init = torch.where(init_counts > 0, init, band_all)

        assign, _ = batched_kmeans(points, init, valid=fg, iters=iters)

        # order clusters by mean height -> head, upper, lower
        rows = torch.arange(height, device=fmap.device, dtype=torch.float32)
        rows = rows.repeat_interleave(width)  # (n,)
        onehot = F.one_hot(assign.clamp_min(0), NUM_BODY_PARTS).float() * fg.unsqueeze(-1).float()
        counts = onehot.sum(1)
        mean_row = (onehot * rows[None, :, None]).sum(1) / counts.clamp_min(1.0)
        mean_row = torch.where(counts > 0, mean_row, torch.full_like(mean_row, float(height)))
        rank = mean_row.argsort(dim=1).argsort(dim=1)  # cluster -> position by height
        labels = torch.gather(rank, 1, assign.clamp_min(0)) + 1
        labels = labels.masked_fill(~fg, BACKGROUND)

        frac = fg.float().mean(1)
        degenerate = (frac < min_foreground) | (frac > max_foreground)
        labels = torch.where(degenerate[:, None], (bands + 1)[None, :], labels)
        labels = labels.view(batch, height, width)
        if output_size is not None and tuple(output_size) != (height, width):
            labels = F.interpolate(
                labels[:, None].float(), size=tuple(output_size), mode="nearest"
            )[:, 0].long()
    return labels
