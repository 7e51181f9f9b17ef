"""The demo's jobs on worker processes (``experiments/jobs.py``): same rows as the
in-process run, failures named, worker counts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import TINY

from semparts_reid import experiments as ex
from semparts_reid.cli import demo as cli_demo
from semparts_reid.cli import main
from semparts_reid.errors import InputError


def _spec(tmp: Path, name: str = "a") -> ex.jobs.DirectionSpec:
    other = "b" if name == "a" else "a"
    return ex.jobs.DirectionSpec(f"{name} -> {other}", TINY.format(name),
                                   TINY.format(other), tmp / f"{name}2{other}")


@pytest.mark.slow
def test_workers_give_the_rows_of_the_in_process_run(
    tiny_pair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two single-threaded workers reproduce a single-threaded in-process run exactly."""
    settings = dataclasses.replace(ex.DemoSettings.quick(), objectives=("ecn",))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        source, target = tiny_pair
        expected, _ = ex.run_direction(settings, source, target, tmp_path / "inproc", 0,
                                          "cpu")
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(ex.jobs, "usable_cores", lambda: 2)  # one thread per worker
    spec = _spec(tmp_path / "workers")
    done = ex.jobs.run_directions([spec], settings, seed=0, device="cpu", workers=2)
    got = done[spec.label]
    assert list(got.rows) == list(expected)  # the table's order
    for name, row in expected.items():
        assert got.rows[name]["mAP"] == row["mAP"], name
        assert got.rows[name]["cmc"] == row["cmc"], name
    # the figures are drawn from the ECN + parts model's checkpoint
    assert got.figure_checkpoint == spec.out / "ecn_semantic_parts" / "adapt_final.pt"
    assert got.figure_checkpoint.is_file()
    assert (spec.out / "source" / "source_final.pt").is_file()


def test_a_failing_job_is_named(tmp_path: Path) -> None:
    bad = ex.jobs.DirectionSpec("x -> y", "synthetic:nosuchdomain", TINY.format("b"),
                                  tmp_path / "x2y")
    with pytest.raises(RuntimeError, match=r"demo job \[x -> y\] source training failed"):
        ex.jobs.run_directions([bad], ex.DemoSettings.quick(), seed=0, device="cpu",
                                 workers=2)


def test_run_directions_checks_its_arguments(tmp_path: Path) -> None:
    settings = ex.DemoSettings.quick()
    with pytest.raises(InputError, match="workers=1"):
        ex.jobs.run_directions([_spec(tmp_path)], settings, seed=0, device="cpu", workers=1)
    with pytest.raises(InputError, match="no directions"):
        ex.jobs.run_directions([], settings, seed=0, device="cpu", workers=2)


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex.jobs, "usable_cores", lambda: 2)
    assert ex.jobs.default_workers("cpu") == 2
    assert ex.jobs.default_workers("cuda") == 1
    assert ex.jobs.default_workers("cuda:1") == 1
    monkeypatch.setattr(ex.jobs, "usable_cores", lambda: 64)
    assert ex.jobs.default_workers("cpu") == 8  # the most jobs one run has at once
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ex.jobs.default_workers("auto") == 1


def test_job_names_and_checkpoints(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    settings = ex.DemoSettings.quick()
    source = ex.jobs.DemoJob(spec, None, settings, 0, "cpu", 1)
    adapt = ex.jobs.DemoJob(spec, ex.ADAPTATIONS[3], settings, 0, "cpu", 1)
    assert source.name == "[a -> b] source training"
    assert adapt.name == "[a -> b] Clustering + semantic parts"
    assert source.checkpoint == spec.out / "source" / "source_final.pt"
    assert adapt.checkpoint == spec.out / "clustering_semantic_parts" / "adapt_final.pt"


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_run_demo_rejects_bad_worker_counts(tmp_path: Path, workers: Any) -> None:
    with pytest.raises(InputError, match="workers="):
        ex.run_demo(tmp_path, workers=workers)


def test_cli_passes_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli_demo, "run_demo", lambda **kw: seen.update(kw))
    assert main(["demo", "--workers", "3"]) == 0
    assert seen["workers"] == 3
    assert main(["demo"]) == 0
    assert seen["workers"] is None
    with pytest.raises(SystemExit):
        main(["demo", "--workers", "0"])


def test_a_direction_may_name_its_own_methods(tmp_path: Path) -> None:
    settings = dataclasses.replace(ex.DemoSettings.quick(), objectives=("ecn",))
    assert _spec(tmp_path).adaptations(settings) == list(ex.ADAPTATIONS[:2])
    extra = ex.Adaptation("ECN + part-map loss only", "ecn", parts=False, part_map_loss=True)
    own = dataclasses.replace(_spec(tmp_path), methods=(ex.ADAPTATIONS[0], extra))
    assert own.adaptations(settings) == [ex.ADAPTATIONS[0], extra]


def test_threads_per_worker_share_out_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex.jobs, "usable_cores", lambda: 16)
    assert [ex.jobs.threads_per_worker(w) for w in (1, 2, 8, 32, 0)] == [16, 8, 2, 1, 16]
    with ex.jobs.spawn_pool(1) as pool:
        assert pool._mp_context.get_start_method() == "spawn"


class _InlineExecutor:
    """Runs each submitted job at once, in submission order (a stand-in for the pool)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def submit(self, fn: Any, job: Any) -> Any:
        from concurrent.futures import Future

        future: Future[Any] = Future()
        future.set_result(fn(job))
        return future


def test_a_free_worker_takes_the_longest_ready_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []

    def fake_run(job: ex.jobs.DemoJob) -> tuple[dict[str, Any], Path, float]:
        started.append(job.name)
        rows = {f"{job.method.name} (x)" if job.method else "Direct transfer (x)": {}}
        return rows, job.checkpoint, 0.0

    monkeypatch.setattr(ex.jobs, "run_job", fake_run)
    monkeypatch.setattr(ex.jobs, "spawn_pool", _InlineExecutor)
    specs = [_spec(tmp_path, "a"), _spec(tmp_path, "b")]
    ex.jobs.run_directions(specs, ex.DemoSettings.quick(), seed=0, device="cpu", workers=2)
    methods = ["Clustering + semantic parts", "ECN + semantic parts", "Clustering", "ECN"]
    assert started[:2] == ["[a -> b] source training", "[b -> a] source training"]
    # both sources finish in one wait(): their adaptations queue in either order, and
    # each method starts for both directions before the next cheaper one
    pairs = [sorted(started[i:i + 2]) for i in range(2, len(started), 2)]
    assert pairs == [[f"[a -> b] {m}", f"[b -> a] {m}"] for m in methods]


def test_job_priority_puts_sources_first_then_the_costliest_adaptations(tmp_path) -> None:
    spec, settings = _spec(tmp_path), ex.DemoSettings.quick()
    jobs = [ex.jobs.DemoJob(spec, m, settings, 0, "cpu", 1)
            for m in (*ex.ADAPTATIONS, None)]
    order = sorted(jobs, key=ex.jobs.job_priority, reverse=True)
    assert [j.method.name if j.method else None for j in order] == [
        None, "Clustering + semantic parts", "ECN + semantic parts", "Clustering", "ECN"]
