"""Atomic file writes: write to a temporary file in the same folder, then ``os.replace``.

A crash or Ctrl-C part-way never leaves a truncated file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    """The process umask (read by setting it and putting it back).

    Read per call, not cached, so a later ``os.umask`` is honoured; the window in which
    another thread could see the temporary 0 is two system calls long.
    """
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary file name beside ``path``; on success move it onto ``path``.

    For writers that take a file name rather than a handle (``torch.onnx.export``, a
    checker that re-reads the file): whatever is left there when the block ends without
    an error replaces ``path``; on an error the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    # mkstemp creates the file 0600; give the result the mode open() would (0666 & ~umask)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success move it onto ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> with atomic_open(target, "w") as f:
        ...     _ = f.write("hello")
        >>> target.read_text()
        'hello'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)


def atomic_save_numpy(path: str | os.PathLike[str], array: Any, **arrays: Any) -> Path:
    """Save ``array`` as ``.npy``, or ``array`` plus named ``arrays`` as ``.npz`` (by suffix).

    In the ``.npz`` case ``array`` is stored under the key ``features``.
    """
    import numpy as np

    target = Path(path)
    with atomic_open(target, "wb") as handle:
        if target.suffix == ".npz":
            np.savez(handle, features=array, **arrays)
        else:
            if arrays:
                raise ValueError(f"{target}: extra arrays {sorted(arrays)} need an .npz file")
            np.save(handle, array)
    return target
