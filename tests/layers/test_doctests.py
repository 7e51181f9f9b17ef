"""The docstring examples of the part modules and a few others run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "semparts_reid.layers.part_pooling",
    "semparts_reid.layers.part_classifier",
    "semparts_reid.layers.part_decoder",
    "semparts_reid.layers.part_clustering",
    "semparts_reid.layers.heads",
    "semparts_reid.layers.gemm_conv",
    "semparts_reid.metrics.part_distance",
    "semparts_reid.models.backbones",
    "semparts_reid.models.sempartsnet",
    "semparts_reid.models.factory",
    "semparts_reid.errors",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"no docstring examples found in {name}"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
