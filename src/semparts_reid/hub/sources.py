"""A weights source (registry name, ``http(s)`` URL or local file) -> a verified local file.

:func:`download_weights` is the hub's front door: it resolves a registry name to its URL
and sha256 (:mod:`.registry`), then lets :mod:`.download` fetch the file into the cache,
or checks a local file in place.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError, InputNotFoundError
from .download import SHA256_HEX, check_hash, download_to_cache, hash_prefix_from_url, is_url
from .registry import get_pretrained_cfg, list_pretrained

__all__ = ["download_weights"]


def download_weights(
    name_or_url: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    timeout: float | tuple[float, float] = (10.0, 60.0),
    retries: int = 4,
    backoff: float = 1.0,
) -> Path:
    """Return a local path to the weights, downloading them into the cache if needed.

    Args:
        name_or_url: a registry name (:func:`list_pretrained`), an ``http(s)`` URL or a
            local file path.
        sha256: expected sha256 (full, or a hex prefix). Defaults to the registry's, or the
            hex prefix in a URL file name (``name-<hex>.pth``, as ``torch.hub`` does).
        cache_dir: folder to download into; default :func:`get_cache_dir`.
        progress: show a tqdm progress bar.
        timeout: ``requests`` timeout in seconds (connect, read).
        retries: extra attempts after a connection error, a timeout, a cut transfer or an
            HTTP 408/429/5xx; each attempt resumes the partial file with a ``Range`` request.
        backoff: first back-off delay in seconds, doubled after each failed attempt.

    Returns:
        Path of the verified file.

    Raises:
        DownloadError: HTTP error (e.g. 404), retries exhausted, or offline without a cache.
        ChecksumError: the downloaded file's sha256 does not match (the file is deleted).
        InputNotFoundError: ``name_or_url`` is neither a name, a URL nor an existing file
            (a ``FileNotFoundError``).
        InputError: ``sha256`` is not 6-64 hex digits.
    """
    source = os.fspath(name_or_url)
    if sha256 is not None and not SHA256_HEX.match(sha256.lower()):
        raise InputError(f"sha256={sha256!r} is not 6-64 hex digits")
    expected: str | None
    names = list_pretrained()
    if source in names:
        cfg = get_pretrained_cfg(source)
        url, expected = cfg.url, sha256 or cfg.sha256
    elif is_url(source):
        url = source
        expected = sha256 or hash_prefix_from_url(url)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputNotFoundError(
                f"{source!r} is not a registry name ({names}), an http(s) URL "
                "or an existing file"
            )
        check_hash(path, sha256, delete=False)
        return path
    return download_to_cache(
        url, expected, cache_dir,
        progress=progress, timeout=timeout, retries=retries, backoff=backoff,
    )
