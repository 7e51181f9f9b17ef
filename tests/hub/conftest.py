"""Every hub test gets its own weights cache and starts online."""

from __future__ import annotations

from pathlib import Path

import pytest

from semparts_reid import hub


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hub.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.delenv(hub.ENV_OFFLINE, raising=False)
