"""DomainAdaptTrainer with target_objective="cluster": logs, exact resume, 2 gloo ranks."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
import torch.multiprocessing as mp
from dist_helpers import hosted_store
from engine_helpers import tiny_config, tiny_model

from semparts_reid.engine.checkpoint import load_training_checkpoint
from semparts_reid.engine.cluster_objective import ClusterObjective
from semparts_reid.engine.trainer import DomainAdaptTrainer

pytestmark = pytest.mark.slow

# about 7 target images per identity in synthetic:b?size=tiny (a prior, as a user would
# state it; no evaluation identity is looked at)
CLUSTER = dict(target_objective="cluster", cluster_images_per_identity=7.0, part_labels="none")


def _records(trainer: DomainAdaptTrainer) -> list[tuple[int, float, float, int, int]]:
    return [(r["epoch"], r["loss"], r["target_memory"], r["clusters"], r["outliers"])
            for r in trainer.history]


def test_cluster_adaptation_logs_checkpoints_and_resumes_exactly(tiny_pair, tmp_path) -> None:
    a, b = tiny_pair

    def make(out: str) -> DomainAdaptTrainer:
        return DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b,
                                  tiny_config(out, epochs=2, keep_resume=True, **CLUSTER))

    full = make(str(tmp_path / "full"))
    obj = full.objective
    assert isinstance(obj, ClusterObjective) and obj.memory.num_heads == 4
    assert full.memory is obj.memory  # the cluster memory
    full.fit()
    recs = _records(full)
    assert [r[0] for r in recs] == [1, 2]
    assert all(r[3] > 0 and r[3] + r[4] <= len(b.train) for r in recs), recs
    lines = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["clusters"], x["outliers"]) for x in lines] == [(r[3], r[4]) for r in recs]
    # the objective's state is resume state: in last.pt (kept here), not in adapt_final.pt
    ckpt = load_training_checkpoint(tmp_path / "full" / "last.pt", weights_only=True)
    state = ckpt["objective"]
    assert state["name"] == "cluster" and state["labels"].shape == (len(b.train),)
    assert state["memory"]["centroids"].shape[:2] == (4, recs[-1][3])

    part = make(str(tmp_path / "part"))
    part.adapt(1)
    shutil.copy(tmp_path / "part" / "last.pt", tmp_path / "epoch1.pt")
    resumed = make(str(tmp_path / "resumed"))
    resumed.resume(tmp_path / "epoch1.pt")
    assert isinstance(resumed.objective, ClusterObjective)
    assert torch.equal(resumed.objective.labels, part.objective.labels)  # type: ignore[union-attr]
    resumed.fit()
    assert _records(resumed) == recs  # bit-identical on CPU, fp32, num_workers=0
    for key in ("labels", "agreement"):
        assert torch.equal(getattr(resumed.objective, key), getattr(obj, key)), key
    assert torch.equal(resumed.objective.memory.centroids, obj.memory.centroids)  # type: ignore[union-attr]


def _worker(rank: int, world: int, env: dict[str, str], home: str, out: str) -> None:
    os.environ.update(env, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      SEMPARTS_REID_HOME=home)
    torch.set_num_threads(1)
    from semparts_reid.data.datasets import build_dataset
    from semparts_reid.engine.distributed import get_world_size

    a, b = build_dataset("synthetic:a?size=tiny"), build_dataset("synthetic:b?size=tiny")
    cfg = tiny_config(os.path.join(out, "run"), epochs=1, camstyle=False, **CLUSTER)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)
    assert get_world_size() == world
    seen = []
    real = trainer._target_features
    trainer._target_features = lambda: seen.append(1) or real()  # type: ignore[method-assign]
    trainer.adapt(1)
    obj = trainer.objective
    assert isinstance(obj, ClusterObjective) and seen == [1]
    torch.save({"labels": obj.labels, "agreement": obj.agreement,
                "centroids": obj.memory.centroids, "model": trainer.model.state_dict()},
               os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_two_process_clustering_keeps_replicas_identical(tiny_pair, tmp_path) -> None:
    home = os.environ.get("SEMPARTS_REID_HOME", "")
    with hosted_store() as env:
        mp.start_processes(_worker, args=(2, env, home, str(tmp_path)), nprocs=2,
                           start_method="spawn", join=True)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for key in ("labels", "agreement", "centroids"):
        assert torch.equal(r0[key], r1[key]), f"{key} differ between ranks"
    assert (r0["labels"] >= 0).any()
    for k, v in r0["model"].items():
        if v.is_floating_point() and "running" not in k:  # BN statistics are per process
            torch.testing.assert_close(v, r1["model"][k], rtol=0, atol=0, msg=k)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["clusters"] > 0
