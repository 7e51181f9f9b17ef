"""Shared fixtures of the engine tests: the tiny synthetic pair and a fast config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """``synthetic:a`` / ``synthetic:b`` at the ``tiny`` size, cached in a temp folder."""
    from semparts_reid.data.datasets import build_dataset

    mp = pytest.MonkeyPatch()
    mp.setenv("SEMPARTS_REID_HOME", str(tmp_path_factory.mktemp("srh")))
    try:
        yield build_dataset("synthetic:a?size=tiny"), build_dataset("synthetic:b?size=tiny")
    finally:
        mp.undo()
