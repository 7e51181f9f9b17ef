"""Fixtures of the command-line tests (helpers live in ``cli_helpers``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_helpers import TINY, tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_pair() -> tuple[Any, Any]:
    """``synthetic:a`` / ``synthetic:b`` at the ``tiny`` size (in the suite's temp cache)."""
    from semparts_reid.data.datasets import build_dataset

    return build_dataset(TINY.format("a")), build_dataset(TINY.format("b"))


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised ``semparts_resnet18`` checkpoint, written once per session."""
    return tiny_checkpoint(tmp_path_factory.mktemp("cli_ckpt") / "m.pt")
