"""Why clustering gains what it gains: the pseudo-labels of the last epoch vs the truth.

Reads the ``adapt_final.pt`` checkpoints that ``bench_semantic_parts.py`` (or the demo)
leaves in its work folder, takes the cluster objective's last pseudo-labels of the
target training images and compares them with the target's true identities, which
training never saw (they are used here for the diagnosis only):

* clusters, outliers (images left out of the epoch's training);
* adjusted Rand index on the clustered images, and cluster purity (the share of a
  cluster's images from its most common identity);
* identities split over several clusters, and identities with fewer images than
  DBSCAN's ``min_samples`` (they can never form a cluster of their own);
* the semantic-part agreement scores (mean per part) of the refinement.

No target: it prints what limits the cluster objective. Run::

    python benchmarks/cluster_diagnostics.py /tmp/bench_semantic_parts_XXXX [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semparts_reid.data.datasets import build_dataset


def diagnose(ckpt_path: Path, true_pids: np.ndarray) -> dict[str, Any]:
    """Figures of one checkpoint's pseudo-labels against ``true_pids`` (N,)."""
    from sklearn.metrics import adjusted_rand_score

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    state = ckpt["objective"]
    labels = np.asarray(state["labels"].cpu())
    cfg = ckpt.get("config") or {}
    clustered = labels >= 0
    purity = [Counter(true_pids[labels == c]).most_common(1)[0][1] / int((labels == c).sum())
              for c in np.unique(labels[clustered])]
    split = sum(len(set(labels[(true_pids == p) & clustered])) > 1 for p in np.unique(true_pids))
    per_id = Counter(true_pids.tolist())
    min_samples = (cfg.get("cluster") or cfg).get("cluster_min_samples")  # nested or flat
    out: dict[str, Any] = {
        "images": int(len(labels)),
        "identities": int(len(per_id)),
        "clusters": int(len(np.unique(labels[clustered]))),
        "outlier_fraction": float(1 - clustered.mean()),
        "ARI_on_clustered": float(adjusted_rand_score(true_pids[clustered], labels[clustered]))
        if clustered.any() else float("nan"),
        "mean_purity": float(np.mean(purity)) if purity else float("nan"),
        "identities_split": int(split),
        "images_per_identity_median": float(np.median(list(per_id.values()))),
    }
    if isinstance(min_samples, int):
        out["identities_below_min_samples"] = int(sum(v < min_samples for v in per_id.values()))
    agreement = state.get("agreement")
    if agreement is not None and agreement.numel():
        out["mean_agreement_head_upper_lower"] = [round(float(v), 3)
                                                  for v in agreement.float().mean(0)]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work_dir", help="bench_semantic_parts.py --work-dir (or a demo folder)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    results: dict[str, Any] = {}
    for ckpt in sorted(Path(args.work_dir).glob("**/clustering*/adapt_final.pt")):
        direction = ckpt.parent.parent.name  # e.g. "a2b"
        seed_dir = ckpt.parent.parent.parent.name
        tgt = direction[-1]
        seed = int(seed_dir[4:]) if seed_dir.startswith("seed") else 0
        if tgt == "c":
            roots = list(Path(args.work_dir).glob(f"synthetic_c_market_seed{seed}"))
            spec = f"market1501:{roots[0]}" if roots else None
        else:
            spec = f"synthetic:{tgt}?seed={seed}"
        if spec is None:
            continue
        pids = np.array([r.pid for r in build_dataset(spec).train])
        key = f"{seed_dir}/{direction}/{ckpt.parent.name}"
        results[key] = diagnose(ckpt, pids)
        print(key, json.dumps(results[key]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
