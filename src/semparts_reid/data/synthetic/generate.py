"""Generation and caching of the synthetic domains.

:func:`synthetic_dataset` turns a domain name and a size preset into a
:class:`SyntheticConfig` (:mod:`.config`, re-exported here), draws its images' random
choices (:mod:`.plan`), renders them with the vectorised renderer
(:mod:`semparts_reid.data.synthetic.render`) on first use, writes them in the
Market-1501 layout, and reads the folder back with
:func:`semparts_reid.data.market_layout.read_market_folder`.

Datasets are cached under ``$SEMPARTS_REID_HOME/synthetic`` (default
``~/.cache/semparts_reid/synthetic``), one folder per domain, size, seed and generator
version. Generation goes to a temporary folder that is renamed into place only when
complete (with a ``COMPLETE.json`` marker), so a killed run never leaves a dataset that
looks whole.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..market_layout import SPLIT_FOLDERS, read_market_folder
from ..records import ReIDDataset
from .config import GENERATOR_VERSION, SIZE_PRESETS, SyntheticConfig, make_config
from .plan import SCENES_PER_CAMERA, plan_render
from .render import DOMAINS

__all__ = [
    "DOMAINS",
    "GENERATOR_VERSION",
    "MARKER",
    "SCENES_PER_CAMERA",
    "SIZE_PRESETS",
    "SyntheticConfig",
    "cache_dir",
    "generate_synthetic",
    "make_config",
    "synthetic_dataset",
]

logger = logging.getLogger(__name__)

MARKER = "COMPLETE.json"
_CHUNK = 64


def cache_dir() -> Path:
    """``$SEMPARTS_REID_HOME`` or ``~/.cache/semparts_reid``."""
    env = os.environ.get("SEMPARTS_REID_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "semparts_reid"


def render_all(cfg: SyntheticConfig, out: Path, progress: bool, part_maps: bool = True) -> int:
    """Render ``cfg``'s images into ``out`` in the Market-1501 layout; return their count.

    ``part_maps=False`` writes the images only (no ``<stem>.parts.png``).
    """
    plan = plan_render(cfg)
    n = len(plan)
    for folder in SPLIT_FOLDERS.values():
        (out / folder).mkdir(parents=True)
    bar = tqdm(total=n, desc=f"synthetic:{cfg.domain}", disable=not progress, unit="img")
    # encoding releases the GIL: a few threads hide file-system latency. On any error the
    # pool is drained before the caller removes the temporary folder, so no writer can
    # re-create files in it afterwards.
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        for lo in range(0, n, _CHUNK):
            sl = slice(lo, min(lo + _CHUNK, n))
            img8, part = plan.render(sl)
            stems = [str(out / nm) for nm in plan.names[sl]]
            parts: list[np.ndarray | None] = list(part) if part_maps else [None] * len(stems)
            list(pool.map(_write_one, stems, img8, parts, [plan.jpeg_quality] * len(stems)))
            bar.update(img8.shape[0])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return n


def _write_one(stem: str, image: np.ndarray, part: np.ndarray | None, quality: int) -> None:
    """Write ``<stem>.jpg`` and, unless ``part`` is None, ``<stem>.parts.png``."""
    Image.fromarray(image).save(f"{stem}.jpg", quality=quality)
    if part is not None:
        Image.fromarray(part).save(f"{stem}.parts.png", compress_level=1)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_tmp(root: Path) -> None:
    """Delete temporary folders left by killed generations (their process is gone)."""
    for d in root.glob(".tmp-*"):
        try:
            pid = int(d.name.split("-")[-2])
        except (IndexError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def generate_synthetic(
    cfg: SyntheticConfig, *, root: str | os.PathLike[str] | None = None, progress: bool = True
) -> Path:
    """Generate (or reuse from the cache) one domain; return its Market-1501-layout folder."""
    base = Path(root).expanduser() if root is not None else cache_dir() / "synthetic"
    final = base / cfg.key
    if (final / MARKER).is_file():
        return final
    base.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(base)
    if final.exists():  # a folder without marker was not made by us atomically: rebuild it
        logger.warning("removing incomplete synthetic dataset %s", final)
        shutil.rmtree(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{cfg.key}-", suffix=f"-{os.getpid()}-x", dir=base))
    try:
        n = render_all(cfg, tmp, progress)
        marker = {"config": asdict(cfg), "images": n, "generator_version": GENERATOR_VERSION}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / MARKER).is_file():  # not a concurrent winner: a real error
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("generated synthetic:%s (%d images) in %s", cfg.domain, n, final)
    return final


def synthetic_dataset(
    domain: str,
    *,
    size: str = "default",
    root: str | os.PathLike[str] | None = None,
    progress: bool = True,
    skip_corrupt: bool = False,
    verify: bool = False,
    **options: Any,
) -> ReIDDataset:
    """The ``synthetic:<domain>`` dataset, generated on first use.

    Args:
        domain: ``"a"`` (6 cameras, Market-like), ``"b"`` (8 cameras, Duke-like) or
            ``"c"`` (7 cameras; other bodies, poses, clothing and scenes than a and b).
        size: preset ``"tiny"`` (tests), ``"small"``, ``"default"`` (demo) or ``"large"``.
        root: cache folder (default ``cache_dir() / "synthetic"``).
        **options: :class:`SyntheticConfig` fields overriding the preset, e.g.
            ``train_ids=20, seed=3, height=64, width=32``.
    """
    cfg = make_config(domain.strip().lower(), size=size, **options)
    folder = generate_synthetic(cfg, root=root, progress=progress)
    return read_market_folder(
        f"synthetic-{cfg.domain}", folder, skip_corrupt=skip_corrupt, verify=verify
    )
