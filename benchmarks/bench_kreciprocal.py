"""Benchmark of the sparse k-reciprocal encoding: re-ranking and Jaccard + DBSCAN.

Every case runs in its own child interpreter, so that its peak RSS (``VmHWM``) is its
own; times exclude imports and data generation. Features are informative: identity
centroids + camera offsets + noise, L2-normalised, dim 2048 (``make_data`` of
``bench_eval.py``).

* **Re-ranking at Market-1501 scale** (3,368 x 15,913): ours
  (``re_ranking_from_features``, distances included) against torchreid 0.2.5's
  ``re_ranking`` in the same run (``torchreid.reid.utils.rerank``; its file alone when the
  package does not import). torchreid gets the three distance matrices of the very tiles
  ours searches (their time is printed apart), so the two must agree to 1e-5; their
  CMC/mAP are compared too. Targets: <= 9 s, >= 10x faster, <= 1.5 GiB peak, equal to 1e-5.
* **Re-ranking at MSMT17 scale** (11,659 x 82,161; torchreid would need > 100 GB): ours
  only. Targets: <= 3 min, <= 6 GiB.
* **Jaccard + DBSCAN** (``jaccard_distance(k1=30, k2=6, max_distance=0.6)`` then
  scikit-learn's DBSCAN, eps 0.6, min_samples 4: the trainer's clustering path) on
  16,522, 32,621 and 100,000 items: time and peak of each; the dense reference
  (``N x N`` arrays, one item at a time, as the public clustering code does) at 16,522,
  with its agreement. Targets: 16,522 in <= 20 s and <= 2 GiB, 100,000 in <= 4 min and
  <= 8 GiB.

A missed target prints ``[MISSED]`` and the script exits 3 (``experiments.targets``); a
disagreement beyond the bound is one of the targets. ``--quick`` runs small shapes and
checks nothing. ``--json PATH`` writes every figure.

Usage::

    python benchmarks/bench_kreciprocal.py            # full run (~10 min on 2 cores)
    python benchmarks/bench_kreciprocal.py --quick    # smoke test, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench_eval import make_data
from semparts_reid.experiments.targets import Target, peak_rss_mib, report

GIB = 1024.0  # MiB
MARKET = {"q": 3368, "g": 15913, "ids": 751, "cams": 6, "dim": 2048}
MSMT = {"q": 11659, "g": 82161, "ids": 3060, "cams": 15, "dim": 2048}
JACCARD_SIZES = (16522, 32621, 100000)
QUICK = {"market": {"q": 200, "g": 1000, "ids": 60, "cams": 6, "dim": 64},
         "msmt": {"q": 400, "g": 2400, "ids": 150, "cams": 15, "dim": 64},
         "jaccard": (1000, 2000, 3000), "jaccard_dim": 256}  # fmt: skip
NOISE = 1.5
EPS = 0.6  # DBSCAN's eps; jaccard_distance keeps pairs up to it, as engine.clustering does


def torchreid_rerank() -> tuple[Any, str]:
    """torchreid's ``re_ranking`` and where it came from, or ``None`` and why not."""
    try:
        from torchreid.reid.utils.rerank import re_ranking  # optional third-party package

        return re_ranking, "torchreid.reid.utils.rerank"
    except ImportError as exc:
        why = f"{type(exc).__name__}: {exc}"
    import importlib.machinery
    import importlib.util

    spec = importlib.machinery.PathFinder.find_spec("torchreid")
    locs = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locs[0], "reid", "utils", "rerank.py") if locs else None
    if path is None or not path.exists():
        return None, f"torchreid not importable ({why})"
    mod_spec = importlib.util.spec_from_file_location("_torchreid_rerank", path)
    assert mod_spec is not None and mod_spec.loader is not None
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)  # the file needs numpy only
    return mod.re_ranking, f"{path} (its file alone: the package does not import, {why})"


def _split_matrices(q: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, ...]:
    """``qg, qq, gg`` of the tiles ``re_ranking_from_features`` searches (same values)."""
    from semparts_reid.metrics import knn

    nq = len(q)
    prov = knn.FeatureTiles([q, g], "euclidean")
    qq, qg = np.empty((nq, nq), np.float32), np.empty((nq, len(g)), np.float32)
    gg = np.empty((len(g), len(g)), np.float32)
    for rows, cols, t in knn.iter_tiles(prov):
        x = t.numpy()
        for (a, b), (c, d), blk in (((rows, cols, x)), ((cols, rows, x.T))):
            dst = (qq, 0, 0) if b <= nq and d <= nq else (qg, 0, nq) if b <= nq else \
                (gg, nq, nq) if c >= nq else None
            if dst is not None:
                m, r0, c0 = dst
                m[a - r0 : b - r0, c - c0 : d - c0] = blk
    return qg, qq, gg


def dense_jaccard_reference(f: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """Dense ``(N, N)`` Jaccard distance, the shape of the public clustering code: dense
    distances, ``V`` and Jaccard arrays, loops over the items (``kreciprocal``'s formula,
    same distances as our tiles)."""
    import torch

    from semparts_reid.metrics import knn

    d = knn.dense_matrix(knn.FeatureTiles([f], "sqeuclidean", normalize=True)).numpy()
    n, kh = len(d), int(np.around(k1 / 2))
    rank = np.empty((n, max(k1 + 1, k2)), np.int64)
    for a in range(0, n, 1024):
        blk = torch.from_numpy(d[a : a + 1024])
        rank[a : a + 1024] = torch.sort(blk, dim=1, stable=True).indices[:, : rank.shape[1]]

    def recip(p: int, k: int) -> np.ndarray:
        fwd = rank[p, : k + 1]
        return fwd[(rank[fwd, : k + 1] == p).any(axis=1)]

    v = np.zeros((n, n), np.float32)
    for p in range(n):
        r = recip(p, k1)
        exp = [r]
        for c in r:
            rc = recip(int(c), kh)
            if len(np.intersect1d(rc, r)) > 2.0 / 3 * len(rc):
                exp.append(rc)
        idx = np.unique(np.concatenate(exp))
        w = np.exp(-d[p, idx].astype(np.float64))
        v[p, idx] = w / w.sum()
    del d
    if k2 > 1:
        v_qe = np.empty_like(v)
        for a in range(0, n, 256):
            v_qe[a : a + 256] = v[rank[a : a + 256, :k2]].mean(axis=1)
        v = v_qe
    return _jaccard_rows(v)


def _jaccard_rows(v: np.ndarray) -> np.ndarray:
    n = len(v)
    inv = [np.flatnonzero(v[:, j]) for j in range(n)]
    out = np.empty((n, n), np.float32)
    for i in range(n):
        tmp = np.zeros(n, np.float32)
        for j in np.flatnonzero(v[i]):
            tmp[inv[j]] += np.minimum(v[i, j], v[inv[j], j])
        out[i] = 1.0 - tmp / (2.0 - tmp)
    np.clip(out, 0.0, 1.0, out=out)  # float32 rounding: never below 0 (DBSCAN checks)
    np.fill_diagonal(out, 0.0)
    return out


# ---------------------------------------------------------------- child processes


def _child(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one case; returns its figures (time, peak RSS, ...)."""
    if kind in ("rerank", "torchreid"):
        qf, gf, *_ = make_data(spec["q"], spec["g"], spec["ids"], spec["cams"], spec["dim"],
                               seed=spec["seed"], noise=NOISE)  # fmt: skip
        out: dict[str, Any] = {"rss_before_mib": peak_rss_mib()}
        if kind == "rerank":
            from semparts_reid.metrics.rerank import re_ranking_from_features

            t0 = time.perf_counter()
            dist = re_ranking_from_features(qf, gf, "euclidean")
        else:
            fn, where = torchreid_rerank()
            if fn is None:
                return {"available": False, "why": where}
            t0 = time.perf_counter()
            mats = _split_matrices(qf, gf)
            out["matrices_s"] = time.perf_counter() - t0
            del qf, gf
            t0 = time.perf_counter()
            dist = fn(*mats)
            out.update(available=True, where=where)
        out.update(time_s=time.perf_counter() - t0, peak_rss_mib=peak_rss_mib())
        if spec.get("save"):
            np.save(spec["save"], np.asarray(dist, dtype=np.float32))
        return out
    f, _, pids, *_ = make_data(spec["n"], 0, spec["ids"], spec["cams"], spec["dim"],
                               seed=spec["seed"], noise=NOISE)  # fmt: skip
    try:  # imported before the clock starts
        from sklearn.cluster import DBSCAN
    except ImportError as exc:
        DBSCAN, no_sklearn = None, f"skipped: scikit-learn not importable ({exc})"
    out = {"rss_before_mib": peak_rss_mib()}
    t0 = time.perf_counter()
    if kind == "jaccard":
        from semparts_reid.metrics import jaccard_distance

        d = jaccard_distance(f, k1=30, k2=6, max_distance=EPS)  # as engine.clustering
        out.update(nnz_per_row=d.nnz / spec["n"])
    else:
        d = dense_jaccard_reference(f, 30, 6)
    out.update(jaccard_s=time.perf_counter() - t0, jaccard_peak_mib=peak_rss_mib())
    if DBSCAN is None:
        out["dbscan"] = no_sklearn
    else:
        t1 = time.perf_counter()
        labels = DBSCAN(eps=EPS, min_samples=4, metric="precomputed").fit_predict(d)
        out.update(dbscan_s=time.perf_counter() - t1, clusters=int(labels.max() + 1),
                   outliers=float((labels < 0).mean()))
    out.update(time_s=time.perf_counter() - t0, peak_rss_mib=peak_rss_mib())
    if kind == "jaccard" and spec.get("save"):
        import scipy.sparse as sp

        sp.save_npz(spec["save"], d)
    elif kind == "dense" and spec.get("compare"):
        import scipy.sparse as sp

        ours = sp.load_npz(spec["compare"]).tocsr()
        diff = 0.0
        for a in range(0, spec["n"], 1024):
            blk = np.ones((min(1024, spec["n"] - a), spec["n"]), np.float32)
            sub = ours[a : a + 1024]
            rows = np.repeat(np.arange(len(blk)), np.diff(sub.indptr))
            blk[rows, sub.indices] = sub.data
            ref = d[a : a + 1024]
            ref = np.where(ref <= EPS, ref, 1.0)  # ours keeps pairs up to eps
            ok = np.abs(d[a : a + 1024] - EPS) > 1e-5  # not on the edge (float rounding)
            diff = max(diff, float(np.abs(blk - ref)[ok].max()))
        out["max_abs_diff"] = diff
    return out


def run_child(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """``_child(kind, spec)`` in a fresh interpreter (its own peak RSS)."""
    cmd = [sys.executable, __file__, "--_child", kind, "--_spec", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- the cases


def bench_market(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Ours vs torchreid at Market-1501 scale: times, peaks, agreement, CMC/mAP."""
    from semparts_reid.metrics.rank import evaluate_cmc_map

    spec = dict(QUICK["market"] if args.quick else MARKET, seed=0)
    print(f"Re-ranking at Market-1501 scale: {spec['q']} x {spec['g']}, dim {spec['dim']}")
    ours = run_child("rerank", dict(spec, save=str(tmp / "ours.npy")))
    print(f"  ours: {ours['time_s']:.2f} s (distances included), peak RSS "
          f"{ours['peak_rss_mib']:.0f} MiB (before: {ours['rss_before_mib']:.0f} MiB)")
    res: dict[str, Any] = {"ours": ours}
    if args.skip_torchreid:
        print("  torchreid: skipped (--skip-torchreid)")
        return res
    tr = run_child("torchreid", dict(spec, save=str(tmp / "torchreid.npy")))
    res["torchreid"] = tr
    if not tr.get("available"):
        print(f"  torchreid re_ranking: skipped, {tr['why']}")
        return res
    print(f"  torchreid re_ranking ({tr['where']}): {tr['time_s']:.2f} s + "
          f"{tr['matrices_s']:.2f} s for its three distance matrices, peak RSS "
          f"{tr['peak_rss_mib']:.0f} MiB -> ours {tr['time_s'] / ours['time_s']:.1f}x faster")
    a, b = np.load(tmp / "ours.npy"), np.load(tmp / "torchreid.npy")
    res["max_abs_diff"] = float(np.abs(a - b).max())
    _, _, qp, gp, qc, gc = make_data(spec["q"], spec["g"], spec["ids"], spec["cams"],
                                     spec["dim"], seed=0, noise=NOISE)  # fmt: skip
    ma, mb = (evaluate_cmc_map(x, qp, gp, qc, gc) for x in (a, b))
    res.update(map_ours=ma.mAP, map_torchreid=mb.mAP, speedup=tr["time_s"] / ours["time_s"],
               map_diff=abs(ma.mAP - mb.mAP), cmc_diff=float(np.abs(ma.cmc - mb.cmc).max()))
    print(f"  max |ours - torchreid| = {res['max_abs_diff']:.1e}; mAP {ma.mAP:.4f} vs "
          f"{mb.mAP:.4f}, max |CMC diff| {res['cmc_diff']:.1e}")
    return res


def bench_msmt(args: argparse.Namespace) -> dict[str, Any]:
    spec = dict(QUICK["msmt"] if args.quick else MSMT, seed=1)
    out = run_child("rerank", spec)
    print(f"Re-ranking at MSMT17 scale: {spec['q']} x {spec['g']}, dim {spec['dim']} "
          "(torchreid: not run, it needs > 100 GB)")
    print(f"  ours: {out['time_s']:.1f} s, peak RSS {out['peak_rss_mib']:.0f} MiB "
          f"(before: {out['rss_before_mib']:.0f} MiB)")
    return out


def bench_jaccard(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    sizes = QUICK["jaccard"] if args.quick else JACCARD_SIZES
    dim = QUICK["jaccard_dim"] if args.quick else 2048
    print(f"Jaccard (k1 30, k2 6) + DBSCAN (eps 0.6, min_samples 4), dim {dim}")
    res: dict[str, Any] = {}
    for i, n in enumerate(sizes):
        spec = {"n": n, "ids": max(1, n // 24), "cams": 6, "dim": dim, "seed": 2 + i,
                "save": str(tmp / f"jac{n}.npz") if i == 0 and not args.skip_dense else ""}
        out = run_child("jaccard", spec)
        res[str(n)] = out
        db = (f"DBSCAN {out['dbscan_s']:.1f} s ({out['clusters']} clusters, "
              f"{100 * out['outliers']:.0f}% outliers)" if "dbscan_s" in out else out["dbscan"])
        print(f"  {n:>7}: {out['time_s']:.1f} s (Jaccard {out['jaccard_s']:.1f} s, {db}), peak "
              f"RSS {out['peak_rss_mib']:.0f} MiB, {out['nnz_per_row']:.0f} pairs <= eps per row")
        if i == 0 and not args.skip_dense:
            ref = run_child("dense", dict(spec, save="", compare=spec["save"]))
            res["dense"] = ref
            print(f"  {n:>7} dense reference: {ref['time_s']:.1f} s (Jaccard "
                  f"{ref['jaccard_s']:.1f} s), peak RSS {ref['peak_rss_mib']:.0f} MiB -> ours "
                  f"{ref['time_s'] / out['time_s']:.1f}x faster, "
                  f"{ref['peak_rss_mib'] / out['peak_rss_mib']:.1f}x less memory; "
                  f"max |diff| {ref['max_abs_diff']:.1e}")
    return res


def targets(market: dict[str, Any] | None, msmt: dict[str, Any] | None,
            jac: dict[str, Any] | None) -> list[Target]:
    """The targets of a full run, for the parts that ran."""
    out: list[Target] = []
    if market is not None:
        o = market["ours"]
        out += [Target("Market re-ranking: time (distances included)", o["time_s"], "<=", 9.0,
                       " s"),
                Target("Market re-ranking: peak RSS", o["peak_rss_mib"], "<=", 1.5 * GIB,
                       " MiB", ".0f")]  # fmt: skip
        if "speedup" in market:
            out += [Target("Market re-ranking: speed-up vs torchreid", market["speedup"], ">=",
                           10.0, "x", ".1f"),
                    Target("Market re-ranking: max |ours - torchreid|",
                           market["max_abs_diff"], "<=", 1e-5, "", ".1e")]  # fmt: skip
    if msmt is not None:
        out += [Target("MSMT17 re-ranking: time", msmt["time_s"], "<=", 180.0, " s", ".1f"),
                Target("MSMT17 re-ranking: peak RSS", msmt["peak_rss_mib"], "<=", 6 * GIB,
                       " MiB", ".0f")]  # fmt: skip
    if jac is not None:
        for n, sec, gib in (("16522", 20.0, 2), ("100000", 240.0, 8)):
            if n in jac:
                out += [Target(f"Jaccard + DBSCAN, {n}: time", jac[n]["time_s"], "<=", sec,
                               " s", ".1f"),
                        Target(f"Jaccard + DBSCAN, {n}: peak RSS", jac[n]["peak_rss_mib"],
                               "<=", gib * GIB, " MiB", ".0f")]  # fmt: skip
        if "dense" in jac:
            out.append(Target("Jaccard: max |ours - dense reference|",
                              jac["dense"]["max_abs_diff"], "<=", 1e-5, "", ".1e"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes for a smoke test")
    p.add_argument("--json", type=Path, help="write every figure to this JSON file")
    p.add_argument("--skip-torchreid", action="store_true", help="ours only at Market scale")
    p.add_argument("--skip-msmt", action="store_true", help="no MSMT17-scale re-ranking")
    p.add_argument("--skip-jaccard", action="store_true", help="no Jaccard + DBSCAN part")
    p.add_argument("--skip-dense", action="store_true", help="no dense Jaccard reference")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    p.add_argument("--_spec", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._child:
        print(json.dumps(_child(args._child, json.loads(args._spec))))
        return 0
    import torch

    print(f"threads: torch {torch.get_num_threads()}, cpus {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        market = bench_market(args, Path(tmp))
        msmt = None if args.skip_msmt else bench_msmt(args)
        jac = None if args.skip_jaccard else bench_jaccard(args, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps({"quick": args.quick, "market": market, "msmt": msmt,
                                         "jaccard": jac}, indent=2, default=float) + "\n")
    return report(targets(market, msmt, jac), checked=not args.quick,
                  why_unchecked="quick run")


if __name__ == "__main__":
    raise SystemExit(main())
