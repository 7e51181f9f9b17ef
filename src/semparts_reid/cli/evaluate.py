"""``semparts-reid evaluate``: CMC / mAP from saved features, or from a checkpoint and a dataset.

* ``--query-features Q.npz --gallery-features G.npz``: the ``.npz`` files that
  ``semparts-reid extract --dataset ...`` writes, scored by
  :func:`~semparts_reid.metrics.rank.evaluate_cmc_map` (re-ranked by
  :func:`~semparts_reid.metrics.rerank.re_ranking_from_features` with ``--rerank``);
* ``--checkpoint FILE --target SPEC``: the checkpoint's model on the target's
  query/gallery through :func:`~semparts_reid.inference.evaluate_model`, the library's
  one evaluation path (the trainer and the demo score through it too); ``--pooling``,
  ``--last-stride`` and ``--num-workers`` as in :mod:`semparts_reid.cli.model_options`.

Either way the query image itself (the same path among the gallery's, where the feature
files hold ``paths``) is removed from its gallery, and a line ``protocol: ...`` says
which camera rule ran (camera id ``-1`` is unknown; ``docs/evaluation.md``).
``-o/--output FILE`` also writes the metrics as JSON (``--json`` is its deprecated
spelling).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..engine.config import MODES
from .common import (
    EXIT_OK,
    UsageError,
    add_runtime_options,
    positive_int,
    print_metrics,
)
from .model_options import add_model_options, model_from_args

__all__ = ["add_parser", "cmd_evaluate", "load_feature_file"]


def load_feature_file(path: str, argname: str) -> dict[str, Any]:
    """Read a ``.npz`` written by ``semparts-reid extract`` (features, pids, camids).

    Args:
        path: the file.
        argname: the flag it came from, named in errors.

    Returns:
        Every array of the file by name; ``features`` is ``(N, D)`` and finite,
        ``pids`` / ``camids`` are ``(N,)`` integers.

    Raises:
        UsageError: missing or unreadable file, missing arrays, wrong shapes or dtypes,
            non-finite features.
    """
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{argname}: no such file: {path}")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for bad files
        raise UsageError(f"{argname}: {path} is not a readable .npz feature file ({exc})") from exc
    missing = [k for k in ("features", "pids", "camids") if k not in data.files]
    if missing:
        raise UsageError(
            f"{argname}: {path} lacks {missing}; expected an .npz with 'features' (N, D), "
            "'pids' (N,) and 'camids' (N,), as written by 'semparts-reid extract --dataset ...'"
        )
    out = {k: data[k] for k in data.files}
    feats = out["features"]
    if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.number) or feats.shape[1] < 1:
        raise UsageError(
            f"{argname}: {path}: 'features' has shape {feats.shape} and dtype {feats.dtype}; "
            "expected (N, D) numbers"
        )
    if not np.isfinite(feats).all():
        raise UsageError(f"{argname}: {path}: 'features' holds NaN or infinite values")
    for key in ("pids", "camids"):
        if out[key].shape != (len(feats),) or not np.issubdtype(out[key].dtype, np.integer):
            raise UsageError(
                f"{argname}: {path}: '{key}' has shape {out[key].shape} and dtype "
                f"{out[key].dtype}; expected ({len(feats)},) integers, one per feature row"
            )
    return out


def _evaluate_features(args: argparse.Namespace) -> Any:
    """Metrics of two feature files (``--query-features`` / ``--gallery-features``)."""
    from ..metrics.rank import evaluate_cmc_map

    if not (args.query_features and args.gallery_features):
        raise UsageError("--query-features and --gallery-features must be given together")
    given = [f for f, v in (("--pooling", args.pooling), ("--last-stride", args.last_stride),
                            ("--num-workers", args.num_workers)) if v is not None]
    if given:
        raise UsageError(f"{', '.join(given)} apply to --checkpoint, not to saved features")
    q = load_feature_file(args.query_features, "--query-features")
    g = load_feature_file(args.gallery_features, "--gallery-features")
    if q["features"].shape[1] != g["features"].shape[1]:
        raise UsageError(
            f"--query-features has dimension {q['features'].shape[1]}, --gallery-features "
            f"{g['features'].shape[1]}: extract both with the same model"
        )
    first: Any = (q["features"], g["features"])
    if args.rerank:
        from ..metrics.rerank import re_ranking_from_features

        first = re_ranking_from_features(q["features"], g["features"], metric=args.metric)
    own = None
    if "paths" in q and "paths" in g:  # the query image itself is never its own match
        from ..inference.evaluation import query_gallery_index

        own = query_gallery_index([str(p) for p in q["paths"]], [str(p) for p in g["paths"]])
    return evaluate_cmc_map(
        first,
        q["pids"],
        g["pids"],
        q["camids"],
        g["camids"],
        metric=args.metric,
        max_rank=args.max_rank,
        protocol=args.protocol,
        ap_mode=args.ap_mode,
        query_in_gallery=own,
    )


def _evaluate_checkpoint(args: argparse.Namespace) -> Any:
    """Metrics of ``--checkpoint`` on ``--target``'s query/gallery (``evaluate_model``)."""
    from ..data.datasets import build_dataset
    from ..inference import evaluate_model
    from ..precision import resolve_precision

    resolve_precision(args.device, args.precision)  # a bad --device/--precision fails first
    model = model_from_args(args)
    dataset = build_dataset(args.target)
    return evaluate_model(
        model,
        dataset.query,
        dataset.gallery,
        mode=args.mode,
        metric=args.metric,
        rerank=args.rerank,
        protocol=args.protocol,
        ap_mode=args.ap_mode,
        max_rank=args.max_rank,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print (and with ``-o`` write) the metrics; see the module docstring."""
    if args.query_features or args.gallery_features:
        print_metrics(_evaluate_features(args), args.output)
        return EXIT_OK
    if not (args.checkpoint and args.target):
        raise UsageError(
            "give either --query-features and --gallery-features, or --checkpoint and --target"
        )
    metrics = _evaluate_checkpoint(args)
    print_metrics(metrics, args.output, {"checkpoint": args.checkpoint, "target": args.target})
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``evaluate`` on the sub-parsers action ``sub``."""
    p = sub.add_parser(
        "evaluate", help="CMC / mAP of a checkpoint on a dataset, or of saved features"
    )
    p.add_argument("--query-features", help=".npz from 'extract' with features, pids, camids")
    p.add_argument("--gallery-features", help=".npz from 'extract' with features, pids, camids")
    p.add_argument("--checkpoint", help="model checkpoint to extract features with")
    p.add_argument("--target", help="dataset spec whose query/gallery are evaluated")
    p.add_argument(
        "--mode",
        choices=list(MODES),
        default="global",
        help="global feature, global+parts concatenated, or visibility-aware part distance",
    )
    add_runtime_options(p)
    add_model_options(p)
    p.add_argument(
        "--metric",
        choices=["cosine", "euclidean"],
        default="cosine",
        help="feature distance (default: cosine)",
    )
    p.add_argument(
        "--max-rank", type=positive_int, default=50, help="longest CMC rank (default: 50)"
    )
    p.add_argument(
        "--protocol",
        choices=["market1501", "cuhk03"],
        default="market1501",
        help="evaluation protocol (default: market1501)",
    )
    p.add_argument(
        "--ap-mode",
        choices=["standard", "trapezoid"],
        default="standard",
        help="non-interpolated AP (standard) or the official Market-1501 "
        "MATLAB / ECN trapezoidal AP",
    )
    p.add_argument("--rerank", action="store_true", help="apply k-reciprocal re-ranking")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="also write the metrics to this JSON file"
    )
    p.set_defaults(func=cmd_evaluate)
