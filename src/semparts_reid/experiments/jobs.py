"""The demo's work as independent jobs, run by a pool of worker processes.

A direction of the demo is one **source job** (source training + direct transfer) and,
once its checkpoint exists, one **adaptation job** per method; all adaptations of a
direction start from that same checkpoint. The jobs of one run are independent of
each other apart from that order, so they can run side by side.

Why processes: at the demo's sizes (ResNet-18, 80×40 inputs, batches of 32) a second
intra-op thread barely speeds up a training step on the CPU. On 2 cores a short demo
run took 81 s with 2 threads, and two such runs side by side took 85 s with one
thread each (measured for this module). So on ``n`` cores the pool runs up to ``n``
jobs at once with ``cores // workers`` threads each, which is what makes the demo fit
its time budget. On a GPU one job at a time uses the device well, so the default
there is a single worker (in-process).

Each job rebuilds its datasets from their specs (the synthetic domains are cached on
disk) and writes its checkpoint and ``metrics.jsonl`` to its own folder, exactly where
the in-process run writes them. Rows are assembled in the fixed table order whatever
order the jobs finish in.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .rows import Rows
from .runs import adapt_from, train_source_model
from .settings import (
    Adaptation,
    DemoSettings,
    adapted_checkpoint,
    chosen_adaptations,
    is_part_figure_method,
    method_folder,
    source_checkpoint,
)

__all__ = [
    "DemoJob", "DirectionResult", "DirectionSpec", "default_workers", "job_priority",
    "run_directions", "run_job", "spawn_pool", "threads_per_worker", "usable_cores",
]

@dataclass(frozen=True)
class DirectionSpec:
    """One adaptation direction: its table label, dataset specs and output folder;
    ``methods``: the adaptations to run (``None``: those the settings choose)."""

    label: str
    source_spec: str
    target_spec: str
    out: Path
    methods: tuple[Adaptation, ...] | None = None

    def adaptations(self, settings: DemoSettings) -> list[Adaptation]:
        """The methods this direction runs, in table order."""
        return list(self.methods) if self.methods is not None else chosen_adaptations(settings)


@dataclass(frozen=True)
class DemoJob:
    """One unit of demo work for a worker: source training (``method=None``) or one
    adaptation of ``direction`` from its source checkpoint."""

    direction: DirectionSpec
    method: Adaptation | None
    settings: DemoSettings
    seed: int
    device: str
    threads: int

    @property
    def name(self) -> str:
        what = "source training" if self.method is None else self.method.name
        return f"[{self.direction.label}] {what}"

    @property
    def checkpoint(self) -> Path:
        """The checkpoint this job leaves behind."""
        if self.method is None:
            return source_checkpoint(self.direction.out)
        return adapted_checkpoint(self.direction.out, self.method)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """torch threads each of ``workers`` processes gets: the usable cores shared out."""
    return max(1, usable_cores() // max(1, workers))


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes started with ``spawn`` (no forked torch thread
    pools); a script that uses one needs the ``if __name__ == "__main__":`` guard."""
    return ProcessPoolExecutor(max_workers=max(1, workers),
                               mp_context=multiprocessing.get_context("spawn"))


def default_workers(device: str) -> int:
    """Worker processes for ``device``: one per usable core on the CPU (at most 8, the
    most jobs that can run at once), a single in-process worker on a GPU."""
    import torch

    on_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return 1 if on_gpu else min(8, usable_cores())


def job_priority(job: DemoJob) -> tuple[bool, bool, bool]:
    """Sort key, larger first: source trainings (every adaptation waits for one), then
    the adaptations by expected run time: part losses cost more than none, clustering
    (a feature extraction + DBSCAN each epoch) more than ECN. Measured on the demo (2
    cores, one job per core): clustering + parts 53-55 s, ECN + parts 47-50 s,
    clustering 47-48 s, ECN 43-45 s."""
    if job.method is None:
        return (True, True, True)
    return (False, job.method.parts, job.method.objective == "cluster")


def run_job(job: DemoJob) -> tuple[Rows, Path, float]:
    """Run one job in this process: its table rows, its checkpoint and its seconds."""
    import torch

    from ..data.datasets import build_dataset

    t0 = time.perf_counter()
    if job.threads > 0:
        torch.set_num_threads(job.threads)
    source = build_dataset(job.direction.source_spec)
    target = build_dataset(job.direction.target_spec)
    out = job.direction.out
    if job.method is None:
        rows, _ = train_source_model(job.settings, source, target, out, job.seed, job.device)
    else:
        folder = out / method_folder(job.method)
        source_ckpt = source_checkpoint(out)
        scores, _ = adapt_from(job.settings, job.method, source_ckpt, source, target, folder,
                               job.seed, job.device)
        rows = {f"{job.method.name} ({k})": v for k, v in scores.items()}
    return rows, job.checkpoint, time.perf_counter() - t0


@dataclass
class DirectionResult:
    """What the jobs of one direction produced."""

    rows: Rows
    #: checkpoint of the model drawn in part_maps.png / ranked.png (ECN + parts, or the
    #: source model when ECN did not run)
    figure_checkpoint: Path


#: what a finished job hands back: its rows, its checkpoint, its seconds
JobResult = tuple[Rows, Path, float]


class _Scheduler:
    """The pool's bookkeeping for :func:`run_directions`: the ready jobs (longest
    first), the running ones, and what the finished ones produced."""

    def __init__(self, pool: ProcessPoolExecutor, settings: DemoSettings, seed: int,
                 device: str, workers: int, total: int) -> None:
        self.pool, self.settings, self.seed, self.device = pool, settings, seed, device
        self.workers, self.total = workers, total
        self.threads = threads_per_worker(workers)
        self.results: dict[str, dict[str | None, Rows]] = {}
        self.checkpoints: dict[tuple[str, str | None], Path] = {}
        self.pending: dict[Future[JobResult], DemoJob] = {}
        # jobs wait here until a worker is free, so the longest ready job always starts
        # next (longest-processing-time order: the last job to finish is a short one)
        self.ready: list[DemoJob] = []
        self.done = 0

    def queue(self, direction: DirectionSpec, method: Adaptation | None) -> None:
        self.ready.append(DemoJob(direction, method, self.settings, self.seed, self.device,
                                  self.threads))
        self.ready.sort(key=job_priority, reverse=True)

    def fill(self) -> None:
        while self.ready and len(self.pending) < self.workers:
            job = self.ready.pop(0)
            self.pending[self.pool.submit(run_job, job)] = job

    def finish(self, future: Future[JobResult]) -> None:
        """Record a finished job; a source job queues its direction's adaptations."""
        job = self.pending.pop(future)
        try:
            rows, ckpt, seconds = future.result()
        except BrokenProcessPool as exc:
            raise RuntimeError(
                f"demo job {job.name} failed: a worker process died ({exc}). "
                "Out of memory, or a script that calls run_demo without an "
                "`if __name__ == '__main__':` guard (the workers are started "
                "with 'spawn' and import the main module); workers=1 runs "
                "everything in this process"
            ) from exc
        except Exception as exc:
            raise RuntimeError(f"demo job {job.name} failed: {exc}") from exc
        self.done += 1
        print(f"  done {self.done}/{self.total}: {job.name} ({seconds:.0f} s)", flush=True)
        key = job.method.name if job.method else None
        self.results.setdefault(job.direction.label, {})[key] = rows
        self.checkpoints[(job.direction.label, key)] = ckpt
        if job.method is None:
            for method in job.direction.adaptations(self.settings):
                self.queue(job.direction, method)

    def collect(self, direction: DirectionSpec) -> DirectionResult:
        """A direction's rows in the table's order, whatever order the jobs finished in."""
        parts = self.results[direction.label]
        rows = dict(parts[None])
        figure = self.checkpoints[(direction.label, None)]
        for method in direction.adaptations(self.settings):
            rows.update(parts[method.name])
            if is_part_figure_method(method):
                figure = self.checkpoints[(direction.label, method.name)]
        return DirectionResult(rows, figure)


def run_directions(
    directions: Sequence[DirectionSpec],
    settings: DemoSettings,
    *,
    seed: int,
    device: str,
    workers: int,
) -> dict[str, DirectionResult]:
    """Run every job of ``directions`` on ``workers`` processes (``>= 2``).

    Source jobs start first; a direction's adaptation jobs are queued as soon as its
    source checkpoint exists, and a free worker takes the queued job of highest
    :func:`job_priority`. Prints a line as each job finishes.

    Raises:
        InputError: ``workers < 2`` (run in-process instead) or no directions.
        RuntimeError: a job failed (naming it); the jobs not yet started are cancelled.
    """
    if workers < 2:
        raise InputError(f"workers={workers}: run_directions needs at least 2 workers")
    if not directions:
        raise InputError("run_directions: no directions to run")
    total = sum(1 + len(d.adaptations(settings)) for d in directions)
    print(f"running {total} jobs on {workers} worker processes, "
          f"{threads_per_worker(workers)} thread(s) each", flush=True)
    with spawn_pool(workers) as pool:
        jobs = _Scheduler(pool, settings, seed, device, workers, total)
        for direction in directions:
            jobs.queue(direction, None)
        jobs.fill()
        try:
            while jobs.pending:
                finished, _ = wait(list(jobs.pending), return_when=FIRST_COMPLETED)
                for future in finished:
                    jobs.finish(future)
                jobs.fill()
        except BaseException:
            for future in jobs.pending:
                future.cancel()
            raise
    return {direction.label: jobs.collect(direction) for direction in directions}
