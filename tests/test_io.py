"""Atomic writes: the final name holds either the old content or the complete new one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semparts_reid._io import atomic_open, atomic_path, atomic_save_numpy, atomic_write_text


def test_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("use_path", [False, True])
def test_failure_keeps_the_old_file(tmp_path: Path, use_path: bool) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="crash"):
        if use_path:
            with atomic_path(target) as tmp:
                Path(tmp).write_bytes(b"half")
                raise RuntimeError("crash")
        else:
            with atomic_open(target, "wb") as fh:
                fh.write(b"half")
                raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_numpy_files_and_bad_arguments(tmp_path: Path) -> None:
    x = np.arange(6.0).reshape(2, 3)
    atomic_save_numpy(tmp_path / "f.npy", x)
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), x)
    atomic_save_numpy(tmp_path / "f.npz", x, pids=np.array([1, 2]))
    with np.load(tmp_path / "f.npz") as data:
        np.testing.assert_array_equal(data["features"], x)
        np.testing.assert_array_equal(data["pids"], [1, 2])
    with pytest.raises(ValueError, match=r"\.npz"):
        atomic_save_numpy(tmp_path / "g.npy", x, pids=np.array([1]))
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "h", "a"):
            pass


def test_atomic_files_get_the_mode_open_would_give(tmp_path) -> None:
    import os
    import stat

    from semparts_reid._io import atomic_write_text

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "out.txt", "x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644
