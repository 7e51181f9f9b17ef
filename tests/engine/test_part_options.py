"""TrainConfig's part options: validation, the part head's learning rate, colour jitter."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from semparts_reid.engine.config import TrainConfig
from semparts_reid.engine.optim import build_optimizer
from semparts_reid.errors import InputError
from semparts_reid.models.factory import build_model


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("part_head", "fpn", "part_head='fpn'"),
        ("unlabeled_part_labels", "gt", "unlabeled_part_labels='gt'"),
        ("self_label_threshold", 1.5, "self_label_threshold=1.5"),
        ("part_dice_weight", -1.0, "part_dice_weight=-1.0"),
        ("part_head_lr_mult", float("nan"), "part_head_lr_mult=nan"),
        ("color_jitter", 1.0, "color_jitter=1.0"),
        ("part_labels", "oracle", "part_labels='oracle'"),
    ],
)
def test_bad_part_options_name_the_field(field: str, value: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        TrainConfig().replace(**{field: value})


def test_defaults_withhold_the_target_maps_and_self_train() -> None:
    cfg = TrainConfig()
    assert cfg.parts.target_part_maps is False and cfg.parts.unlabeled_part_labels == "self"
    assert cfg.parts.part_head == "decoder" and cfg.parts.part_head_lr_mult == 10.0
    assert TrainConfig().replace(part_labels="self").parts.part_labels == "self"


def test_part_head_gets_its_own_learning_rate() -> None:
    model = build_model("semparts_resnet18", num_classes=3)
    cfg = TrainConfig().replace(lr=1e-3, backbone_lr_mult=0.5, part_head_lr_mult=10.0)
    optimizer, _ = build_optimizer(model, cfg)
    by_lr = {round(g["lr"], 8): {id(p) for p in g["params"]} for g in optimizer.param_groups}
    assert set(by_lr) == {5e-4, 1e-2, 1e-3}
    assert {id(p) for p in model.part_classifier.parameters()} == by_lr[1e-2]
    assert {id(p) for p in model.backbone.parameters()} == by_lr[5e-4]
    # the global-only model has no part classifier: two groups
    ecn = build_model("ecn_resnet18", num_classes=3)
    assert len(build_optimizer(ecn, cfg)[0].param_groups) == 2


def test_colour_jitter_reaches_the_training_transform() -> None:
    from semparts_reid.data.records import ImageRecord
    from semparts_reid.engine.loaders import build_train_dataset
    from semparts_reid.models.sempartsnet import default_data_config

    cfg = TrainConfig().replace(color_jitter=0.3)
    records = [ImageRecord("x.jpg", 0, 0)]
    dataset = build_train_dataset(records, cfg, default_data_config((64, 32)), with_parts=False)
    assert dataset.transform.color_jitter == pytest.approx(0.3)
    assert not dataset.staged  # jitter works on PIL images, so items are finished at once
    plain = build_train_dataset(records, TrainConfig(), default_data_config((64, 32)))
    assert plain.transform.color_jitter == 0.0


def test_decoder_part_loss_trains_the_head_only_through_the_part_term() -> None:
    torch.manual_seed(0)
    model = build_model("semparts_resnet18", num_classes=3, detach_masks=True)
    out = model(torch.randn(2, 3, 64, 32))
    assert out.id_logits is not None
    out.id_logits.square().sum().backward()
    grads = [p.grad for p in model.part_classifier.parameters()]
    assert all(g is None or g.abs().sum() == 0 for g in grads)
