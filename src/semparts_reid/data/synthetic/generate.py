"""Configuration, generation and caching of the synthetic domains.

:func:`synthetic_dataset` turns a domain name and a size preset into a
:class:`SyntheticConfig`, generates its images with the vectorised renderer
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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ...errors import InputError
from ..market_layout import SPLIT_FOLDERS, read_market_folder
from ..records import ReIDDataset
from .render import (
    DOMAINS,
    add_clutter,
    camera_and_capture,
    render_background,
    render_people,
    sample_colours,
    sample_identities,
    sample_scenes,
)

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2
MARKER = "COMPLETE.json"
SCENES_PER_CAMERA = 5
_CHUNK = 64


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of one synthetic domain.

    Attributes:
        domain: ``"a"`` or ``"b"``.
        train_ids / test_ids: identities in the training and in the query/gallery splits.
        max_per_cam: each identity is seen 1..max_per_cam times per camera, by 2-4 cameras.
        height / width: rendered image size in pixels.
        seed: generation seed; the same config always gives the same files.
    """

    domain: str = "a"
    train_ids: int = 100
    test_ids: int = 100
    max_per_cam: int = 4
    height: int = 128
    width: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise InputError(f"domain={self.domain!r}: expected one of {sorted(DOMAINS)}")
        for name in ("train_ids", "test_ids", "max_per_cam"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name}={getattr(self, name)}: expected >= 1")
        if self.height < 32 or self.width < 16:
            raise InputError(f"image size {self.height}x{self.width}: expected >= 32x16")

    @property
    def key(self) -> str:
        """Cache folder name: changes whenever the generated files would change."""
        return (
            f"{self.domain}-{self.train_ids}x{self.test_ids}-m{self.max_per_cam}-"
            f"{self.height}x{self.width}-s{self.seed}-v{GENERATOR_VERSION}"
        )


SIZE_PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"train_ids": 12, "test_ids": 10, "max_per_cam": 3},  # ~150 images, <1 s
    "small": {"train_ids": 50, "test_ids": 50, "max_per_cam": 3},
    "default": {"train_ids": 100, "test_ids": 100, "max_per_cam": 4},  # ~1.5k images
    "large": {"train_ids": 400, "test_ids": 400, "max_per_cam": 6},
}


def cache_dir() -> Path:
    """``$SEMPARTS_REID_HOME`` or ``~/.cache/semparts_reid``."""
    env = os.environ.get("SEMPARTS_REID_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "semparts_reid"


def _plan(cfg: SyntheticConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Which identity is seen by which camera how often, and the split of every image."""
    st = DOMAINS[cfg.domain]
    n_ids = cfg.train_ids + cfg.test_ids
    n_cam_ids = rng.integers(2, min(4, st.num_cams) + 1, n_ids)
    ident, cam, split = [], [], []
    for i in range(n_ids):  # per identity (setup only, a few hundred iterations)
        cams = rng.choice(st.num_cams, n_cam_ids[i], replace=False)
        counts = rng.integers(1, cfg.max_per_cam + 1, len(cams))
        is_test = i >= cfg.train_ids
        n_query_cams = -(-len(cams) // 2) if is_test else 0  # at least one gallery-only camera
        q_cams = set(rng.choice(cams, n_query_cams, replace=False).tolist())
        for c, k in zip(cams, counts):
            for j in range(k):
                ident.append(i)
                cam.append(c)
                split.append(0 if not is_test else (1 if (j == 0 and c in q_cams) else 2))
    # distractors (pid 0) and junk (pid -1) in the gallery: people of no identity
    n_extra = max(2, cfg.test_ids // 4)
    ident += list(range(n_ids, n_ids + n_extra))
    cam += rng.integers(0, st.num_cams, n_extra).tolist()
    n_junk = max(1, n_extra // 4)
    split += [3] * (n_extra - n_junk) + [4] * n_junk
    return {"ident": np.asarray(ident), "cam": np.asarray(cam), "split": np.asarray(split)}


def _clutter_params(rng: np.random.Generator, n: int, c: int, st: Any, aspect: float) -> dict:
    return {
        "cx": rng.uniform(0, aspect, (n, c)).astype(np.float32),
        "cy": rng.uniform(0.1, 0.95, (n, c)).astype(np.float32),
        "rw": rng.uniform(0.03, 0.12, (n, c)).astype(np.float32),
        "rh": rng.uniform(0.05, 0.25, (n, c)).astype(np.float32),
        "ellipse": rng.random((n, c)).astype(np.float32),
        "col": sample_colours(rng, n * c, st).reshape(n, c, 3),
    }


def _render_all(cfg: SyntheticConfig, out: Path, progress: bool) -> int:
    st = DOMAINS[cfg.domain]
    rng = np.random.default_rng([cfg.seed, ord(cfg.domain), GENERATOR_VERSION])
    plan = _plan(cfg, rng)
    ident, cam, split = plan["ident"], plan["cam"], plan["split"]
    n, n_people = len(ident), int(ident.max()) + 1
    attrs = sample_identities(rng, n_people, st)
    scenes = sample_scenes(rng, st.num_cams * SCENES_PER_CAMERA, st)
    # each (identity, camera) pair has a favourite scene and clutter layout
    pair = ident * st.num_cams + cam
    fav_scene = rng.integers(0, SCENES_PER_CAMERA, n_people * st.num_cams)[pair]
    aspect = cfg.width / cfg.height
    fav_clutter = _clutter_params(rng, n_people * st.num_cams, st.clutter, st, aspect)
    reuse = rng.random(n) < st.scene_reuse
    scene_id = cam * SCENES_PER_CAMERA + np.where(
        reuse, fav_scene, rng.integers(0, SCENES_PER_CAMERA, n)
    )
    own_clutter = _clutter_params(rng, n, st.clutter, st, aspect)
    clutter = {
        k: np.where(reuse.reshape((-1,) + (1,) * (v.ndim - 1)), fav_clutter[k][pair], v)
        for k, v in own_clutter.items()
    }
    cam_gain = (1 + rng.normal(0, st.cam_cast, (st.num_cams, 3))) * rng.uniform(
        *st.cam_bright, (st.num_cams, 1)
    )
    junk = split == 4
    scale = rng.uniform(*st.scale, n).astype(np.float32)
    geo = {
        "cx": (rng.uniform(-st.shift, st.shift, n) + junk * rng.choice([-0.2, 0.2], n)),
        "top": (1 - scale * 0.92) / 2 + rng.uniform(-st.shift, st.shift, n) * 0.6 + junk * 0.35,
        "scale": scale,
        "mirror": rng.choice([-1.0, 1.0], n),
        "back": rng.random(n) < 0.4,
        "stride": rng.uniform(0, 0.3, n),
        "occ": np.where(rng.random(n) < st.occlusion_p, rng.integers(1, 3, n), 0),
        "occ_size": rng.uniform(0.15, 0.4, n),
        "occ_col": sample_colours(rng, n, st),
    }
    gain = cam_gain[cam] * (1 + rng.normal(0, 0.04, (n, 1)))
    blur = rng.random(n) < st.blur_p
    noise = rng.uniform(0.5, 1.0, n) * st.noise
    quality = 92 if cfg.domain == "a" else 85

    names, pids = [], np.where(split >= 3, np.where(split == 4, -1, 0), ident + 1)
    gallery = SPLIT_FOLDERS["gallery"]
    folders = {0: SPLIT_FOLDERS["train"], 1: SPLIT_FOLDERS["query"], 2: gallery, 3: gallery,
               4: gallery}
    for f in set(folders.values()):
        (out / f).mkdir(parents=True)
    for i in range(n):
        pid_s = "-1" if pids[i] < 0 else f"{pids[i]:04d}"
        names.append(f"{folders[int(split[i])]}/{pid_s}_c{cam[i] + 1}s1_{i:06d}_00")

    render_rng = np.random.default_rng([cfg.seed, ord(cfg.domain), GENERATOR_VERSION, 1])
    bar = tqdm(total=n, desc=f"synthetic:{cfg.domain}", disable=not progress, unit="img")
    # encoding releases the GIL: a few threads hide file-system latency. On any error the
    # pool is drained before the caller removes the temporary folder, so no writer can
    # re-create files in it afterwards.
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        for lo in range(0, n, _CHUNK):
            sl = slice(lo, min(lo + _CHUNK, n))
            bg = render_background(
                {k: v[scene_id[sl]] for k, v in scenes.items()}, cfg.height, cfg.width
            )
            bg = add_clutter(bg, {k: v[sl] for k, v in clutter.items()})
            people = {k: v[ident[sl]] for k, v in attrs.items()}
            img, part = render_people(people, {k: v[sl] for k, v in geo.items()}, bg)
            img8 = camera_and_capture(img, gain[sl], blur[sl], noise[sl], render_rng)
            stems = [str(out / nm) for nm in names[sl]]
            list(pool.map(_write_one, stems, img8, part, [quality] * len(img8)))
            bar.update(img8.shape[0])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return n


def _write_one(stem: str, image: np.ndarray, part: np.ndarray, quality: int) -> None:
    Image.fromarray(image).save(f"{stem}.jpg", quality=quality)
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
        n = _render_all(cfg, tmp, progress)
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


def make_config(domain: str, *, size: str = "default", **overrides: Any) -> SyntheticConfig:
    """A :class:`SyntheticConfig` from a size preset and explicit overrides."""
    if size not in SIZE_PRESETS:
        raise InputError(f"size={size!r}: expected one of {sorted(SIZE_PRESETS)}")
    fields = set(SyntheticConfig.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(f"unknown synthetic options {sorted(unknown)}; known: {sorted(fields)}")
    return replace(SyntheticConfig(domain=domain, **SIZE_PRESETS[size]), **overrides)


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
        domain: ``"a"`` (6 cameras, Market-like) or ``"b"`` (8 cameras, Duke-like).
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
