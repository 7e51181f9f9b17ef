"""``semparts-reid extract``: images (files, folders, ``.txt`` lists, a dataset split) -> features.

Features come from a :class:`~semparts_reid.inference.FeatureExtractor` and are saved
atomically: ``.npy`` holds the ``(N, D)`` features alone, ``.npz`` the features, the
image paths and, for ``--dataset``, the ``pids`` / ``camids`` that
``semparts-reid evaluate --query-features`` reads. ``--pooling``, ``--last-stride`` and
``--num-workers``: see :mod:`semparts_reid.cli.model_options`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import EXIT_OK, UsageError, add_runtime_options
from .model_options import add_model_options, model_from_args

__all__ = ["IMAGE_SUFFIXES", "add_parser", "cmd_extract", "collect_images"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def collect_images(inputs: Sequence[str]) -> list[str]:
    """Expand the command's inputs into image paths.

    A folder gives its images (recursively, sorted; part label maps ``*.parts.png``
    left out); a ``.txt`` file gives the first column of each non-empty line, relative
    to the list's folder unless absolute; any other file is taken as an image.

    Raises:
        UsageError: an input that does not exist, or a folder without images.
    """
    paths: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                str(f)
                for f in p.rglob("*")
                if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.endswith(".parts.png")
            )
            if not found:
                raise UsageError(
                    f"inputs: folder {item} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
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
    """Extract and save the features; see the module docstring."""
    import numpy as np

    from .._io import atomic_save_numpy
    from ..inference import FeatureExtractor

    if not (args.checkpoint or args.model):
        raise UsageError("give --checkpoint FILE or --model NAME")
    out = Path(args.output)
    if out.suffix not in (".npy", ".npz"):
        raise UsageError(f"--output: {args.output} must end in .npy or .npz")
    extra: dict[str, Any] = {}
    if args.dataset:
        from ..data.datasets import build_dataset

        records = getattr(build_dataset(args.dataset), args.split)
        paths = [r.path for r in records]
        extra = {
            "pids": np.array([r.pid for r in records]),
            "camids": np.array([r.camid for r in records]),
        }
    elif args.inputs:
        paths = collect_images(args.inputs)
    else:
        raise UsageError("give image files/folders/list files, or --dataset SPEC --split SPLIT")
    extractor = FeatureExtractor(
        model_from_args(args),
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        flip=args.flip,
        num_workers=args.num_workers,
    )
    feats = extractor(paths, return_numpy=True)
    if out.suffix == ".npy":
        atomic_save_numpy(out, feats)
    else:
        atomic_save_numpy(out, feats, paths=np.array(paths), **extra)
    print(f"wrote {len(paths)} features of dimension {feats.shape[1]} to {out}")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``extract`` on the sub-parsers action ``sub``."""
    p = sub.add_parser(
        "extract", help="features of image files, folders, lists or a dataset split"
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
        "-o", "--output", required=True, metavar="FILE",
        help="output .npy (features) or .npz (with paths, ids)",
    )
    add_runtime_options(p)
    add_model_options(p)
    p.add_argument("--flip", action="store_true", help="average with horizontally flipped images")
    p.set_defaults(func=cmd_extract)
