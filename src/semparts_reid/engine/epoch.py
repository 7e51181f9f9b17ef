"""One training epoch: draw the step's batches, run the step, average its loss terms."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from ..precision import PrecisionPolicy
from .loaders import move_batch

__all__ = ["StepFn", "run_epoch"]

#: ``step(batch_s, batch_t, where) -> {term: float}`` (batches on the device)
StepFn = Callable[[dict[str, Any], "dict[str, Any] | None", str], dict[str, float]]


def run_epoch(
    step: StepFn,
    source: Iterator[dict[str, Any]],
    target: Iterator[dict[str, Any]] | None,
    steps: int,
    policy: PrecisionPolicy,
    *,
    desc: str,
    progress: bool = False,
) -> dict[str, Any]:
    """Run ``steps`` steps; return the mean of each loss term, ``time_s`` and ``images_per_s``.

    ``images_per_s`` counts the source and target images this process trained on (per
    rank under ``torchrun``), over the epoch's wall time.

    Args:
        step: the step function; its third argument names the step for error messages.
        source, target: batch iterators (``target`` None for a source-only epoch).
        steps: steps to run (each draws one batch from each iterator).
        policy: moves batches to the device and memory format.
        desc: the progress bar's label (e.g. ``"adapt 3"``).
        progress: show a tqdm bar with the running mean loss and images/s.
    """
    sums: dict[str, float] = {}
    images = 0
    t0 = time.time()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=desc, leave=False, dynamic_ncols=True)
    try:
        for i in range(steps):
            batch_s = move_batch(next(source), policy)
            batch_t = move_batch(next(target), policy) if target is not None else None
            images += _num_images(batch_s) + (_num_images(batch_t) if batch_t else 0)
            terms = step(batch_s, batch_t, f"{desc.replace(' ', ' epoch ')} step {i + 1}/{steps}")
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            if bar is not None:
                bar.update(1)
                rate = images / max(time.time() - t0, 1e-9)
                bar.set_postfix(loss=f"{sums.get('loss', 0.0) / (i + 1):.3f}",
                                img_s=f"{rate:.1f}")
    finally:
        if bar is not None:
            bar.close()
    record: dict[str, Any] = {k: v / max(steps, 1) for k, v in sums.items()}
    elapsed = time.time() - t0
    record["time_s"] = round(elapsed, 3)
    record["images_per_s"] = round(images / max(elapsed, 1e-9), 2)
    return record


def _num_images(batch: dict[str, Any]) -> int:
    """Images in a batch: the first dimension of its ``image`` tensor (0 without one)."""
    image = batch.get("image")
    return int(image.shape[0]) if image is not None else 0
