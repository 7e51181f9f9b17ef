"""One training epoch: draw the step's batches, run the step, average its loss terms.

The loop keeps the GPU busy: a step's loss terms stay on the device, their epoch sums
are accumulated there (in float64, so the means equal the sums of the floats), and the
host reads them back only every ``check_every`` steps and at the epoch's last step,
together with the :class:`~semparts_reid.engine.step.FiniteGuard` verdict (one
synchronisation per check) and the progress bar's running loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from ..precision import PrecisionPolicy
from .loaders import move_batch
from .step import FiniteGuard

__all__ = ["StepFn", "run_epoch"]

#: ``step(batch_s, batch_t, where) -> {term: 0-d tensor or float}`` (batches on the device)
StepFn = Callable[
    [dict[str, Any], "dict[str, Any] | None", str], Mapping[str, "torch.Tensor | float"]
]


def run_epoch(
    step: StepFn,
    source: Iterator[dict[str, Any]],
    target: Iterator[dict[str, Any]] | None,
    steps: int,
    policy: PrecisionPolicy,
    *,
    desc: str,
    progress: bool = False,
    check_every: int = 50,
) -> dict[str, Any]:
    """Run ``steps`` steps; return the mean of each loss term, ``time_s`` and ``images_per_s``.

    ``images_per_s`` counts the source and target images this process trained on (per
    rank under ``torchrun``), over the epoch's wall time.

    Args:
        step: the step function; its third argument names the step for error messages.
            It may return tensors (kept on the device, checked here on the schedule
            below) or floats (already on the host; the step checks them itself).
        source, target: batch iterators (``target`` None for a source-only epoch).
        steps: steps to run (each draws one batch from each iterator).
        policy: moves batches to the device and memory format.
        desc: the progress bar's label (e.g. ``"adapt 3"``).
        progress: show a tqdm bar with the running mean loss and images/s (updated at
            each check).
        check_every: read the loss terms back every this many steps (and at the last
            step): a non-finite term seen since the previous check raises
            :class:`~semparts_reid.engine.step.NonFiniteLossError` naming its step.
    """
    if check_every < 1:
        raise ValueError(f"check_every={check_every}: expected >= 1")
    sums: dict[str, Any] = {}  # term -> float64 device tensor (or float for float steps)
    guard = FiniteGuard()
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
            where = f"{desc.replace(' ', ' epoch ')} step {i + 1}/{steps}"
            terms = step(batch_s, batch_t, where)
            on_device = {k: v for k, v in terms.items() if isinstance(v, torch.Tensor)}
            guard.observe(on_device, where)
            for k, v in terms.items():
                if isinstance(v, torch.Tensor):
                    v = v.detach().double()
                sums[k] = v if k not in sums else sums[k] + v
            if bar is not None:
                bar.update(1)
            if (i + 1) % check_every == 0 or i + 1 == steps:
                read = {k: v for k, v in sums.items() if isinstance(v, torch.Tensor)}
                sums.update(guard.check(read))  # the one synchronisation of the interval
                if bar is not None:
                    rate = images / max(time.time() - t0, 1e-9)
                    bar.set_postfix(loss=f"{sums.get('loss', 0.0) / (i + 1):.3f}",
                                    img_s=f"{rate:.1f}")
    finally:
        if bar is not None:
            bar.close()
    record: dict[str, Any] = {k: float(v) / max(steps, 1) for k, v in sums.items()}
    elapsed = time.time() - t0
    record["time_s"] = round(elapsed, 3)
    record["images_per_s"] = round(images / max(elapsed, 1e-9), 2)
    return record


def _num_images(batch: dict[str, Any]) -> int:
    """Images in a batch: the first dimension of its ``image`` tensor (0 without one)."""
    image = batch.get("image")
    return int(image.shape[0]) if image is not None else 0
