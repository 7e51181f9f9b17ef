"""SemanticPartClassifier and part_map_loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semparts_reid.layers.part_classifier import (
    SemanticPartClassifier,
    part_map_loss,
    resize_labels,
)
from semparts_reid.layers.parts import IGNORE_INDEX, NUM_PART_CLASSES


def test_classifier_shapes_and_maps() -> None:
    clf = SemanticPartClassifier(16)
    x = torch.randn(2, 16, 8, 4)
    logits = clf(x)
    assert logits.shape == (2, NUM_PART_CLASSES, 8, 4)
    maps = clf.part_maps(x)
    torch.testing.assert_close(maps.sum(1), torch.ones(2, 8, 4))
    assert isinstance(clf.bn, torch.nn.BatchNorm2d) and clf.conv.kernel_size == (1, 1)
    with pytest.raises(ValueError, match=r"\(B, 16, h, w\)"):
        clf(torch.randn(2, 8, 4, 4))
    with pytest.raises(ValueError, match="num_classes"):
        SemanticPartClassifier(16, num_classes=1)


def test_resize_labels_matches_interpolate_nearest_exact() -> None:
    labels = torch.randint(0, 4, (2, 23, 17))
    labels[:, ::5] = IGNORE_INDEX
    for size in ((6, 4), (4, 2), (23, 17), (46, 9)):
        out = resize_labels(labels, size)
        ref = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")
        assert torch.equal(out, ref[:, 0].long()), size


def test_centred_person_gives_mirror_symmetric_gradient() -> None:
    """A left/right symmetric label map must pull the logits symmetrically.

    Regression: corner-sampled label down-sampling labelled the left column of a
    2-column map as background and the right one as body.
    """
    labels = torch.zeros(1, 64, 32, dtype=torch.long)
    labels[0, 8:56, 6:26] = 2  # a centred body
    for resize in ("logits", "labels"):
        logits = torch.zeros(1, 4, 4, 2, requires_grad=True)
        part_map_loss(logits, labels, resize=resize).backward()
        assert logits.grad is not None
        torch.testing.assert_close(logits.grad, logits.grad.flip(-1))


def test_default_upsamples_logits_to_the_labels() -> None:
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 4, 6, 4, generator=g)
    labels = torch.randint(0, 4, (2, 24, 16), generator=g)
    labels[1, :, :3] = IGNORE_INDEX
    up = F.interpolate(logits, size=(24, 16), mode="bilinear", align_corners=False)
    ref = F.cross_entropy(up, labels, ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(part_map_loss(logits, labels), ref)
    with pytest.raises(ValueError, match="resize"):
        part_map_loss(logits, labels, resize="bicubic")


def test_loss_matches_cross_entropy_with_ignore() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 4, generator=g)
    labels = torch.randint(0, 4, (2, 24, 16), generator=g)
    labels[0, :8] = IGNORE_INDEX
    small = resize_labels(labels, (6, 4))
    for smoothing in (0.0, 0.1):
        ref = F.cross_entropy(logits, small, ignore_index=IGNORE_INDEX, label_smoothing=smoothing)
        got = part_map_loss(logits, labels, label_smoothing=smoothing, resize="labels")
        torch.testing.assert_close(got, ref)


def test_class_balance_weights_inverse_frequency() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 4, 8, 4, generator=g)
    labels = torch.zeros(1, 8, 4, dtype=torch.long)
    labels[0, 0, 0] = 1  # one head pixel, no upper/lower pixels
    counts = torch.tensor([31.0, 1.0, 0.0, 0.0])
    weight = torch.tensor([32 / (2 * 31), 32 / 2, 0.0, 0.0])
    ref = F.cross_entropy(logits, labels, weight=weight)
    got = part_map_loss(logits, labels, class_balance=True)
    torch.testing.assert_close(got, ref)
    assert counts.sum() == 32
    # balanced: the single head pixel and the 31 background pixels weigh the same in total
    got_smooth = part_map_loss(logits, labels, class_balance=True, label_smoothing=0.2)
    ref_smooth = F.cross_entropy(logits, labels, weight=weight, label_smoothing=0.2)
    torch.testing.assert_close(got_smooth, ref_smooth)


def test_all_ignored_gives_zero_with_graph() -> None:
    logits = torch.randn(2, 4, 3, 2, requires_grad=True)
    labels = torch.full((2, 3, 2), IGNORE_INDEX)
    loss = part_map_loss(logits, labels, class_balance=True)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_loss_accepts_channel_dim_and_half_logits() -> None:
    logits = torch.randn(2, 4, 3, 2).to(torch.bfloat16)
    labels = torch.randint(0, 4, (2, 1, 3, 2))
    loss = part_map_loss(logits, labels)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


@pytest.mark.parametrize(
    ("labels", "kwargs", "exc", "match"),
    [
        (torch.randint(0, 4, (2, 3)), {}, ValueError, "labels must have shape"),
        (torch.zeros(2, 3, 2), {}, TypeError, "integer"),
        (torch.randint(0, 4, (3, 3, 2)), {}, ValueError, "batch size"),
        (torch.full((2, 3, 2), 7), {}, ValueError, r"\[7\] outside"),
        (torch.zeros(2, 3, 2, dtype=torch.long), {"label_smoothing": 1.0}, ValueError, "smoothing"),
    ],
)
def test_loss_errors(labels, kwargs, exc, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=match):
        part_map_loss(torch.randn(2, 4, 3, 2), labels, **kwargs)
