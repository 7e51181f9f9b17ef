"""Fixtures for the inference tests (helpers live in ``inference_helpers``)."""

from __future__ import annotations

import pytest
from inference_helpers import StandIn, stand_in, tiny_model
from torch import nn


@pytest.fixture(name="tiny_model")
def _tiny_model() -> nn.Module:
    """The real ``semparts_resnet18`` at 64x32, fixed seed, eval mode."""
    return tiny_model()


@pytest.fixture(name="stand_in")
def _stand_in() -> StandIn:
    """A small stand-in module with ``data_config``/``feat_dim`` returning parts."""
    return stand_in()
