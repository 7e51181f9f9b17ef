"""A 1-minute camera adapted end to end on 2 cores: parse, adapt, evaluate, timed.

A minute of a camera at 25 fps: the real frames of a MOTChallenge sequence
(``--loop``, default TUD-Stadtmitte from ``../shared/data/mot15``: 179 frames, 7 s)
played in a loop to ``--seconds`` of video, its ground-truth boxes written as detections
without ids (``det/det.txt``). The people repeat every loop; the crops are real, so the
parser sees real pedestrians, and the crop count is a real camera's (about 6.5 people a
frame). ``--quick`` uses a generated sequence instead (``data.synthetic.walkers``). Each
step is what a user runs, timed on the wall clock:

1. **read**: ``build_dataset("mot:SEQ?source=det")``, every detection cut out of its
   frame into the crop cache;
2. **parse**: ``semparts-reid parse`` (MediaPipe, the ``[parser]`` extra; ``--parser-python``
   runs it with another interpreter that has the extra);
3. **adapt**: the ``video`` recipe from a source checkpoint, the real-camera schedule
   (``experiments.video.CAMERA_SETTINGS``: 4 epochs), IoU-tracker tracklets as
   must-links, the parser's maps as the target's part labels;
4. **evaluate**: re-association on the later half of the frames.

The re-association score on a looped sequence is not a result (the same people come back
every loop); the times are. The source model
(``--source-checkpoint``, default seed 0 of ``bench_real_camera.py``) is not timed: a
user has one.

Target (issue 23): parse + adapt + evaluate of a 1-minute 25 fps sequence in <= 10
minutes on 2 cores. ``--quick``: 60 frames, targets not checked.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from semparts_reid.data import build_dataset
from semparts_reid.data.synthetic.walkers import write_walkers_sequence
from semparts_reid.experiments import DemoSettings
from semparts_reid.experiments.targets import Target, report, write_results
from semparts_reid.experiments.video import (
    CAMERA_SETTINGS,
    camera_method,
    reassociation_rows,
)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work"
#: --quick: the demo's tiny schedule (a smoke run of every step)
QUICK = DemoSettings.quick()


def loop_sequence(src: Path, out: Path, frames: int) -> Path:
    """``src``'s frames played in a loop to ``frames`` frames, as a MOT sequence folder with
    ``img1/`` and its ground-truth boxes as ``det/det.txt`` (ids dropped) and ``gt/gt.txt``
    (each loop's people get new ids, so no query matches a loop it is not in)."""
    import numpy as np
    from PIL import Image

    from semparts_reid.data.mot_format import read_mot_boxes, read_seqinfo
    from semparts_reid.data.mot_frames import iter_frames

    info = read_seqinfo(src)
    boxes = read_mot_boxes(src / "gt" / "gt.txt", "gt", info)
    images = dict(iter_frames(info, np.arange(1, info.length + 1)))
    (out / "img1").mkdir(parents=True, exist_ok=True)
    gt, det = [], []
    for f in range(1, frames + 1):
        loop, g = divmod(f - 1, info.length)
        Image.fromarray(images[g + 1]).save(out / "img1" / f"{f:06d}.jpg", quality=90)
        for i in np.flatnonzero(boxes.frame == g + 1):
            x1, y1, x2, y2 = boxes.box[i].tolist()  # 0-based, clipped to the frame
            x, y, w, h = x1 + 1, y1 + 1, x2 - x1, y2 - y1
            pid = int(boxes.track[i]) + 1000 * loop
            gt.append(f"{f},{pid},{x},{y},{w},{h},1,-1,-1,-1")
            det.append(f"{f},-1,{x},{y},{w},{h},1,-1,-1,-1")
    for name, rows in (("gt", gt), ("det", det)):
        (out / name).mkdir(exist_ok=True)
        (out / name / f"{name}.txt").write_text("\n".join(rows) + "\n")
    (out / "seqinfo.ini").write_text(
        f"[Sequence]\nname={out.name}\nimDir=img1\nframeRate={info.frame_rate}\n"
        f"seqLength={frames}\nimWidth={info.width}\nimHeight={info.height}\nimExt=.jpg\n")
    return out


def _env(python: str) -> dict[str, str]:
    env = dict(os.environ)
    if python != sys.executable:  # an interpreter with the [parser] extra, this source
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                          env.get("PYTHONPATH")]))
    return env


def has_parser(python: str) -> bool:
    """Whether ``python`` can import MediaPipe (the ``[parser]`` extra)."""
    probe = [python, "-c", "from semparts_reid.parsers.mediapipe_backend import "
             "import_mediapipe; import_mediapipe()"]
    return subprocess.run(probe, env=_env(python), capture_output=True).returncode == 0


def parse_step(spec: str, out: Path, python: str) -> float:
    """``semparts-reid parse`` in a subprocess of ``python``; its wall time."""
    env = _env(python)
    t0 = time.perf_counter()
    subprocess.run([python, "-m", "semparts_reid", "parse", spec, "--output-dir", str(out),
                    "--split", "train", "--no-progress"], check=True, env=env)
    return time.perf_counter() - t0


def adapt_step(spec: str, maps: Path | None, source_ckpt: Path, work: Path,
               settings: DemoSettings) -> tuple[Any, Any, float]:
    """The video recipe's adaptation from ``source_ckpt`` (without ``maps``: the
    classifier's own part labels); (model, target, seconds)."""
    from semparts_reid.experiments import adapt_from, synthetic_spec

    source = build_dataset(synthetic_spec("a", settings, 0))
    target = build_dataset(spec)
    parser = () if maps is None else (("parser_maps", str(maps)),
                                      ("parser_domains", "target"), ("part_labels", "parser"))
    method = camera_method("video recipe", parser)
    t0 = time.perf_counter()
    _, model = adapt_from(settings, method, source_ckpt, source, target, work, 0, "cpu")
    return model, target, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="length of the video")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--loop", type=Path, default=ROOT.parent / "shared" / "data" / "mot15" /
                   "TUD-Stadtmitte", help="the real sequence played in a loop")
    p.add_argument("--people", type=int, default=4, help="--quick: generated people")
    p.add_argument("--size", type=int, nargs=2, default=(120, 200), metavar=("H", "W"),
                   help="--quick: generated frame size")
    p.add_argument("--source-checkpoint", type=Path,
                   default=WORK / "real_camera" / "seed_0" / "source" / "source_final.pt")
    p.add_argument("--parser-python",
                   default=os.environ.get("SEMPARTS_PARSER_PYTHON", sys.executable),
                   help="interpreter with the [parser] extra for the parse step (default: "
                   "$SEMPARTS_PARSER_PYTHON, else this one)")
    p.add_argument("--work-dir", type=Path, default=WORK / "camera_pipeline")
    p.add_argument("--output", type=Path, default=None, help="results JSON")
    p.add_argument("--quick", action="store_true", help="60 frames; targets not checked")
    args = p.parse_args(argv)
    if not args.source_checkpoint.is_file():
        sys.exit(f"bench_camera_pipeline: no source checkpoint at {args.source_checkpoint} "
                 "(run benchmarks/bench_real_camera.py first, or pass --source-checkpoint)")
    frames = 60 if args.quick else int(args.seconds * args.fps)
    work = args.work_dir
    if args.quick:
        seq = write_walkers_sequence(work / "seq", num_frames=frames, num_people=args.people,
                                     height=args.size[0], width=args.size[1], fps=args.fps)
    else:
        seq = loop_sequence(args.loop, work / "seq", frames)
    spec = f"mot:{seq}?source=det&gap={args.fps}&stride=5&cache={work / 'crops'}"
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    target = build_dataset(spec)
    times["read"] = time.perf_counter() - t0
    print(f"{frames} frames at {args.fps} fps, {len(target.train)} crops to adapt on, "
          f"{len(target.eval)} to score; read in {times['read']:.1f} s", flush=True)
    parser = has_parser(args.parser_python)
    if parser:
        times["parse"] = parse_step(spec, work / "parts", args.parser_python)
        print(f"parse: {times['parse']:.1f} s", flush=True)
    else:
        print("parse: skipped, no [parser] extra in --parser-python (targets not checked)")
    settings = QUICK if args.quick else CAMERA_SETTINGS
    model, target, times["adapt"] = adapt_step(
        spec, work / "parts" if parser else None, args.source_checkpoint, work / "adapt",
        settings)
    print(f"adapt: {times['adapt']:.1f} s", flush=True)
    t0 = time.perf_counter()
    rows = reassociation_rows(model, target)
    times["evaluate"] = time.perf_counter() - t0
    total = sum(times.values())
    print(f"evaluate: {times['evaluate']:.1f} s (re-association mAP "
          f"{100 * rows['global + parts']['mAP']:.1f}: not a result, every loop's people "
          "have new ids)")
    print(f"end to end: {total:.1f} s on {os.cpu_count()} cores")
    if args.output:
        write_results(args.output, {"frames": frames, "fps": args.fps,
                                    "train_crops": len(target.train),
                                    "eval_crops": len(target.eval), "seconds": times})
    return report([Target(f"a {frames / args.fps:.0f} s sequence parsed, adapted and scored",
                          total / 60, "<=", 10, " min", ".1f")],
                  checked=not args.quick and parser)


if __name__ == "__main__":
    raise SystemExit(main())
