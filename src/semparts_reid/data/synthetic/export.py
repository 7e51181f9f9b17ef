"""Write a synthetic domain to a folder of your choice, as a Market-1501 dataset.

:func:`write_synthetic_market` renders a domain straight into ``bounding_box_train/``,
``query/`` and ``bounding_box_test/`` under a new folder, by default *without* the
``.parts.png`` ground-truth maps, so the result looks like real data to the library:
``build_dataset("market1501:<folder>")`` reads it, and no part map is there to be used.
This is how to test a method on a domain whose rendering nobody tuned to (``c``) with
the evidence a real target would give.

Example:
    >>> from semparts_reid.data.synthetic import write_synthetic_market
    >>> root = write_synthetic_market("c", "/data/synthetic-c", size="tiny")  # doctest: +SKIP
    >>> build_dataset(f"market1501:{root}")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ...errors import InputError
from .config import GENERATOR_VERSION, make_config
from .generate import render_all

__all__ = ["INFO_FILE", "write_synthetic_market"]

logger = logging.getLogger(__name__)

INFO_FILE = "synthetic.json"


def write_synthetic_market(
    domain: str,
    root: str | os.PathLike[str],
    *,
    size: str = "default",
    seed: int = 0,
    part_maps: bool = False,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Render ``synthetic:<domain>`` into ``root`` in the Market-1501 layout; return ``root``.

    The files are rendered into a temporary folder beside ``root`` that is renamed onto
    it only when complete, so ``root`` never holds a partial dataset. The images are the
    same as those of ``build_dataset(f"synthetic:{domain}")`` with the same size, seed and
    options. ``root/synthetic.json`` records the configuration (the Market reader ignores
    it).

    Args:
        domain: ``"a"``, ``"b"`` or ``"c"``.
        root: the folder to create; it must not exist or be an empty folder.
        size: preset ``"tiny"``, ``"small"``, ``"default"`` or ``"large"``.
        seed: generation seed.
        part_maps: also write the ground-truth ``<stem>.parts.png`` maps (default: no,
            like a real dataset without a human parser).
        progress: show a progress bar.
        **options: other :class:`~.config.SyntheticConfig` fields (``train_ids``,
            ``height``, ...).

    Raises:
        InputError: an unknown domain, size or option, or ``root`` is a file or a
            folder that is not empty.
    """
    cfg = make_config(str(domain).strip().lower(), size=size, seed=seed, **options)
    final = Path(root).expanduser()
    if final.is_file() or final.is_symlink():
        raise InputError(f"output folder {final} is a file: expected a new or empty folder")
    if final.is_dir() and any(final.iterdir()):
        raise InputError(
            f"output folder {final} is not empty: expected a new or empty folder "
            "(remove it or choose another one)"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        n = render_all(cfg, tmp, progress, part_maps=part_maps)
        info = {
            "config": asdict(cfg),
            "images": n,
            "part_maps": part_maps,
            "generator_version": GENERATOR_VERSION,
        }
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=1))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; a folder's usual mode
        if final.is_dir():
            final.rmdir()  # empty (checked above): os.replace needs the name free or empty
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote synthetic:%s (%d images, part maps: %s) to %s", domain, n, part_maps, final)
    return final


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
