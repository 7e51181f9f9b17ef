"""The one rule for images without part maps (``losses._auto_part_targets``), shared by
``part_targets("auto")`` and ``losses.part_map_term``'s host-summarised path."""

from __future__ import annotations

import pytest
import torch

from semparts_reid.engine.losses import _auto_part_targets, part_targets
from semparts_reid.layers.part_classifier import confident_part_labels

SIZE = (16, 8)


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    parts = torch.randint(0, 4, (3, *SIZE), generator=g).to(torch.uint8)
    logits = torch.randn(3, 4, 8, 4, generator=g)
    fmap = torch.randn(3, 8, 4, 2, generator=g)
    return parts, logits, fmap


def _auto(parts: torch.Tensor | None, known: torch.Tensor | None, unlabeled: str,
          logits: torch.Tensor, fmap: torch.Tensor) -> torch.Tensor | None:
    return _auto_part_targets(parts, known, unlabeled=unlabeled, feature_map=fmap,
                              image_size=SIZE, part_logits=logits, threshold=0.3)


def test_maps_where_known_and_the_fallback_elsewhere() -> None:
    parts, logits, fmap = _inputs()
    known = torch.tensor([True, False, True])
    self_labels = confident_part_labels(logits, threshold=0.3, size=SIZE)
    got = _auto(parts, known, "self", logits, fmap)
    assert got is not None and got.dtype == torch.long
    assert torch.equal(got[known], parts[known].long())
    assert torch.equal(got[1], self_labels[1])


def test_without_fallback_or_without_maps() -> None:
    parts, logits, fmap = _inputs()
    known = torch.tensor([True, False, True])
    kept = _auto(parts, known, "none", logits, fmap)  # no fallback: the maps as they are
    assert kept is not None and kept.dtype == torch.long and torch.equal(kept, parts.long())
    assert _auto(None, None, "none", logits, fmap) is None  # neither: no loss
    got = _auto(None, None, "self", logits, fmap)  # no maps: the fallback alone
    assert got is not None
    assert torch.equal(got, confident_part_labels(logits, threshold=0.3, size=SIZE))


def test_part_targets_auto_is_the_same_rule() -> None:
    parts, logits, fmap = _inputs()
    parts[1] = 255
    for unlabeled in ("self", "pseudo", "none"):
        want = _auto(parts, (parts != 255).flatten(1).any(1), unlabeled, logits, fmap)
        got = part_targets("auto", parts=parts, feature_map=fmap, image_size=SIZE,
                           part_logits=logits, unlabeled=unlabeled, threshold=0.3)
        assert want is not None and got is not None and torch.equal(got, want)


def test_the_class_portion_reaches_the_self_labels() -> None:
    from semparts_reid.engine.config import TrainConfig
    from semparts_reid.errors import InputError

    _, logits, fmap = _inputs()
    got = _auto_part_targets(None, None, unlabeled="self", feature_map=fmap, image_size=SIZE,
                             part_logits=logits, threshold=0.99, class_portion=0.5)
    want = confident_part_labels(logits, threshold=0.99, size=SIZE, class_portion=0.5)
    assert got is not None and torch.equal(got, want)
    assert not torch.equal(want, confident_part_labels(logits, threshold=0.99, size=SIZE))
    assert TrainConfig().parts.self_label_class_portion == 0.0
    with pytest.raises(InputError, match="self_label_class_portion"):
        TrainConfig().replace(self_label_class_portion=2.0)
