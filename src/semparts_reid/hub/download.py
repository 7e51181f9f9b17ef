"""Resumable, verified HTTP downloads into a cache folder: the machinery of ``download_weights``.

Files stream into ``<name>.partial`` beside their final name, resume with an HTTP ``Range``
request after a cut, are checked against a sha256 (full or a prefix) and are moved into
place with ``os.replace``. Processes asking for the same file download it once
(:func:`file_lock`). ``SEMPARTS_REID_OFFLINE=1`` serves only what is cached.

This module knows URLs and files, not registry names: :func:`semparts_reid.hub.download_weights`
resolves a name first, then calls :func:`download_to_cache`. ``requests`` and ``tqdm`` are
imported only when a transfer starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "ENV_HOME",
    "ENV_OFFLINE",
    "HASH_IN_NAME",
    "SHA256_HEX",
    "ChecksumError",
    "DownloadError",
    "check_hash",
    "download_to_cache",
    "fetch",
    "file_lock",
    "file_sha256",
    "filename_from_url",
    "get_cache_dir",
    "hash_prefix_from_url",
    "is_offline",
    "is_url",
]

logger = logging.getLogger(__name__)

ENV_HOME = "SEMPARTS_REID_HOME"
"""Environment variable: the semparts-reid home folder (weights go in its ``weights/``)."""
ENV_OFFLINE = "SEMPARTS_REID_OFFLINE"
"""Environment variable: ``1`` / ``true`` / ``yes`` / ``on`` serves only cached files."""
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.[^.]+$")
"""The sha256 prefix a file name carries, torchvision style: ``resnet18-f37072fd.pth``."""
SHA256_HEX = re.compile(r"^[a-f0-9]{6,64}$")
"""A full sha256 or a prefix of it: 6 to 64 lowercase hex digits."""
_CHUNK = 1 << 20  # hashing block
_NET_CHUNK = 1 << 16  # network block: a cut transfer loses at most this much


class DownloadError(RuntimeError):
    """A download failed (HTTP error, too many retries, offline without a cached file)."""


class ChecksumError(DownloadError):
    """The sha256 of a file does not match the expected one."""


def get_cache_dir() -> Path:
    """Folder for downloaded weights: ``$SEMPARTS_REID_HOME/weights``."""
    home = os.environ.get(ENV_HOME) or os.path.join("~", ".cache", "semparts_reid")
    return Path(home).expanduser() / "weights"


def is_offline() -> bool:
    """Whether ``SEMPARTS_REID_OFFLINE`` asks for cached files only."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def is_url(text: str) -> bool:
    """Whether ``text`` is an ``http(s)`` URL (a local path or a registry name is not)."""
    return urllib.parse.urlparse(text).scheme in ("http", "https")


def filename_from_url(url: str) -> str:
    """The cache file name for ``url``: the last path component, made filesystem-safe.

    A URL without a usable name gets ``weights-<sha256 of the URL, 16 digits>``.
    """
    name = os.path.basename(urllib.parse.urlparse(url).path)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if not name or name.startswith("."):
        name = "weights-" + hashlib.sha256(url.encode()).hexdigest()[:16]
    return name


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_hash(path: Path, expected: str | None, *, delete: bool) -> None:
    """Check that the sha256 of ``path`` starts with ``expected`` (no check when ``None``).

    Raises:
        ChecksumError: naming the file, the expected and the actual hash; with ``delete``
            the file is removed first (never do that to a user's own file).
    """
    if not expected:
        return
    actual = file_sha256(path)
    if not actual.startswith(expected.lower()):
        if delete:
            path.unlink(missing_ok=True)
        kind = "sha256" if len(expected) == 64 else "sha256 prefix"
        raise ChecksumError(
            f"{path}: checksum mismatch: expected {kind} {expected}, got sha256 {actual}"
            + ("; the file was deleted" if delete else "")
        )


def hash_prefix_from_url(url: str) -> str | None:
    """The hex digest prefix a file name carries (``resnet18-f37072fd.pth`` -> ``f37072fd``)."""
    found = HASH_IN_NAME.search(filename_from_url(url))
    return found.group(1) if found else None


def download_to_cache(
    url: str,
    expected: str | None,
    cache_dir: str | os.PathLike[str] | None,
    *,
    progress: bool,
    timeout: float | tuple[float, float],
    retries: int,
    backoff: float,
) -> Path:
    """Return the cached, verified file for ``url``, downloading it if needed.

    Args:
        url: an ``http(s)`` URL.
        expected: sha256 (full or a prefix) the file must have; ``None``: unverified (a
            WARNING says so).
        cache_dir: folder to download into; ``None``: :func:`get_cache_dir`.
        progress, timeout, retries, backoff: as :func:`semparts_reid.hub.download_weights`.

    Raises:
        DownloadError: offline without a cached file, HTTP error or retries exhausted.
        ChecksumError: the file does not match ``expected`` (it is deleted).
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else get_cache_dir()
    dest = folder / filename_from_url(url)
    if dest.is_file():
        try:
            check_hash(dest, expected, delete=not is_offline())
            return dest
        except ChecksumError:
            if is_offline():
                raise
            logger.warning("cached %s failed its checksum; downloading it again", dest)
    if is_offline():
        raise DownloadError(
            f"{ENV_OFFLINE}=1 and {url} is not in the cache (expected {dest}); "
            "download it once online or copy the file there"
        )
    if expected is None:
        logger.warning("no sha256 known for %s: the download cannot be verified", url)
    folder.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.is_file():  # another process finished it while we waited for the lock
            check_hash(dest, expected, delete=True)
            return dest
        fetch(url, partial, progress=progress, timeout=timeout, retries=retries,
               backoff=backoff)
        check_hash(partial, expected, delete=True)
        os.replace(partial, dest)
    logger.info("downloaded %s to %s", url, dest)
    return dest


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock on ``path`` (POSIX ``flock``; a no-op elsewhere).

    Several processes (e.g. the ranks of a distributed job) asking for the same file
    download it once: the others wait, then find it in the cache. The lock file is
    removed on release; a waiter that locked a file already unlinked tries again.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    for _ in range(100):
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    else:  # pragma: no cover - needs 100 lost races in a row
        raise DownloadError(f"could not lock {path}")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def fetch(
    url: str,
    partial: Path,
    *,
    progress: bool,
    timeout: float | tuple[float, float],
    retries: int,
    backoff: float,
) -> None:
    """Download ``url`` into ``partial``, resuming what is there; bounded attempts.

    After a connection error, a timeout, a cut transfer or HTTP 408/429/5xx it waits
    (``backoff`` seconds, doubled each time, at most 60) and resumes with a ``Range``
    request; other HTTP errors raise at once.

    Raises:
        ValueError: ``retries`` < 0.
        DownloadError: an HTTP error, or ``retries + 1`` failed attempts (the partial
            file is kept for the next call).
    """
    import requests

    if retries < 0:
        raise ValueError(f"retries={retries} must be >= 0")
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            delay = min(backoff * 2 ** (attempt - 1), 60.0)
            logger.warning("download of %s failed (%s); retry %d/%d in %.1fs",
                           url, last_error, attempt, retries, delay)
            time.sleep(delay)
        try:
            last_error = _attempt(url, partial, progress=progress, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            last_error = exc
        else:
            if last_error is None:
                return
    raise DownloadError(
        f"could not download {url} after {retries + 1} attempts: {last_error}; "
        f"the partial file {partial} is kept and the next call resumes it"
    )


def _attempt(
    url: str, partial: Path, *, progress: bool, timeout: float | tuple[float, float]
) -> DownloadError | None:
    """One try of :func:`fetch`: ``None`` when ``partial`` is complete, else the error
    worth a retry. Raises :class:`DownloadError` on an HTTP error not worth one, and
    lets the ``requests`` connection errors through."""
    import requests
    from tqdm.auto import tqdm

    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as resp:
        if resp.status_code == 416 and offset:  # nothing left to send, or stale file
            total = _content_range_total(resp.headers.get("Content-Range", ""))
            if total == offset:
                return None
            partial.unlink(missing_ok=True)
            return DownloadError(f"HTTP 416 for a resume at byte {offset}")
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            return DownloadError(f"HTTP {resp.status_code} for {url}")
        if resp.status_code >= 400:
            raise DownloadError(f"HTTP {resp.status_code} {resp.reason} for {url}")
        resumed = resp.status_code == 206
        if resumed and not resp.headers.get("Content-Range", "").startswith(
            f"bytes {offset}-"
        ):
            partial.unlink(missing_ok=True)
            return DownloadError("server answered a resume with a wrong range")
        start = offset if resumed else 0
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(partial, "ab" if resumed else "wb") as fh, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=partial.name[: -len(".partial")], disable=not progress, leave=False,
        ) as bar:
            for block in resp.iter_content(chunk_size=_NET_CHUNK):
                fh.write(block)
                bar.update(len(block))
        size = partial.stat().st_size
        if total is not None and size < total:
            return DownloadError(f"transfer cut at {size} of {total} bytes")
        return None


def _content_range_total(header: str) -> int | None:
    match = re.match(r"bytes \*/(\d+)", header.strip())
    return int(match.group(1)) if match else None

