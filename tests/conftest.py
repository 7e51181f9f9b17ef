"""Suite-wide fixtures: no test ever writes to the user's cache folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``--doctest-modules`` (pyproject.toml) would import every ``conftest.py`` as a module
    named ``conftest`` (two of them clash); they hold no examples, so skip them."""
    return True if collection_path.name == "conftest.py" else None


def pytest_configure(config: pytest.Config) -> None:
    """``SEMPARTS_TEST_TORCH_THREADS=N``: run the suite with ``torch.set_num_threads(N)``
    (one of the machine variations of ``make test-numeric-variations``)."""
    config.addinivalue_line(
        "markers", "numeric: numeric kernels whose verdict must not depend on the machine "
                   "(BLAS kernel, thread count, oneDNN ISA); rerun under variations in CI")
    threads = os.environ.get("SEMPARTS_TEST_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
