"""Fixtures for the data tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synthetic datasets go to a per-session temporary cache, never the user's."""
    monkeypatch.setenv("SEMPARTS_REID_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
