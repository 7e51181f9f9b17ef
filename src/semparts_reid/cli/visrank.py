"""``semparts-reid visrank``: a picture of ranked results from a checkpoint.

One row per query: the query image, then its ``--top-k`` nearest gallery images with
green frames for true matches and red ones for false matches; junk (same identity and
same camera, or the query image itself) is greyed out unless ``--hide-junk`` drops it,
as the evaluator does. ``--parts-overlay`` draws each shown image's predicted part map
over it. The work is the library's: :func:`~semparts_reid.inference.rank_gallery`
(features through the ``FeatureExtractor``, the evaluator's junk rule and tie order),
:func:`~semparts_reid.inference.predict_part_maps` and
:func:`~semparts_reid.viz.plot_ranked_results`.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..engine.config import MODES
from .common import EXIT_OK, add_runtime_options, positive_int

__all__ = ["add_parser", "cmd_visrank"]


def _part_maps(model: Any, query: list[Any], gallery: list[Any], ranks: Any,
               args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    """Predicted part maps of the shown images only: ``(query_maps, gallery_maps)``."""
    from ..inference import predict_part_maps

    shown = sorted({int(g) for g in ranks.ravel()})
    paths = [str(r[0]) for r in query] + [str(gallery[g][0]) for g in shown]
    probs = predict_part_maps(model, paths, device=args.device, precision=args.precision,
                              batch_size=args.batch_size)
    g_maps: list[Any] = [None] * len(gallery)
    for j, g in enumerate(shown):
        g_maps[g] = probs[len(query) + j]
    return list(probs[: len(query)]), g_maps


def cmd_visrank(args: argparse.Namespace) -> int:
    """Rank ``--num-queries`` queries of ``--target`` and draw them to ``--output``."""
    import numpy as np

    from ..data.datasets import build_dataset
    from ..inference import load_model_from_checkpoint, rank_gallery
    from ..precision import resolve_precision
    from ..viz import plot_ranked_results

    resolve_precision(args.device, args.precision)  # a bad --device/--precision fails first
    model = load_model_from_checkpoint(args.checkpoint)
    dataset = build_dataset(args.target)
    res = rank_gallery(
        model, dataset.query, dataset.gallery, num_queries=args.num_queries, seed=args.seed,
        top_k=args.top_k, mode=args.mode, metric=args.metric,
        include_junk=not args.hide_junk, device=args.device, precision=args.precision,
        batch_size=args.batch_size,
    )  # fmt: skip
    query = [dataset.query[int(i)] for i in res.query_indices]
    gallery = dataset.gallery
    maps = _part_maps(model, query, gallery, res.ranks, args) if args.parts_overlay else None
    titles = [f"id {r[1]} · cam {r[2] if r[2] >= 0 else '?'}" for r in query]
    out = plot_ranked_results(
        [str(r[0]) for r in query], [str(r[0]) for r in gallery], res.ranks, res.matches,
        args.output, args.top_k, part_maps=maps, junk=res.junk, titles=titles,
    )  # fmt: skip
    first = (~res.junk).argmax(axis=1)  # the first ranked (non-junk) item of each row
    top1 = int(res.matches[np.arange(len(first)), first].sum())
    print(f"visrank: {len(query)} queries of {args.target}, top {res.ranks.shape[1]} "
          f"({args.mode}); a true match first for {top1}/{len(query)}; wrote {out}")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``visrank`` on the sub-parsers action ``sub``."""
    p = sub.add_parser(
        "visrank", help="picture of ranked results: queries and their top-k gallery images"
    )
    p.add_argument("--checkpoint", required=True, help="model checkpoint")
    p.add_argument("--target", required=True, help="dataset spec whose query/gallery are ranked")
    p.add_argument(
        "-o", "--output", default="ranks.png", help="output PNG file (default: ranks.png)"
    )
    p.add_argument(
        "--num-queries", type=positive_int, default=20,
        help="queries drawn, one per row, evenly spaced over the query set (default: 20)",
    )  # fmt: skip
    p.add_argument(
        "--seed", type=int, default=None, help="pick the queries at random with this seed"
    )
    p.add_argument(
        "--top-k", type=positive_int, default=10, help="gallery images per query (default: 10)"
    )
    p.add_argument(
        "--mode", choices=list(MODES), default="global",
        help="retrieval distance, as in 'evaluate' (default: global)",
    )  # fmt: skip
    p.add_argument(
        "--metric", choices=["cosine", "euclidean"], default="cosine",
        help="feature distance (default: cosine)",
    )  # fmt: skip
    p.add_argument(
        "--parts-overlay", action="store_true",
        help="draw each image's predicted part map over it (head, upper, lower body)",
    )  # fmt: skip
    p.add_argument(
        "--hide-junk", action="store_true",
        help="leave out junk (same identity and camera) instead of greying it out",
    )  # fmt: skip
    add_runtime_options(p)
    p.set_defaults(func=cmd_visrank)
