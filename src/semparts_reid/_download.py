"""Resumable, verified HTTP downloads into a cache folder (used by :mod:`semparts_reid.hub`).

Files stream into ``<name>.partial`` beside their final name, resume with an HTTP ``Range``
request after a cut, are checked against a sha256 (full or a prefix) and are moved into
place with ``os.replace``. ``SEMPARTS_REID_OFFLINE=1`` serves only what is cached.
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
    "ChecksumError",
    "DownloadError",
    "download_to_cache",
    "file_sha256",
    "get_cache_dir",
    "hash_prefix_from_url",
]

logger = logging.getLogger("semparts_reid.hub")

ENV_HOME = "SEMPARTS_REID_HOME"
ENV_OFFLINE = "SEMPARTS_REID_OFFLINE"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.[^.]+$")  # torchvision: resnet18-f37072fd.pth
_HEX = re.compile(r"^[a-f0-9]{6,64}$")
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


def _offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def _is_url(text: str) -> bool:
    return urllib.parse.urlparse(text).scheme in ("http", "https")


def _filename_from_url(url: str) -> str:
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


def _check_hash(path: Path, expected: str | None, *, delete: bool) -> None:
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
    found = _HASH_IN_NAME.search(_filename_from_url(url))
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
    """Return the cached, verified file for ``url``, downloading it if needed."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else get_cache_dir()
    dest = folder / _filename_from_url(url)
    if dest.is_file():
        try:
            _check_hash(dest, expected, delete=not _offline())
            return dest
        except ChecksumError:
            if _offline():
                raise
            logger.warning("cached %s failed its checksum; downloading it again", dest)
    if _offline():
        raise DownloadError(
            f"{ENV_OFFLINE}=1 and {url} is not in the cache (expected {dest}); "
            "download it once online or copy the file there"
        )
    if expected is None:
        logger.warning("no sha256 known for %s: the download cannot be verified", url)
    folder.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    with _file_lock(dest.with_name(dest.name + ".lock")):
        if dest.is_file():  # another process finished it while we waited for the lock
            _check_hash(dest, expected, delete=True)
            return dest
        _fetch(url, partial, progress=progress, timeout=timeout, retries=retries,
               backoff=backoff)
        _check_hash(partial, expected, delete=True)
        os.replace(partial, dest)
    logger.info("downloaded %s to %s", url, dest)
    return dest


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
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


def _fetch(
    url: str,
    partial: Path,
    *,
    progress: bool,
    timeout: float | tuple[float, float],
    retries: int,
    backoff: float,
) -> None:
    """Download ``url`` into ``partial``, resuming what is there; bounded attempts."""
    import requests
    from tqdm.auto import tqdm

    if retries < 0:
        raise ValueError(f"retries={retries} must be >= 0")
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            delay = min(backoff * 2 ** (attempt - 1), 60.0)
            logger.warning("download of %s failed (%s); retry %d/%d in %.1fs",
                           url, last_error, attempt, retries, delay)
            time.sleep(delay)
        offset = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=timeout) as resp:
                if resp.status_code == 416 and offset:  # nothing left to send, or stale file
                    total = _content_range_total(resp.headers.get("Content-Range", ""))
                    if total == offset:
                        return
                    partial.unlink(missing_ok=True)
                    last_error = DownloadError(f"HTTP 416 for a resume at byte {offset}")
                    continue
                if resp.status_code in (408, 429) or resp.status_code >= 500:
                    last_error = DownloadError(f"HTTP {resp.status_code} for {url}")
                    continue
                if resp.status_code >= 400:
                    raise DownloadError(f"HTTP {resp.status_code} {resp.reason} for {url}")
                resumed = resp.status_code == 206
                if resumed and not resp.headers.get("Content-Range", "").startswith(
                    f"bytes {offset}-"
                ):
                    partial.unlink(missing_ok=True)
                    last_error = DownloadError("server answered a resume with a wrong range")
                    continue
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
                    last_error = DownloadError(f"transfer cut at {size} of {total} bytes")
                    continue
                return
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            last_error = exc
    raise DownloadError(
        f"could not download {url} after {retries + 1} attempts: {last_error}; "
        f"the partial file {partial} is kept and the next call resumes it"
    )


def _content_range_total(header: str) -> int | None:
    match = re.match(r"bytes \*/(\d+)", header.strip())
    return int(match.group(1)) if match else None

