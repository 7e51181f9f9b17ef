"""Benchmark of :func:`semparts_reid.evaluate_cmc_map` against a per-query reference.

Two scenarios, on synthetic but informative data (identity centroids + camera offsets +
noise, L2-normalised, cosine distances), so the hardest positives sit at realistic
depths rather than uniformly at random:

* **Market-1501 scale**: a ``3368 x 15913`` float32 distance matrix, 751 identities,
  6 cameras. Times ``evaluate_cmc_map`` (median of ``--repeats``) and the slow
  per-query reference (one stable argsort per query, as in the papers) in the same
  run, checks that they agree to 1e-6 and prints the speed-up (targets: >= 20x and
  <= 0.4 s on 2 cores). When ``torchreid`` is importable (it is not a dependency),
  its ``evaluate_rank`` (Cython where its extension is built) is timed on the same
  matrix in the same run; otherwise that line says it was skipped.
* **MSMT17 scale from features**: ``11659 x 82161`` queries x gallery, 3060
  identities, 15 cameras, ``--msmt-dim`` dimensional features (512 by default: at
  2048 the distance matmul alone is ~4 TFLOP, i.e. tens of seconds on 2 cores). Runs in
  a child process so that its peak RSS (``VmHWM``) is its own; prints time
  (distances included) and peak RSS (targets: <= 12 s, < 2 GiB).

A disagreement with the reference is an error (exit 1). A missed target is printed as
``[MISSED]`` and the script exits with status 3 (see ``experiments.targets``). ``--quick`` runs
small shapes and does not check the targets (they are for the full sizes).

Usage::

    python benchmarks/bench_eval.py            # full run
    python benchmarks/bench_eval.py --quick    # small shapes, a few seconds (smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from semparts_reid.experiments.targets import Target, peak_rss_mib, report
from semparts_reid.metrics.rank import evaluate_cmc_map

# targets of the full-size run
MARKET_SPEEDUP = 20.0  # x faster than the per-query reference
MARKET_SECONDS = 0.4  # evaluate_cmc_map on the Market-1501-scale matrix, 2 cores
MSMT_SECONDS = 12.0  # evaluate_cmc_map from features at MSMT17 scale, distances included
MSMT_PEAK_MIB = 2048.0  # peak RSS of the process evaluating at MSMT17 scale


def make_data(
    num_q: int, num_g: int, num_ids: int, num_cams: int, dim: int, seed: int, noise: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features ``(Q, dim)``, ``(G, dim)`` (float32, unit norm) and pids/camids."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((num_ids, dim), dtype=np.float32)
    cam_off = 0.5 * rng.standard_normal((num_cams, dim), dtype=np.float32)
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    q_cams, g_cams = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)

    def feats(pids: np.ndarray, cams: np.ndarray) -> np.ndarray:
        f = np.empty((len(pids), dim), dtype=np.float32)
        for a in range(0, len(pids), 4096):  # in blocks: keep generation's own peak small
            blk = centroids[pids[a : a + 4096]] + cam_off[cams[a : a + 4096]]
            blk += noise * rng.standard_normal(blk.shape, dtype=np.float32)
            f[a : a + 4096] = blk / np.linalg.norm(blk, axis=1, keepdims=True)
        return f

    return feats(q_pids, q_cams), feats(g_pids, g_cams), q_pids, g_pids, q_cams, g_cams


def reference_eval(
    dist: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    max_rank: int = 50,
) -> tuple[np.ndarray, float, float]:
    """Per-query reference: stable argsort of the valid gallery, then CMC/AP/INP."""
    cmc = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(dist.shape[0]):
        keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
        order = np.argsort(dist[i, keep], kind="stable")
        good = g_pids[keep][order] == q_pids[i]
        pos = np.flatnonzero(good)
        if len(pos) == 0:
            continue
        cmc[min(pos[0], max_rank) :] += 1
        aps.append(np.mean(np.arange(1, len(pos) + 1) / (pos + 1)))
        inps.append(len(pos) / (pos[-1] + 1))
    return cmc / len(aps), float(np.mean(aps)), float(np.mean(inps))


def torchreid_evaluator() -> tuple[Callable[..., Any] | None, str]:
    """torchreid's ``evaluate_rank`` and how it runs, or ``None`` and why it is skipped.

    torchreid is not a dependency of this package; it is measured only where it is
    installed.
    """
    try:
        from torchreid.metrics import rank as tr_rank  # optional third-party package
    except ImportError as exc:
        return None, f"torchreid not importable ({type(exc).__name__}: {exc})"
    cython = bool(getattr(tr_rank, "IS_CYTHON_AVAI", False))
    return tr_rank.evaluate_rank, ("Cython" if cython else "pure Python: no Cython extension")


def bench_torchreid(
    dist: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_cams: np.ndarray,
    g_cams: np.ndarray,
    ours_s: float,
    ours_map: float,
    repeats: int,
) -> dict[str, Any]:
    """Time torchreid's ``evaluate_rank`` on the same matrix, when it is importable.

    Returns ``{"available": False, "why": ...}`` or ``{"available": True, "kind": ...,
    "time_s": ..., "ours_faster": ..., "map_diff": ...}``, and prints one line.
    """
    evaluate_rank, kind = torchreid_evaluator()
    if evaluate_rank is None:
        print(f"  torchreid evaluate_rank: skipped, {kind}")
        return {"available": False, "why": kind}
    times = []
    out: Any = None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=50)
        times.append(time.perf_counter() - t0)
    tr_s = float(np.median(times))
    map_diff = abs(float(out[1]) - ours_map)  # (cmc, mAP[, ...]) in every torchreid version
    print(f"  torchreid evaluate_rank ({kind})   median {tr_s:.3f} s over {len(times)} runs "
          f"-> ours {tr_s / ours_s:.1f}x faster; |mAP diff| {map_diff:.1e}")  # fmt: skip
    return {"available": True, "kind": kind, "time_s": tr_s, "ours_faster": tr_s / ours_s,
            "map_diff": map_diff}  # fmt: skip


def bench_market(args: argparse.Namespace) -> dict[str, Any]:
    """The Market-1501-scale comparison; returns the timings and the agreement."""
    shape = (3368, 15913, 751, 6) if not args.quick else (200, 1000, 60, 6)
    qf, gf, qp, gp, qc, gc = make_data(*shape, dim=64, seed=0)
    dist = 1.0 - qf @ gf.T
    print(f"Market-1501 scale: distmat {dist.shape} {dist.dtype}, {shape[2]} ids, "
          f"{shape[3]} cams")  # fmt: skip
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = evaluate_cmc_map(dist, qp, gp, qc, gc, max_rank=50)
        times.append(time.perf_counter() - t0)
    ours = float(np.median(times))
    t0 = time.perf_counter()
    cmc, m_ap, m_inp = reference_eval(dist, qp, gp, qc, gc, max_rank=50)
    ref = time.perf_counter() - t0
    err = max(np.abs(res.cmc - cmc).max(), abs(res.mAP - m_ap), abs(res.mINP - m_inp))
    t0 = time.perf_counter()
    np.argsort(dist, axis=1)
    full_argsort = time.perf_counter() - t0
    print(f"  {res}")
    print(f"  evaluate_cmc_map      median {ours:.3f} s over {args.repeats} runs "
          f"(min {min(times):.3f} s)")  # fmt: skip
    print(f"  per-query reference   {ref:.3f} s    -> speed-up {ref / ours:.1f}x")
    print(f"  (full np.argsort of the matrix alone: {full_argsort:.3f} s)")
    print(f"  max |ours - reference| = {err:.2e}  ({'OK' if err <= 1e-6 else 'MISMATCH'})")
    if err > 1e-6:
        raise SystemExit("evaluate_cmc_map disagrees with the reference")
    torchreid = bench_torchreid(dist, qp, gp, qc, gc, ours, float(res.mAP), args.repeats)
    return {"time_s": ours, "reference_s": ref, "speedup": ref / ours, "max_err": float(err),
            "torchreid": torchreid}  # fmt: skip


def _msmt_child(quick: bool, dim: int, noise: float) -> None:
    shape = (11659, 82161, 3060, 15) if not quick else (300, 2000, 100, 15)
    qf, gf, qp, gp, qc, gc = make_data(*shape, dim=dim, seed=1, noise=noise)
    base = peak_rss_mib()
    t0 = time.perf_counter()
    res = evaluate_cmc_map((qf, gf), qp, gp, qc, gc, metric="cosine", max_rank=50)
    elapsed = time.perf_counter() - t0
    peak = peak_rss_mib()
    out = {"shape": shape, "dim": dim, "time_s": elapsed, "peak_rss_mib": peak,
           "rss_before_eval_mib": base, "metrics": str(res)}  # fmt: skip
    print(json.dumps(out))


def bench_msmt(args: argparse.Namespace) -> dict[str, Any]:
    """The MSMT17-scale run in a child process; returns its JSON (time, peak RSS, ...)."""
    cmd = [sys.executable, __file__, "--_msmt-child", "--msmt-dim", str(args.msmt_dim),
           "--msmt-noise", str(args.msmt_noise)]  # fmt: skip
    if args.quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    q, g, ids, cams = out["shape"]
    feat_mib = (q + g) * out["dim"] * 4 / 2**20
    print(f"MSMT17 scale from features: {q} x {g}, {ids} ids, {cams} cams, dim {out['dim']}")
    print(f"  {out['metrics']}")
    print(f"  time (distances included) {out['time_s']:.2f} s")
    print(f"  peak RSS {out['peak_rss_mib']:.0f} MiB (features alone {feat_mib:.0f} MiB; "
          f"process before evaluating {out['rss_before_eval_mib']:.0f} MiB)")  # fmt: skip
    return out


def targets(market: dict[str, Any], msmt: dict[str, Any] | None) -> list[Target]:
    """The targets of a full run (the MSMT17 ones only when that part ran)."""
    out = [
        Target("Market-1501 scale: speed-up vs per-query reference", market["speedup"], ">=",
               MARKET_SPEEDUP, "x", ".1f"),
        Target("Market-1501 scale: evaluate_cmc_map time", market["time_s"], "<=",
               MARKET_SECONDS, " s", ".3f"),
    ]  # fmt: skip
    if msmt is not None:
        out += [
            Target("MSMT17 scale: time with distances", msmt["time_s"], "<=", MSMT_SECONDS,
                   " s", ".2f"),
            Target("MSMT17 scale: peak RSS", msmt["peak_rss_mib"], "<", MSMT_PEAK_MIB,
                   " MiB", ".0f"),
        ]  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes for a smoke test")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of evaluate_cmc_map")
    p.add_argument("--msmt-dim", type=int, default=512, help="feature dim at MSMT17 scale")
    p.add_argument(
        "--msmt-noise", type=float, default=2.0, help="feature noise (2.0: mAP ~60%% at dim 512)"
    )
    p.add_argument("--skip-msmt", action="store_true", help="only the Market-scale part")
    p.add_argument("--_msmt-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._msmt_child:
        _msmt_child(args.quick, args.msmt_dim, args.msmt_noise)
        return 0
    import torch

    print(f"threads: torch {torch.get_num_threads()}, cpus {os.cpu_count()}")
    market = bench_market(args)
    msmt = None if args.skip_msmt else bench_msmt(args)
    return report(targets(market, msmt), checked=not args.quick, why_unchecked="quick run")


if __name__ == "__main__":
    raise SystemExit(main())
