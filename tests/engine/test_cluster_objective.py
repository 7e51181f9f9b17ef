"""ClusterObjective: pseudo-labels, refined targets, outliers, switches, state, build."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import sparse

from semparts_reid.engine.cluster_objective import ClusterObjective
from semparts_reid.engine.clustering import ClusterSettings
from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.objectives import EpochState, TargetObjective, build_objective
from semparts_reid.inference import PartFeatures
from semparts_reid.memory import (
    ClusterMemory,
    agreement_smoothed_targets,
    knn_agreement,
    refined_global_targets,
)

D, K = 8, 3


def cosine_distance(feats: torch.Tensor) -> sparse.csr_matrix:
    """A stand-in sparse distance: cosine distance, pairs beyond 0.5 not stored."""
    f = F.normalize(feats.float(), dim=1)
    d = (1 - f @ f.t()).clamp_min(0).numpy()
    d[d > 0.5] = 0
    np.fill_diagonal(d, 0)
    m = sparse.csr_matrix(d)
    m.setdiag(0.0)
    return m


def _split(n_ids: int = 5, per: int = 6, seed: int = 0) -> PartFeatures:
    """Well-separated identities plus two loners (outliers); some parts invisible."""
    g = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(torch.randn(1 + K, D, D, generator=g)).Q  # orthonormal directions
    centres = q[:, : n_ids + 2].permute(1, 0, 2)  # (ids + 2 loners, 1 + K, D)
    feats = centres[:n_ids].repeat_interleave(per, 0)
    feats = feats + 0.05 * torch.randn(n_ids * per, 1 + K, D, generator=g)
    feats = F.normalize(torch.cat([feats, centres[n_ids:]]), dim=-1)
    n = len(feats)
    vis = (torch.rand(n, K, generator=g) > 0.2).float()
    parts = feats[:, 1:] * vis[..., None]
    pids = np.r_[np.repeat(np.arange(n_ids), per), [98, 99]]
    return PartFeatures(feats[:, 0].contiguous(), parts, vis, pids, np.zeros(n, np.int64))


def _objective(**kw: Any) -> ClusterObjective:
    base: dict[str, Any] = dict(settings=ClusterSettings(eps=0.3, min_samples=3),
                                distance_fn=cosine_distance, agreement_k=4)
    base.update(kw)
    return ClusterObjective(D, 1 + K, **base)


def _outputs(split: PartFeatures, idx: torch.Tensor, noise: float = 0.3) -> dict[str, Any]:
    g = torch.Generator().manual_seed(1)
    gf = split.global_feat[idx] + noise * torch.randn(len(idx), D, generator=g)
    pf = split.part_feats[idx] + noise * torch.randn(len(idx), K, D, generator=g)
    return {"global_feat": gf.requires_grad_(), "part_feats": pf.requires_grad_(),
            "visibility": split.visibility[idx]}


def test_start_epoch_clusters_resets_the_bank_and_reports() -> None:
    split = _split()
    obj = _objective()
    assert isinstance(obj, TargetObjective)
    obj.start_epoch(EpochState("adapt", 2), lambda: split)
    labels = obj.labels.numpy()
    assert obj.epoch == 2 and obj.epoch_metrics() == {"clusters": 5, "outliers": 2}
    assert (labels[-2:] == -1).all()
    for pid in range(5):  # each identity is one cluster
        assert len(set(labels[split.pids == pid].tolist())) == 1
    assert obj.memory.centroids.shape == (1 + K, 5, D)
    want = knn_agreement(split.global_feat, split.part_feats, split.visibility, k=4)
    torch.testing.assert_close(obj.agreement, want)
    assert (obj.agreement[split.visibility == 0] == 0).all()


def test_loss_uses_refined_and_smoothed_targets_and_ignores_outliers() -> None:
    split = _split()
    obj = _objective(beta=0.3, part_smoothing=True)
    obj.start_epoch(EpochState("adapt", 0), lambda: split)
    idx = torch.tensor([0, 7, 13, 30, 31, 20])  # 30 and 31 are the outliers
    out = _outputs(split, idx)
    loss = obj.loss(out, {"index": idx})
    # the same loss written out with the layer-0 pieces
    feats = torch.cat([out["global_feat"][:, None], out["part_feats"]], 1).detach()
    y, a, vis = obj.labels[idx], obj.agreement[idx], out["visibility"]
    c = obj.memory.num_clusters
    probs = torch.softmax(obj.memory.logits(feats)[1:], -1).transpose(0, 1)
    t = torch.cat([refined_global_targets(y, probs, a, vis, beta=0.3)[None],
                   agreement_smoothed_targets(y, a, c)])
    want = obj.memory.loss(feats, y, visibility=vis, targets=t)
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert out["global_feat"].grad[3:5].abs().sum() == 0  # outliers: no gradient
    # a batch of outliers only: an exact zero that still backpropagates
    only = torch.tensor([30, 31])
    out2 = _outputs(split, only)
    z = obj.loss(out2, {"index": only})
    assert z.item() == 0.0 and z.requires_grad
    z.backward()


def test_an_invisible_part_neither_votes_nor_is_trained() -> None:
    split = _split()
    obj = _objective()
    obj.start_epoch(EpochState("adapt", 0), lambda: split)
    idx = torch.tensor([1, 2, 8, 9])
    out = _outputs(split, idx)
    out["visibility"] = out["visibility"].clone()
    out["visibility"][:, 2] = 0.0  # lower body invisible in the whole batch
    per = obj.memory.loss(
        torch.cat([out["global_feat"][:, None], out["part_feats"]], 1), obj.labels[idx],
        visibility=out["visibility"], reduction="none")
    assert per[3] == 0
    loss = obj.loss(out, {"index": idx})
    loss.backward()
    assert out["part_feats"].grad[:, 2].abs().sum() == 0
    # its prediction does not move the refined global target
    before = obj.targets(torch.cat([out["global_feat"][:, None], out["part_feats"]], 1).detach(),
                         obj.labels[idx], out["visibility"], idx)
    moved = out["part_feats"].detach().clone()
    moved[:, 2] = torch.randn(4, D)
    after = obj.targets(torch.cat([out["global_feat"][:, None].detach(), moved], 1),
                        obj.labels[idx], out["visibility"], idx)
    assert before is not None and after is not None
    torch.testing.assert_close(after[0], before[0])


def test_switches_give_plain_cluster_contrast() -> None:
    split = _split()
    plain = _objective(refine_global=False, part_smoothing=False)
    plain.start_epoch(EpochState("adapt", 0), lambda: split)
    idx = torch.arange(0, 30, 3)
    out = _outputs(split, idx)
    feats = torch.cat([out["global_feat"][:, None], out["part_feats"]], 1)
    want = plain.memory.loss(feats, plain.labels[idx], visibility=out["visibility"])
    torch.testing.assert_close(plain.loss(out, {"index": idx}), want)
    only_smooth = _objective(refine_global=False, part_smoothing=True)
    only_smooth.start_epoch(EpochState("adapt", 0), lambda: split)
    t = only_smooth.targets(feats.detach(), only_smooth.labels[idx], out["visibility"], idx)
    assert t is not None
    torch.testing.assert_close(t[0], F.one_hot(only_smooth.labels[idx], 5).float())
    default = _objective()  # the default: global refinement on, part smoothing off
    default.start_epoch(EpochState("adapt", 0), lambda: split)
    assert (default.refine_global, default.part_smoothing) == (True, False)
    t = default.targets(feats.detach(), default.labels[idx], out["visibility"], idx)
    assert t is not None
    torch.testing.assert_close(t[1:], F.one_hot(default.labels[idx], 5).float().expand(K, -1, -1))
    glob = ClusterObjective(D, 1, settings=ClusterSettings(eps=0.3, min_samples=3),
                            distance_fn=cosine_distance)
    glob.start_epoch(EpochState("adapt", 0), lambda: split)
    assert glob.agreement.shape == (len(split), 0)
    loss = glob.loss({"global_feat": out["global_feat"], "part_feats": out["part_feats"],
                      "visibility": out["visibility"]}, {"index": idx})
    assert torch.isfinite(loss)


def test_update_state_round_trip_and_errors() -> None:
    split = _split()
    obj = _objective(hard=True)
    obj.start_epoch(EpochState("adapt", 1), lambda: split)
    idx = torch.tensor([0, 1, 6, 30])
    out = _outputs(split, idx)
    before = obj.memory.centroids.clone()
    obj.update(out, {"index": idx})
    assert not torch.equal(before, obj.memory.centroids)
    clone = _objective()
    clone.load_state_dict(obj.state_dict())
    assert torch.equal(clone.labels, obj.labels) and torch.equal(clone.agreement, obj.agreement)
    assert torch.equal(clone.memory.centroids, obj.memory.centroids) and clone.epoch == 1
    torch.testing.assert_close(clone.loss(out, {"index": idx}), obj.loss(out, {"index": idx}))
    with pytest.raises(ValueError, match="for 'ecn', not 'cluster'"):
        clone.load_state_dict({"name": "ecn"})
    with pytest.raises(RuntimeError, match="call start_epoch first"):
        _objective().loss(out, {"index": idx})
    with pytest.raises(TypeError, match="expected a PartFeatures"):
        _objective().start_epoch(EpochState("adapt", 0), lambda: torch.zeros(3))
    with pytest.raises(ValueError, match="1 head.*memory has 4"):
        obj.loss({"global_feat": out["global_feat"], "part_feats": torch.zeros(4, 0, D),
                  "visibility": torch.zeros(4, 0)}, {"index": idx})


def test_build_objective_reads_the_cluster_config() -> None:
    cfg = TrainConfig().replace(target_objective="cluster", cluster_eps=0.5, cluster_min_samples=3,
                      cluster_k1=20, cluster_k2=5, cluster_temperature=0.1,
                      cluster_momentum=0.2, cluster_hard_update=True,
                      cluster_refine_global=False, cluster_part_smoothing=True,
                      cluster_beta=0.7, cluster_agreement_k=9)
    obj = build_objective("cluster", cfg, num_samples=10, feat_dim=D, num_heads=1 + K)
    assert isinstance(obj, ClusterObjective) and isinstance(obj.memory, ClusterMemory)
    assert obj.settings == ClusterSettings(eps=0.5, min_samples=3, k1=20, k2=5)
    assert (obj.memory.temperature, obj.memory.momentum, obj.memory.hard) == (0.1, 0.2, True)
    assert (obj.refine_global, obj.part_smoothing, obj.beta, obj.agreement_k) == (
        False, True, 0.7, 9)
    derived = build_objective("cluster", cfg.replace(cluster_images_per_identity=7.0),
                              num_samples=10, feat_dim=D, num_heads=1)
    assert derived.settings == ClusterSettings.for_identity_size(7)  # type: ignore[attr-defined]
    for bad, text in (({"cluster_eps": 1.0}, "cluster_eps=1.0"),
                      ({"cluster_k1": 0}, "cluster_k1=0"),
                      ({"cluster_beta": 2.0}, "cluster_beta=2.0"),
                      ({"cluster_images_per_identity": 0.5}, "cluster_images_per_identity"),
                      ({"target_objective": "spcl"}, "target_objective")):
        with pytest.raises(ValueError, match=text):
            TrainConfig().replace(**bad)  # type: ignore[arg-type]


def test_target_features_are_sharded_by_rank_and_gathered_in_record_order(monkeypatch) -> None:
    from semparts_reid.engine import target_features

    split = _split()
    records = [(f"img{i}.jpg", int(p), 0) for i, p in enumerate(split.pids)]
    where = {r[0]: i for i, r in enumerate(records)}

    def extract(recs):  # noqa: ANN001, ANN202 - the features of exactly these records
        rows = torch.tensor([where[r[0]] for r in recs])
        return PartFeatures(split.global_feat[rows], split.part_feats[rows],
                             split.visibility[rows], split.pids[rows.numpy()],
                             split.camids[rows.numpy()])

    world = 3
    shards = [target_features.gather_split_features(extract, records[r::world])
              for r in range(world)]
    rows = torch.cat([torch.cat([s.global_feat, s.part_feats.flatten(1), s.visibility], 1)
                      for s in shards])
    monkeypatch.setattr(target_features, "all_gather_rows", lambda t: rows)
    got = target_features.gather_split_features(extract, records, rank=1, world=world)
    assert torch.equal(got.global_feat, split.global_feat)
    assert torch.equal(got.part_feats, split.part_feats)
    assert torch.equal(got.visibility, split.visibility)
    assert got.pids.tolist() == split.pids.tolist() and got.paths == [r[0] for r in records]
    with pytest.raises(ValueError, match="2 target images cannot be shared among 3"):
        target_features.gather_split_features(extract, records[:2], rank=0, world=3)
