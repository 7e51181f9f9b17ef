"""The ``semparts-reid`` command (also ``python -m semparts_reid``).

Sub-commands: ``demo``, ``train``, ``adapt``, ``evaluate``, ``extract``, ``download``,
``export``, ``datasets``.

Exit codes: 0 success; 2 bad arguments or input, i.e. an argparse error, an
:class:`~semparts_reid.errors.InputError` raised by the library (dataset spec or layout,
missing file, configuration value, wrong checkpoint file) or a failed download, printed
as one line naming the argument or file; 1 anything else (a failure of the library or
the environment), printed as one line with a hint that ``--debug`` shows the traceback;
130 interrupted. ``--debug`` prints the traceback of every error, with the same codes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .cli_args import add_dataclass_arguments
from .errors import InputError

log = logging.getLogger("semparts_reid")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(InputError):
    """A bad command-line argument or input. Printed as one line, exit code 2."""


def _is_user_error(exc: BaseException) -> bool:
    """Bad input: an :class:`InputError`, or a failed download (bad name, URL, hash, offline).

    Nothing else: a ``ValueError`` or ``KeyError`` from anywhere else is a bug, reported
    with exit code 1.
    """
    if isinstance(exc, InputError):
        return True
    download = sys.modules.get(f"{__package__}._download")  # loaded only if a download ran
    return download is not None and isinstance(exc, download.DownloadError)


def _positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit with code 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------- helpers


def _load_feature_file(path: str, argname: str) -> dict[str, Any]:
    """Read a ``.npz`` written by ``semparts-reid extract`` (features, pids, camids)."""
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


def _print_metrics(
    metrics: Any, json_path: str | None, extra: dict[str, Any] | None = None
) -> None:
    print(metrics)
    if json_path:
        from ._io import atomic_write_text

        payload = {**metrics.as_dict(), **(extra or {})}
        atomic_write_text(json_path, json.dumps(payload, indent=2, default=float))
        log.info("wrote %s", json_path)


def _add_runtime_options(p: argparse.ArgumentParser) -> None:
    """Device, batch size and precision of feature extraction."""
    p.add_argument("--device", default="auto", help="auto, cpu or cuda:N (default: auto)")
    p.add_argument(
        "--batch-size", type=_positive_int, default=64, help="extraction batch size (default: 64)"
    )
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="auto: bf16/fp16 autocast where the hardware runs it natively",
    )


def _add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--metric",
        choices=["cosine", "euclidean"],
        default="cosine",
        help="feature distance (default: cosine)",
    )
    p.add_argument(
        "--max-rank", type=_positive_int, default=50, help="longest CMC rank (default: 50)"
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
    p.add_argument("--json", dest="json_path", help="also write the metrics to this JSON file")


# --------------------------------------------------------------------------- commands


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .metrics.rank import evaluate_cmc_map

    if args.query_features or args.gallery_features:
        if not (args.query_features and args.gallery_features):
            raise UsageError("--query-features and --gallery-features must be given together")
        q = _load_feature_file(args.query_features, "--query-features")
        g = _load_feature_file(args.gallery_features, "--gallery-features")
        if q["features"].shape[1] != g["features"].shape[1]:
            raise UsageError(
                f"--query-features has dimension {q['features'].shape[1]}, --gallery-features "
                f"{g['features'].shape[1]}: extract both with the same model"
            )
        first: Any = (q["features"], g["features"])
        if args.rerank:
            from .metrics.rerank import re_ranking_from_features

            first = re_ranking_from_features(q["features"], g["features"], metric=args.metric)
        metrics = evaluate_cmc_map(
            first,
            q["pids"],
            g["pids"],
            q["camids"],
            g["camids"],
            metric=args.metric,
            max_rank=args.max_rank,
            protocol=args.protocol,
            ap_mode=args.ap_mode,
        )
        _print_metrics(metrics, args.json_path)
        return EXIT_OK
    if not (args.checkpoint and args.target):
        raise UsageError(
            "give either --query-features and --gallery-features, or --checkpoint and --target"
        )
    from .data.datasets import build_dataset
    from .engine.evaluation import distance_matrix, extract_features
    from .inference.extractor import load_model_from_checkpoint
    from .precision import resolve_precision

    policy = resolve_precision(args.device, args.precision)  # cheap checks first
    model = policy.prepare_module(load_model_from_checkpoint(args.checkpoint))
    dataset = build_dataset(args.target)
    kw: dict[str, Any] = {
        "policy": policy,
        "data_config": model.data_config,
        "batch_size": args.batch_size,
    }
    q = extract_features(model, dataset.query, **kw)
    g = extract_features(model, dataset.gallery, **kw)
    dist: Any = distance_matrix(q, g, args.mode, args.metric)
    if args.rerank:
        from .metrics.rerank import re_ranking

        dist = re_ranking(
            dist,
            distance_matrix(q, q, args.mode, args.metric),
            distance_matrix(g, g, args.mode, args.metric),
        )
    metrics = evaluate_cmc_map(
        dist,
        q["pids"].numpy(),
        g["pids"].numpy(),
        q["camids"].numpy(),
        g["camids"].numpy(),
        max_rank=args.max_rank,
        protocol=args.protocol,
        ap_mode=args.ap_mode,
    )
    _print_metrics(metrics, args.json_path, {"checkpoint": args.checkpoint, "target": args.target})
    return EXIT_OK


def _collect_images(inputs: Sequence[str]) -> list[str]:
    """Expand folders and ``.txt`` list files into a sorted list of image paths."""
    exts = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
    paths: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                str(f)
                for f in p.rglob("*")
                if f.suffix.lower() in exts and not f.name.endswith(".parts.png")
            )
            if not found:
                raise UsageError(
                    f"inputs: folder {item} holds no images ({', '.join(sorted(exts))})"
                )
            paths.extend(found)
        elif p.is_file() and p.suffix.lower() == ".txt":
            lines = [ln.split()[0] for ln in p.read_text().splitlines() if ln.strip()]
            paths.extend(str((p.parent / ln) if not Path(ln).is_absolute() else ln) for ln in lines)
        elif p.is_file():
            paths.append(str(p))
        else:
            raise UsageError(f"inputs: no such file or folder: {item}")
    return paths


def cmd_extract(args: argparse.Namespace) -> int:
    import numpy as np

    from ._io import atomic_save_numpy
    from .inference.extractor import FeatureExtractor

    source = args.checkpoint or args.model
    if not source:
        raise UsageError("give --checkpoint FILE or --model NAME")
    out = Path(args.output)
    if out.suffix not in (".npy", ".npz"):
        raise UsageError(f"--output: {args.output} must end in .npy or .npz")
    extra: dict[str, Any] = {}
    if args.dataset:
        from .data.datasets import build_dataset

        records = getattr(build_dataset(args.dataset), args.split)
        paths = [r.path for r in records]
        extra = {
            "pids": np.array([r.pid for r in records]),
            "camids": np.array([r.camid for r in records]),
        }
    elif args.inputs:
        paths = _collect_images(args.inputs)
    else:
        raise UsageError("give image files/folders/list files, or --dataset SPEC --split SPLIT")
    extractor = FeatureExtractor(
        source,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        flip=args.flip,
    )
    feats = extractor(paths, return_numpy=True)
    if out.suffix == ".npy":
        atomic_save_numpy(out, feats)
    else:
        atomic_save_numpy(out, feats, paths=np.array(paths), **extra)
    print(f"wrote {len(paths)} features of dimension {feats.shape[1]} to {out}")
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    from .hub import download_weights, list_pretrained

    if args.list or not args.names:
        for name in list_pretrained():
            print(name)
        return EXIT_OK
    for name in args.names:
        path = download_weights(name, cache_dir=args.cache_dir, progress=not args.quiet)
        print(path)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from .inference.export import export_onnx
    from .inference.extractor import load_model_from_checkpoint

    model = load_model_from_checkpoint(args.checkpoint)
    path = export_onnx(model, args.output, dynamic_batch=not args.static_batch)
    print(f"wrote {path}")
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from .data.datasets import build_dataset, list_datasets

    if not args.specs:
        print("known datasets: " + ", ".join(list_datasets()))
        print("spec format: NAME:PATH (e.g. market1501:/data/Market-1501-v15.09.15) or synthetic:a")
        return EXIT_OK
    for spec in args.specs:
        dataset = build_dataset(spec)
        print(f"{spec}")
        print(dataset.summary_table())
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from .runner import run_training

    return run_training(args, adapt=False)


def cmd_adapt(args: argparse.Namespace) -> int:
    from .runner import run_training

    return run_training(args, adapt=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(
        out_dir=args.out,
        quick=args.quick,
        directions=args.direction,
        seed=args.seed,
        device=args.device,
    )
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def _add_train_arguments(p: argparse.ArgumentParser, *, adapt: bool) -> None:
    from .engine.config import TrainConfig

    p.add_argument(
        "--source", required=True, help="labeled source dataset spec, e.g. market1501:/data/Market"
    )
    p.add_argument(
        "--target",
        required=adapt,
        help="unlabeled target dataset spec (evaluated on its query/gallery)"
        + ("" if adapt else "; optional: evaluation only"),
    )
    p.add_argument(
        "--resume", help="checkpoint to resume from (restores config, optimiser, memory, RNG)"
    )
    if adapt:
        p.add_argument(
            "--init",
            help="source-trained checkpoint to start adaptation from (skips source pre-training)",
        )
    group = p.add_argument_group("training configuration (TrainConfig fields)")
    add_dataclass_arguments(group, TrainConfig, exclude=("source", "target"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="semparts-reid",
        description="Cross-domain person re-identification with semantic part features.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of every error (exit codes unchanged) and debug logs",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "demo", help="synthetic a<->b: source training, direct transfer, ECN, ECN + parts"
    )
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--quick", action="store_true", help="tiny run (<= 60 s) used by the tests")
    p.add_argument(
        "--direction",
        choices=["both", "a2b", "b2a"],
        default="both",
        help="adaptation direction(s) (default: both)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda:N (default: auto)")
    p.set_defaults(func=cmd_demo)

    for name, adapt, help_text in (
        ("train", False, "source-only training on a labeled dataset"),
        (
            "adapt",
            True,
            "joint training: labeled source + unlabeled target with the exemplar memory",
        ),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_train_arguments(p, adapt=adapt)
        p.set_defaults(func=cmd_adapt if adapt else cmd_train)

    p = sub.add_parser(
        "evaluate", help="CMC / mAP from saved features, or from a checkpoint and a dataset"
    )
    p.add_argument("--query-features", help=".npz from 'extract' with features, pids, camids")
    p.add_argument("--gallery-features", help=".npz from 'extract' with features, pids, camids")
    p.add_argument("--checkpoint", help="model checkpoint to extract features with")
    p.add_argument("--target", help="dataset spec whose query/gallery are evaluated")
    p.add_argument(
        "--mode",
        choices=["global", "concat", "parts"],
        default="global",
        help="global feature, global+parts concatenated, or visibility-aware part distance",
    )
    _add_runtime_options(p)
    _add_eval_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "extract", help="images (files, folders, .txt lists, or a dataset split) -> features"
    )
    p.add_argument("inputs", nargs="*", help="image files, folders or .txt list files")
    p.add_argument("--dataset", help="dataset spec instead of inputs (pids/camids are saved too)")
    p.add_argument(
        "--split",
        choices=["train", "query", "gallery"],
        default="query",
        help="split of --dataset (default: query)",
    )
    p.add_argument("--checkpoint", help="model checkpoint (carries its data config)")
    p.add_argument(
        "--model", help="build_model name instead of a checkpoint (random or ImageNet weights)"
    )
    p.add_argument(
        "-o", "--output", required=True, help="output .npy (features) or .npz (with paths, ids)"
    )
    _add_runtime_options(p)
    p.add_argument("--flip", action="store_true", help="average with horizontally flipped images")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("download", help="download pretrained weights into the cache")
    p.add_argument("names", nargs="*", help="registry names or URLs (none: list the registry)")
    p.add_argument("--list", action="store_true", help="list the registry")
    p.add_argument(
        "--cache-dir",
        help="folder to download into (default: $SEMPARTS_REID_HOME/weights, "
        "$SEMPARTS_REID_HOME defaulting to ~/.cache/semparts_reid)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("export", help="export a checkpoint to ONNX (needs the 'onnx' extra)")
    p.add_argument("checkpoint", help="model checkpoint")
    p.add_argument("-o", "--output", required=True, help="output .onnx file")
    p.add_argument("--static-batch", action="store_true", help="fixed batch size of 1")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("datasets", help="show the summary (ids, images, cameras) of dataset specs")
    p.add_argument("specs", nargs="*", help="dataset specs (none: list the known dataset names)")
    p.set_defaults(func=cmd_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else (logging.INFO if args.verbose else logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("semparts-reid: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        user = _is_user_error(exc)
        if args.debug:
            traceback.print_exc()
        if user:
            print(f"semparts-reid {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        first = str(text).strip().splitlines()[0] if str(text).strip() else ""
        hint = "" if args.debug else " (run with --debug for the traceback)"
        print(
            f"semparts-reid {args.command}: unexpected {type(exc).__name__}: {first}{hint}",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
