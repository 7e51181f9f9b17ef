"""Experiments: recipes run side by side, their rows and tables (layer 3, beside ``cli/``).

The demo's table (``semparts-reid demo``) and every script in ``benchmarks/`` run through
this package, so a row means the same thing wherever it is printed:

* :mod:`.settings`: :class:`DemoSettings` (data, network, sizes, schedule), the methods
  (:class:`Adaptation`, :data:`ADAPTATIONS`), the retrieval features (:data:`FEATURES`),
  the directions (:data:`DIRECTIONS`) and the one spelling of every output path
  (:func:`source_checkpoint`, :func:`adapted_checkpoint`, :func:`method_folder`);
* :mod:`.config`: :func:`train_config`, the one place an experiment builds its
  ``TrainConfig``;
* :mod:`.runs`: one direction in this process (:func:`train_source_model`,
  :func:`adapt_from`, :func:`run_direction`);
* :mod:`.jobs`: the same work as jobs on a pool of worker processes
  (:class:`DirectionSpec`, :class:`DemoJob`, :func:`run_job`, :func:`run_directions`);
* :mod:`.rows`: a model's scores as a row, and :func:`format_table`;
* :mod:`.demo`: :func:`run_demo`, the whole ablation; :mod:`.figures` its figures;
* :mod:`.targets`: what a benchmark script reports (:class:`Target`, :func:`report`,
  :data:`MISSED_EXIT`, :func:`peak_rss_mib`, :func:`write_results`).

Nothing here imports ``cli/``. Importing this package does not import torch.

Example:
    >>> from semparts_reid.experiments import ADAPTATIONS, FEATURES
    >>> [m.name for m in ADAPTATIONS][:2], [suffix for suffix, _ in FEATURES]
    (['ECN', 'ECN + semantic parts'], ['global', 'global + parts'])
"""

from __future__ import annotations

from .config import train_config
from .demo import prune_checkpoints, run_demo
from .jobs import (
    DemoJob,
    DirectionResult,
    DirectionSpec,
    default_workers,
    job_priority,
    run_directions,
    run_job,
    spawn_pool,
    threads_per_worker,
    usable_cores,
)
from .rows import Row, Rows, format_table, metrics_row, score_modes
from .runs import adapt_from, run_direction, train_source_model
from .settings import (
    ADAPTATIONS,
    DIRECTIONS,
    FEATURES,
    Adaptation,
    DemoSettings,
    adapted_checkpoint,
    chosen_adaptations,
    is_part_figure_method,
    label_source,
    method_folder,
    source_checkpoint,
    synthetic_spec,
)
from .targets import MISSED_EXIT, Target, peak_rss_mib, report, write_results

__all__ = [
    "ADAPTATIONS", "DIRECTIONS", "FEATURES", "MISSED_EXIT", "Adaptation", "DemoJob",
    "DemoSettings", "DirectionResult", "DirectionSpec", "Row", "Rows", "Target",
    "adapt_from", "adapted_checkpoint", "chosen_adaptations", "default_workers",
    "format_table", "is_part_figure_method", "job_priority", "label_source",
    "method_folder", "metrics_row", "peak_rss_mib", "prune_checkpoints", "report",
    "run_demo", "run_direction", "run_directions", "run_job", "score_modes",
    "source_checkpoint", "spawn_pool", "synthetic_spec", "threads_per_worker",
    "train_config", "train_source_model", "usable_cores", "write_results",
]  # fmt: skip
