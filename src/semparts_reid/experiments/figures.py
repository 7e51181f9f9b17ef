"""The demo's figures: ``cmc.png``, ``part_maps.png`` and ``ranked.png``.

numpy, PIL and the plotting code are imported inside the functions, so that building
the command line's parser (``semparts-reid --help``) does not load torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["part_map_examples", "ranked_figure", "write_figures"]


def part_map_examples(
    model: Any, records: Sequence[Any], device: str, n: int = 6
) -> tuple[np.ndarray, ...]:
    """Images (N,H,W,3) in [0,1] and predicted part probabilities (N,4,H,W).

    numpy and PIL are imported here, not at the top, so that building the command
    line's parser (``semparts-reid --help``) does not load torch.
    """
    import numpy as np
    from PIL import Image

    from ..inference import predict_part_maps

    picks = np.linspace(0, len(records) - 1, num=min(n, len(records))).astype(int)
    paths = [str(records[i][0]) for i in picks]
    images = []
    for path in paths:
        with Image.open(path) as img:
            images.append(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0)
    stack = np.stack(images)  # the synthetic domains render one image size
    probs = predict_part_maps(model, paths, size=stack.shape[1:3], device=device)
    return stack, np.asarray(probs)


def ranked_figure(model: Any, target: Any, path: Path, mode: str, device: str) -> None:
    """``ranked.png``: 8 evenly spaced target queries and their top 8 gallery images."""
    from ..inference import rank_gallery
    from ..viz import plot_ranked_results

    res = rank_gallery(model, target.query, target.gallery, num_queries=8, top_k=8,
                       mode=mode, device=device)
    query = [target.query[int(i)] for i in res.query_indices]
    plot_ranked_results(
        [str(r[0]) for r in query], [str(r[0]) for r in target.gallery], res.ranks,
        res.matches, path, 8, junk=res.junk,
        titles=[f"id {r[1]} · cam {r[2]}" for r in query],
    )  # fmt: skip


def write_figures(
    out: Path, results: dict[str, Any], part_model: Any, ranked: Any = None,
    mode: str = "concat", device: str = "auto",
) -> None:
    """``cmc.png``, ``part_maps.png`` (``part_model``: ``(model, target)`` of the last
    direction) and ``ranked.png`` (``ranked``: ``(label, (model, target))``, the a -> b
    parts model when that direction ran; default ``part_model``)."""
    from ..viz import PlotUnavailable, plot_cmc_curves, plot_part_maps

    curves = {f"{d}: {m}": row["cmc"] for d, rows in results.items() for m, row in rows.items()}
    try:
        plot_cmc_curves(curves, out / "cmc.png", title="CMC on the target domain")
        if part_model is not None:
            model, target = part_model
            images, probs = part_map_examples(model, target.query, device)
            plot_part_maps(images, probs, out / "part_maps.png")
            label, (model, target) = ranked or ("", part_model)
            ranked_figure(model, target, out / "ranked.png", mode, device)
            print(f"figures: {out / 'cmc.png'}, {out / 'part_maps.png'}, "
                  f"{out / 'ranked.png'} ({label or 'last direction'}, ECN + semantic parts, "
                  f"{mode} feature)")
    except PlotUnavailable as exc:
        print(f"figures skipped: {exc}")
