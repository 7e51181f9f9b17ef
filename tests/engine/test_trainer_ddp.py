"""The trainer under DDP: 2 CPU processes (gloo) started like torchrun would start them:
the parent hosts the rendezvous store (as torchrun's agent does), so no port can be taken
between choosing it and using it."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.multiprocessing as mp
from dist_helpers import hosted_store

pytestmark = pytest.mark.slow


def _worker(rank: int, world: int, env: dict[str, str], home: str, out: str) -> None:
    # the environment torchrun sets up
    os.environ.update(
        env, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
        SEMPARTS_REID_HOME=home,
    )
    torch.set_num_threads(1)
    from engine_helpers import tiny_config, tiny_model

    from semparts_reid.data.datasets import build_dataset
    from semparts_reid.engine.distributed import get_world_size, is_distributed
    from semparts_reid.engine.trainer import DomainAdaptTrainer

    a, b = build_dataset("synthetic:a?size=tiny"), build_dataset("synthetic:b?size=tiny")
    cfg = tiny_config(os.path.join(out, "run"), epochs=1, camstyle=False)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids), a, b, cfg)
    assert is_distributed() and get_world_size() == world
    trainer.adapt(1)
    assert trainer.memory is not None
    torch.save(
        {"model": trainer.model.state_dict(), "slots": trainer.memory.slots,
         "history": trainer.history},
        os.path.join(out, f"rank{rank}.pt"),
    )
    torch.distributed.destroy_process_group()


def test_two_process_training_keeps_replicas_identical(tiny_pair, tmp_path) -> None:
    home = os.environ.get("SEMPARTS_REID_HOME", "")
    with hosted_store() as env:
        mp.start_processes(_worker, args=(2, env, home, str(tmp_path)), nprocs=2,
                           start_method="spawn", join=True)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(r0["slots"], r1["slots"]), "memory replicas diverged"
    assert (r0["slots"][0].norm(dim=1) > 0).sum() > 0
    for k, v in r0["model"].items():
        if v.is_floating_point() and "running" not in k:  # BN statistics are per process
            torch.testing.assert_close(v, r1["model"][k], rtol=0, atol=0, msg=k)
    # only rank 0 writes: one log line per epoch, one set of checkpoints
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["stage"] == "adapt"
    assert (tmp_path / "run" / "adapt_final.pt").is_file()


@pytest.fixture
def one_process_group(tmp_path):
    """A gloo group of one process (what ``is_distributed()`` sees under torchrun)."""
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    ("arch", "options", "unused"),
    [
        ("semparts_resnet18", {}, False),  # default part training: every parameter used
        ("semparts_resnet18", {"use_parts": False}, True),  # the ECN ablation on a part model
        ("semparts_resnet18", {"part_labels": "none"}, True),  # no part-map loss
        ("ecn_resnet18", {"use_parts": False, "part_labels": "none"}, False),  # no part heads
    ],
)
def test_find_unused_parameters_only_where_parameters_go_unused(
    one_process_group, tiny_pair, tmp_path, arch, options, unused
) -> None:
    """The rule docs/distributed.md states."""
    from engine_helpers import tiny_config, tiny_model

    from semparts_reid.engine.trainer import DomainAdaptTrainer

    a, b = tiny_pair
    cfg = tiny_config(str(tmp_path / "run"), arch=arch, **options)
    trainer = DomainAdaptTrainer(tiny_model(a.num_train_pids, arch=arch), a, b, cfg)
    net = trainer._wrap()
    assert isinstance(net, torch.nn.parallel.DistributedDataParallel)
    assert net.find_unused_parameters is unused
