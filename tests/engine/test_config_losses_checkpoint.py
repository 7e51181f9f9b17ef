"""TrainConfig, the loss functions and the checkpoint helpers (fast)."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semparts_reid.engine.checkpoint import (
    capture_rng_state,
    load_training_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.losses import identity_loss, part_targets, stack_heads

# ----------------------------------------------------------------------------- config


def test_config_defaults_are_the_papers() -> None:
    c = TrainConfig()
    o = c.optim
    assert (c.arch, c.input_size, o.optimizer, o.lr, o.weight_decay, o.epochs) == (
        "semparts_resnet50", (256, 128), "adam", 3e-4, 5e-4, 80
    )
    a = c.augment
    assert a.random_crop and a.flip_prob == 0.5 and a.random_erasing == 0.5
    assert (c.ecn.memory_temperature, c.ecn.memory_knn, c.ecn.memory_momentum) == (0.05, 6, 0.01)
    assert c.ecn.neighbour_start_epoch == 5 and o.target_weight == 0.3
    assert c.loss_weights() == pytest.approx((0.7, 0.3))
    assert c.replace(loss_mix="sum", target_weight=1.0).loss_weights() == (1.0, 1.0)


def test_every_field_has_help_and_round_trips_through_json() -> None:
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f"field {f.name} has no help"
        if f.metadata.get("group"):
            for g in dataclasses.fields(f.default_factory()):  # type: ignore[misc]
                assert g.metadata.get("help"), f"field {f.name}.{g.name} has no help"
    c = TrainConfig().replace(input_size=(64, 32), epochs=3, memory_dtype="bfloat16")
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({"no_such_field": 1})


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"lr": 0.0}, "lr"),
        ({"epochs": -1}, "epochs"),
        ({"input_size": (8, 4)}, "input_size"),
        ({"part_labels": "oracle"}, "part_labels"),
        ({"flip_prob": 1.5}, "flip_prob"),
        ({"batch_size": 30, "num_instances": 4}, "num_instances"),
        ({"target_weight": 2.0}, "target_weight"),
    ],
)
def test_config_validation_names_the_field(kw: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        TrainConfig().replace(**kw)


# ----------------------------------------------------------------------------- losses


def test_identity_loss_matches_manual_cross_entropy_with_visibility() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, 7, generator=g)
    pids = torch.tensor([0, 3, 6, 2, 2])
    vis = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1]]).float()
    total, per = identity_loss(logits, pids, visibility=vis)
    expect = [F.cross_entropy(logits[:, 0], pids)]
    for k in range(3):
        keep = vis[:, k] > 0
        expect.append(F.cross_entropy(logits[keep, k + 1], pids[keep]))
    torch.testing.assert_close(per, torch.stack(expect))
    torch.testing.assert_close(total, per.sum())
    g_only, per_g = identity_loss(logits, pids, use_parts=False)
    torch.testing.assert_close(g_only, expect[0])
    assert torch.all(per_g[1:] == 0)
    with pytest.raises(ValueError, match="pids"):
        identity_loss(logits, torch.tensor([0, 1, 2, 3, 7]))


def test_part_targets_sources() -> None:
    parts = torch.randint(0, 4, (2, 16, 8))
    assert part_targets("none", parts=parts, feature_map=None, image_size=(16, 8)) is None
    assert torch.equal(part_targets("gt", parts=parts, feature_map=None, image_size=(16, 8)),
                       parts)
    band = part_targets("band", parts=parts, feature_map=None, image_size=(16, 8))
    assert band is not None and band.shape == (2, 16, 8)
    assert band[0, 0, 0] == 1 and band[0, -1, 0] == 3  # head on top, lower at the bottom
    fmap = torch.randn(2, 8, 4, 2)
    pseudo = part_targets("pseudo", parts=None, feature_map=fmap, image_size=(16, 8))
    assert pseudo is not None and pseudo.shape == (2, 16, 8) and int(pseudo.max()) <= 3


def test_auto_part_targets_use_maps_where_present_and_pseudo_labels_elsewhere() -> None:
    from semparts_reid.layers.part_clustering import pseudo_part_labels

    parts = torch.randint(0, 4, (3, 16, 8))
    fmap = torch.randn(3, 8, 4, 2)
    # every image labelled: the maps as they are, no clustering needed
    assert torch.equal(part_targets("auto", parts=parts, feature_map=None, image_size=(16, 8)),
                       parts)
    # image 1 has no map (all 255, as the data layer marks it): pseudo labels there only
    parts[1] = 255
    got = part_targets("auto", parts=parts, feature_map=fmap, image_size=(16, 8))
    pseudo = pseudo_part_labels(fmap, output_size=(16, 8))
    assert got is not None
    assert torch.equal(got[0], parts[0]) and torch.equal(got[2], parts[2])
    assert torch.equal(got[1], pseudo[1])
    # no maps at all (real data without a parser): the self-supervised labels
    none = part_targets("auto", parts=None, feature_map=fmap, image_size=(16, 8))
    assert none is not None and torch.equal(none, pseudo)
    with pytest.raises(ValueError, match="'auto'"):
        part_targets("parser", parts=parts, feature_map=fmap, image_size=(16, 8))


def test_stack_heads() -> None:
    g, p = torch.randn(3, 5), torch.randn(3, 2, 5)
    assert stack_heads(g, p, True).shape == (3, 3, 5)
    assert stack_heads(g, p, False).shape == (3, 1, 5)
    assert stack_heads(g, torch.zeros(3, 0, 5), True).shape == (3, 1, 5)


# ----------------------------------------------------------------------------- checkpoints


def test_rng_state_round_trip_through_a_weights_only_checkpoint(tmp_path) -> None:
    state = capture_rng_state()
    ref = (random.random(), float(np.random.rand()), float(torch.rand(())))
    path = save_checkpoint({"model": {}, "rng": state}, tmp_path / "c.pt")
    for _ in range(3):
        random.random(), np.random.rand(), torch.rand(())
    restore_rng_state(load_training_checkpoint(path, weights_only=True)["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == ref


def test_checkpoint_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_training_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_training_checkpoint(tmp_path / "junk.pt")
    torch.save({"model": {}, "format": "other/9"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="format"):
        load_training_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="payload"):
        save_checkpoint({"no_model": 1}, tmp_path / "x.pt")
    assert not list(tmp_path.glob(".x.pt*"))  # no temp file left behind


# ----------------------------------------------------------------------------- step losses


def _fake_out(b: int, k: int, d: int, c: int, g: torch.Generator) -> dict:
    return {
        "id_logits": torch.randn(b, 1 + k, c, generator=g),
        "global_feat": torch.randn(b, d, generator=g),
        "part_feats": torch.randn(b, k, d, generator=g),
        "visibility": torch.ones(b, k),
        "part_logits": None,
        "feature_map": torch.randn(b, d, 4, 2, generator=g),
    }


def ecn_step(cfg: TrainConfig) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """One ECN step's loss terms on fake outputs (3 parts), with the per-head identity
    and memory losses to check them against: ``(terms, per_id, per_mem)``."""
    from semparts_reid.engine.losses import stack_heads
    from semparts_reid.engine.objectives import EpochState, build_objective
    from semparts_reid.engine.step import step_losses

    g = torch.Generator().manual_seed(0)
    out_s, out_t = _fake_out(4, 3, 8, 5, g), _fake_out(4, 3, 8, 5, g)
    batch_s = {"pid": torch.tensor([0, 1, 2, 3]), "image": torch.zeros(4, 3, 16, 8)}
    batch_t = {"index": torch.tensor([0, 2, 4, 6]), "image": torch.zeros(4, 3, 16, 8)}
    obj = build_objective("ecn", cfg, num_samples=10, feat_dim=8, num_heads=4)
    obj.start_epoch(EpochState("adapt", 0), lambda: None)
    terms = step_losses(out_s, batch_s, out_t, batch_t, objective=obj, config=cfg,
                        use_parts=True)
    _, per_id = identity_loss(out_s["id_logits"], batch_s["pid"], visibility=out_s["visibility"])
    feats = stack_heads(out_t["global_feat"], out_t["part_feats"], True).float()
    per_mem = obj.memory.loss(feats, batch_t["index"], neighbours=False,  # type: ignore[attr-defined]
                              visibility=out_t["visibility"].float(), reduction="none")
    return terms, per_id, per_mem


@pytest.mark.parametrize("mix, heads", [("convex", "sum"), ("sum", "sum"), ("convex", "mean")])
def test_step_losses_weights_and_head_reduction(mix: str, heads: str) -> None:
    cfg = TrainConfig().replace(loss_mix=mix, target_weight=0.3, head_reduction=heads)
    terms, per_id, per_mem = ecn_step(cfg)
    id_sum, mem_sum = per_id.sum(), per_mem.sum()
    scale = 4.0 if heads == "mean" else 1.0
    torch.testing.assert_close(terms["source_id"], id_sum / scale)
    torch.testing.assert_close(terms["target_memory"], mem_sum / scale)
    ws, wt = (0.7, 0.3) if mix == "convex" else (1.0, 0.3)
    torch.testing.assert_close(terms["loss"], ws * id_sum / scale + wt * mem_sum / scale)
    assert "part_map" not in terms


def test_part_table_reaches_the_training_dataset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from semparts_reid.data.part_labels import make_lut
    from semparts_reid.engine.config import TrainConfig
    from semparts_reid.engine.loaders import build_train_dataset

    records = [("x.jpg", 0, 0)]
    data_config = {"input_size": (64, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3,
                   "interpolation": "bilinear"}
    ds = build_train_dataset(records, TrainConfig().replace(part_table="lip"), data_config)
    assert np.array_equal(ds.lut, make_lut("lip"))
    with pytest.raises(ValueError, match="part_table"):
        TrainConfig().replace(part_table="no-such-parser")


def test_cache_images_reaches_the_training_dataset() -> None:
    from semparts_reid.engine.config import TrainConfig
    from semparts_reid.engine.loaders import build_train_dataset

    data_config = {"input_size": (64, 32), "mean": (0.5,) * 3, "std": (0.5,) * 3,
                   "interpolation": "bilinear"}
    records = [("x.jpg", 0, 0)]
    assert not build_train_dataset(records, TrainConfig(), data_config).cache
    assert build_train_dataset(records, TrainConfig().replace(cache_images=True), data_config).cache
