"""PartDecoder, the dice term of the part loss and the self-training labels."""

from __future__ import annotations

import pytest
import torch

from semparts_reid.layers.part_classifier import (
    confident_part_labels,
    part_dice_loss,
    part_map_loss,
)
from semparts_reid.layers.part_decoder import PartDecoder
from semparts_reid.layers.parts import IGNORE_INDEX


def _maps() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 8, 16, 8, generator=g), torch.randn(2, 16, 8, 4, generator=g),
            torch.randn(2, 32, 4, 2, generator=g)]


def test_decoder_predicts_at_the_finest_stride_and_every_stage_contributes() -> None:
    torch.manual_seed(0)
    dec = PartDecoder((8, 16, 32), width=12)
    maps = [m.requires_grad_() for m in _maps()]
    out = dec(maps)
    assert out.shape == (2, 4, 16, 8)
    out.square().sum().backward()
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in maps)


def test_decoder_errors_name_the_bad_input() -> None:
    dec = PartDecoder((8, 16, 32))
    with pytest.raises(ValueError, match="expects 3 maps"):
        dec(_maps()[:2])
    bad = _maps()
    bad[1] = torch.randn(2, 15, 8, 4)
    with pytest.raises(ValueError, match=r"input 1 must have shape \(B, 16, h, w\)"):
        dec(bad)
    for kwargs in ({"in_channels": ()}, {"in_channels": (8,), "num_classes": 1},
                   {"in_channels": (8,), "width": 0}):
        with pytest.raises(ValueError):
            PartDecoder(**kwargs)  # type: ignore[arg-type]


def test_dice_is_zero_for_a_perfect_prediction_and_ignores_ignored_pixels() -> None:
    labels = torch.randint(0, 4, (2, 8, 4))
    perfect = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float() * 40
    assert part_dice_loss(perfect, labels).item() < 1e-3
    wrong = perfect.roll(1, dims=1)
    assert part_dice_loss(wrong, labels).item() > 0.9
    # ignored pixels: changing their logits changes nothing
    ignored = labels.clone()
    ignored[:, :4] = IGNORE_INDEX
    noisy = perfect.clone()
    noisy[:, :, :4] = torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(part_dice_loss(noisy, ignored), part_dice_loss(perfect, ignored))


def test_dice_weights_small_classes_like_large_ones() -> None:
    """Missing the head (few pixels) costs dice as much as missing a large class would."""
    labels = torch.zeros(1, 20, 10, dtype=torch.long)
    labels[:, :2, 4:6] = 1  # a 4-pixel head
    no_head = torch.zeros(1, 4, 20, 10)
    no_head[:, 0] = 10.0  # everything background
    ce_only = part_map_loss(no_head, labels)
    with_dice = part_map_loss(no_head, labels, dice_weight=1.0)
    assert ce_only.item() < 0.3  # cross-entropy barely notices the missing head
    # dice: the head's term 1 - 1/5 averaged with the background's (about 0)
    assert with_dice.item() - ce_only.item() > 0.35
    with pytest.raises(ValueError, match="dice_weight"):
        part_map_loss(no_head, labels, dice_weight=-1.0)


def test_dice_loss_shapes_checked() -> None:
    with pytest.raises(ValueError, match="logits must have shape"):
        part_dice_loss(torch.zeros(4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must have shape"):
        part_dice_loss(torch.zeros(1, 4, 2, 2), torch.zeros(2, 2, 2, dtype=torch.long))


def test_confident_labels_keep_only_confident_pixels_at_the_asked_size() -> None:
    logits = torch.zeros(1, 4, 2, 2)
    logits[0, 2, 0, 0] = 10.0  # confident "upper"
    logits[0, 1, 1, 1] = 1.0  # unsure "head"
    out = confident_part_labels(logits, threshold=0.9)
    assert out.tolist() == [[[2, 255], [255, 255]]]
    assert confident_part_labels(logits, threshold=0.0)[0, 1, 1].item() == 1
    assert confident_part_labels(logits, size=(4, 4)).shape == (1, 4, 4)
    assert not confident_part_labels(logits.requires_grad_()).requires_grad
    with pytest.raises(ValueError, match="threshold"):
        confident_part_labels(logits, threshold=1.5)
    with pytest.raises(ValueError, match="logits must have shape"):
        confident_part_labels(torch.zeros(4, 2, 2))


@pytest.mark.parametrize("portion", [0.25, 0.5, 1.0])
def test_class_balanced_self_labels_keep_a_portion_of_every_class(portion: float) -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 8, 5) * 2
    logits[:, 1] -= 3.0  # a small, unconfident class: the head
    pred = torch.softmax(logits, 1).argmax(1)
    plain = confident_part_labels(logits, threshold=0.95)
    balanced = confident_part_labels(logits, threshold=0.95, class_portion=portion)
    for c in range(4):
        n = int((pred == c).sum())
        kept = int((balanced == c).sum())
        assert kept >= min(n, int(portion * n))  # at least the portion (ties aside)
        assert kept >= int((plain == c).sum())  # never fewer than the global threshold
    assert bool(((balanced == pred) | (balanced == 255)).all())  # labels are the argmax
    # the kept pixels of a class are its most confident ones
    conf = torch.softmax(logits, 1).amax(1)
    for c in range(4):
        mine, kept = conf[pred == c], conf[balanced == c]
        if len(kept) and len(kept) < len(mine):
            assert kept.min() >= mine[~torch.isin(mine, kept)].max()


def test_class_portion_zero_is_the_global_threshold_and_bad_values_are_named() -> None:
    logits = torch.randn(2, 4, 6, 3)
    assert torch.equal(confident_part_labels(logits, threshold=0.6),
                       confident_part_labels(logits, threshold=0.6, class_portion=0.0))
    with pytest.raises(ValueError, match="class_portion"):
        confident_part_labels(logits, class_portion=1.5)
