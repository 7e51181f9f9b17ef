"""``semparts-reid download`` and ``export``: pretrained weights in, ONNX models out.

* ``download [NAME|URL ...]``: :func:`~semparts_reid.hub.download_weights` into the
  cache or ``--output-dir`` (``--cache-dir``: its deprecated spelling; no names, or
  ``--list``: the registry of :func:`~semparts_reid.hub.list_pretrained`);
* ``export CHECKPOINT -o FILE.onnx``: :func:`~semparts_reid.inference.export_onnx` of
  the checkpoint's model (needs the ``onnx`` extra).
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK

__all__ = ["add_parsers", "cmd_download", "cmd_export"]


def cmd_download(args: argparse.Namespace) -> int:
    """Print the registry, or download each name and print the cached file's path."""
    from ..hub import download_weights, list_pretrained

    if args.list or not args.names:
        for name in list_pretrained():
            print(name)
        return EXIT_OK
    for name in args.names:
        path = download_weights(name, cache_dir=args.output_dir, progress=not args.quiet)
        print(path)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export the checkpoint's model to ONNX and print the file written."""
    from ..inference import export_onnx, load_model_from_checkpoint

    model = load_model_from_checkpoint(args.checkpoint)
    path = export_onnx(model, args.output, dynamic_batch=not args.static_batch)
    print(f"wrote {path}")
    return EXIT_OK


def add_parsers(sub: Any) -> None:
    """Register ``download`` and ``export`` on the sub-parsers action ``sub``."""
    p = sub.add_parser("download", help="download pretrained weights into the cache")
    p.add_argument("names", nargs="*", help="registry names or URLs (none: list the registry)")
    p.add_argument("--list", action="store_true", help="list the registry")
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        help="folder to download into (default: the cache, $SEMPARTS_REID_HOME/weights, "
        "$SEMPARTS_REID_HOME defaulting to ~/.cache/semparts_reid)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("export", help="export a checkpoint to ONNX (needs the 'onnx' extra)")
    p.add_argument("checkpoint", help="model checkpoint")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output .onnx file")
    p.add_argument("--static-batch", action="store_true", help="fixed batch size of 1")
    p.set_defaults(func=cmd_export)
