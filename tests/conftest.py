"""Suite-wide fixtures: no test ever writes to the user's cache folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _suite_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("SEMPARTS_REID_HOME")
    os.environ["SEMPARTS_REID_HOME"] = str(tmp_path_factory.mktemp("semparts_home"))
    yield
    if old is None:
        os.environ.pop("SEMPARTS_REID_HOME", None)
    else:
        os.environ["SEMPARTS_REID_HOME"] = old
