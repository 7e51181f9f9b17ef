"""Video constraints in adaptation: the target's tracklets and frames reach the objectives."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from engine_helpers import tiny_config, tiny_model

from semparts_reid.data import build_dataset
from semparts_reid.data.synthetic.walkers import write_walkers_sequence
from semparts_reid.engine.cluster_objective import ClusterObjective
from semparts_reid.engine.config import VideoConfig
from semparts_reid.engine.objective_base import EpochState
from semparts_reid.engine.objectives import ExemplarObjective
from semparts_reid.engine.trainer import DomainAdaptTrainer
from semparts_reid.engine.video_links import video_constraints_for
from semparts_reid.errors import InputError
from semparts_reid.memory import VideoConstraints


@pytest.fixture(scope="module")
def walkers(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("walkers")
    seq = write_walkers_sequence(root / "seq", num_frames=24, num_people=4, seed=0)
    return build_dataset(f"mot:{seq}?source=gt&cache={root / 'cache'}")


def test_constraints_come_from_the_frames_and_the_iou_tracker(walkers) -> None:  # type: ignore[no-untyped-def]
    assert video_constraints_for(walkers, VideoConfig()) is None  # off by default
    vc = video_constraints_for(walkers, VideoConfig(video_constraints=True))
    assert vc is not None and vc.num_tracklets > 0
    assert vc.must_link_pairs > 0 and vc.cannot_link_pairs > 0
    # the target's ground-truth boxes carry no ids: without the tracker only cannot-links
    bare = video_constraints_for(walkers, VideoConfig(video_constraints=True,
                                                      video_tracker="none"))
    assert bare is not None and bare.must_link_pairs == 0
    assert bare.cannot_link_pairs == vc.cannot_link_pairs


def test_a_target_without_frames_is_bad_input(tiny_pair) -> None:  # type: ignore[no-untyped-def]
    _, b = tiny_pair
    with pytest.raises(InputError, match="video target"):
        video_constraints_for(b, VideoConfig(video_constraints=True))


def _two_frames() -> VideoConstraints:
    # crops 0-3 in frame 1, 4-7 in frame 2; tracklets pair crop i with crop i + 4
    return VideoConstraints(np.r_[0:4, 0:4], np.repeat([1, 2], 4))


def test_cluster_labels_obey_the_links_and_the_counts_are_logged() -> None:
    # features that put the crops of frame 1 in one blob (DBSCAN would merge them)
    g = torch.zeros(8, 4)
    g[:, 0] = 1
    g[4:, 1] = 0.05 * torch.arange(4)
    obj = ClusterObjective(4, 1, constraints=_two_frames(),
                           distance_fn=lambda f: _dense_distance(f))
    feats = SimpleNamespace(global_feat=g, part_feats=torch.zeros(8, 0, 4),
                            visibility=torch.zeros(8, 0))
    obj.start_epoch(EpochState(stage="adapt", epoch=0), lambda: feats)
    labels = obj.labels.numpy()
    frames = np.repeat([1, 2], 4)
    for c in set(labels[labels >= 0]):
        assert len(set(frames[labels == c])) == (labels == c).sum(), "two crops of a frame"
    assert all(labels[i] == labels[i + 4] for i in range(4) if labels[i] >= 0)
    metrics = obj.epoch_metrics()
    assert metrics["video_cannot_link_violations_before"] > 0
    assert metrics["video_cannot_link_violations_after"] == 0


def _dense_distance(f: torch.Tensor):  # type: ignore[no-untyped-def]
    import scipy.sparse as sp

    d = torch.cdist(f, f).clamp_max(1).numpy()
    return sp.csr_matrix(np.where(d > 0, d, 1e-9) * (1 - np.eye(len(d))))


def test_ecn_uses_tracklet_mates_from_the_first_epoch() -> None:
    torch.manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    batch = {"index": torch.tensor([0, 1, 5, 6])}
    plain = ExemplarObjective(8, 8, 1, neighbour_start_epoch=5)
    linked = ExemplarObjective(8, 8, 1, neighbour_start_epoch=5, constraints=_two_frames())
    for obj in (plain, linked):
        obj.memory.slots.copy_(torch.nn.functional.normalize(torch.randn(1, 8, 8), dim=2))
    linked.memory.slots.copy_(plain.memory.slots)
    out = {"global_feat": feats}
    a, b = plain.loss(out, batch), linked.loss(out, batch)
    assert torch.isfinite(b) and not torch.equal(a, b)  # epoch 0: ECN has no neighbours yet
    stats = linked.epoch_metrics()
    assert stats["video_tracklet_links"] == 4  # each crop of the batch has one mate
    assert plain.epoch_metrics() == {}


def test_an_adaptation_with_video_constraints_logs_its_links(walkers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = build_dataset("synthetic:a?size=tiny")
    for objective in ("cluster", "ecn"):
        cfg = tiny_config(str(tmp_path / objective), epochs=1).replace(
            target_objective=objective, video_constraints=True, part_labels="none",
            use_parts=False, cluster_images_per_identity=4.0)
        trainer = DomainAdaptTrainer(tiny_model(source.num_train_pids), source, walkers, cfg)
        trainer.adapt()
        record = json.loads((tmp_path / objective / "metrics.jsonl").read_text().splitlines()[-1])
        assert any(k.startswith("video_") for k in record), record
