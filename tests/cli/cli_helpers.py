"""Helpers of the command-line tests: tiny data specs, fast training flags, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY = "synthetic:{}?size=tiny"

# a tiny, fast training configuration (every TrainConfig field is a flag)
TINY_FLAGS = [
    "--arch", "semparts_resnet18", "--pretrained", "none", "--input-size", "64", "32",
    "--batch-size", "8", "--target-batch-size", "8", "--num-workers", "0",
    "--max-steps-per-epoch", "2", "--eval-batch-size", "64", "--no-progress",
    "--neighbour-start-epoch", "1",
]  # fmt: skip


def features_file(path: Path, n: int, n_ids: int, seed: int) -> dict[str, np.ndarray]:
    """Write an ``extract``-style ``.npz`` (features, pids, camids) of ``n`` rows."""
    rng = np.random.default_rng(seed)
    pids = rng.integers(0, n_ids, n)
    centroids = np.random.default_rng(99).normal(size=(n_ids, 16))
    arrays = {
        "features": centroids[pids] + 0.8 * rng.normal(size=(n, 16)),
        "pids": pids,
        "camids": rng.integers(0, 4, n),
    }
    np.savez(path, **arrays)
    return arrays


def tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """Save a randomly initialised ``semparts_resnet18`` (64x32) as a model checkpoint."""
    import torch

    from semparts_reid.engine.checkpoint import model_payload, save_checkpoint
    from semparts_reid.models.factory import build_model

    torch.manual_seed(seed)
    model = build_model("semparts_resnet18", input_size=(64, 32)).eval()
    return save_checkpoint(model_payload(model), path)
