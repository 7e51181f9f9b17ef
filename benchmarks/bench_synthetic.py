"""Synthetic-domain generation speed on one core.

Generates ``synthetic:a`` and ``synthetic:b`` (default size) into a temporary folder and
reports images per second of CPU time of this process (rendering + JPEG/PNG encoding +
writing) against the 500 images/s target. As a same-run reference it also times the
file writing alone (the same images encoded again), so the ratio says how much of the
time is rendering.

Each domain's images per CPU-second is a target (>= 500). A domain that misses it is
printed as ``[MISSED]`` and the script exits with status 3 (see ``experiments.targets``).
``--size tiny`` (or ``--quick``) is a smoke run: the figures are printed, the target is
not checked.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_synthetic.py [--size default] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from PIL import Image

from semparts_reid.data.synthetic import generate as syn
from semparts_reid.experiments.targets import Target, report

TARGET = 500.0  # images per second on one core

# one row per domain: (domain, images, img/cpu-s, img/wall-s, write-only img/cpu-s)
Row = tuple[str, int, float, float, float]


def targets(rows: list[Row]) -> list[Target]:
    """One target per domain: images per CPU-second >= ``TARGET``."""
    return [
        Target(f"synthetic:{d} images per CPU-second", per_cpu, ">=", TARGET, fmt=".0f")
        for d, _, per_cpu, _, _ in rows
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="default", choices=sorted(syn.SIZE_PRESETS))
    ap.add_argument("--quick", action="store_true", help="same as --size tiny")
    args = ap.parse_args(argv)
    if args.quick:
        args.size = "tiny"
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up outside the timed region: first-use costs (PIL encoders, numpy kernels,
        # the thread pool) are paid once per process, not per image
        syn.generate_synthetic(syn.make_config("a", size="tiny", seed=99), root=tmp, progress=False)
        rows: list[Row] = []
        for domain in ("a", "b"):
            cfg = syn.make_config(domain, size=args.size)
            c0, w0 = time.process_time(), time.perf_counter()
            folder = syn.generate_synthetic(cfg, root=tmp, progress=False)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            n = json.loads((folder / syn.MARKER).read_text())["images"]
            # reference: re-encode the same images (decode outside the timed region)
            files = sorted(folder.rglob("*.jpg"))
            imgs = [np.asarray(Image.open(f)) for f in files]
            parts = [np.asarray(Image.open(f.with_name(f.stem + ".parts.png"))) for f in files]
            out = Path(tmp) / f"ref-{domain}"
            out.mkdir()
            c1 = time.process_time()
            for i, (im, pm) in enumerate(zip(imgs, parts)):
                syn._write_one(str(out / f"{i:06d}"), im, pm, 90)
            ref = time.process_time() - c1
            rows.append((domain, n, n / cpu, n / wall, n / ref))
    print(
        f"{'domain':<7}{'images':>8}{'img/cpu-s':>12}{'img/wall-s':>12}{'write-only':>12}"
        f"{'vs target':>11}{'gen/write':>11}"
    )
    for d, n, per_cpu, per_wall, per_ref in rows:
        print(
            f"{d:<7}{n:>8d}{per_cpu:>12.0f}{per_wall:>12.0f}{per_ref:>12.0f}"
            f"{per_cpu / TARGET:>10.2f}x{per_cpu / per_ref:>10.2f}x"
        )
    print(f"target: >= {TARGET:.0f} images per CPU-second (ratio >= 1.00x)")
    return report(targets(rows), checked=args.size != "tiny", why_unchecked="size tiny")


if __name__ == "__main__":
    raise SystemExit(main())
