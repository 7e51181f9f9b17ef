"""Camera-style augmentation: show an image as another camera of the same domain saw it.

Two sources, the first that applies:

1. **CamStyle images** as ECN ships them, next to the image or in a sibling folder
   ``<split folder>_camstyle`` (e.g. ``bounding_box_train_camstyle/``):
   ``<stem>_fake_<c>to<d>.jpg`` (Market-1501, DukeMTMC-reID: CycleGAN, camera ``c`` to
   ``d``) or ``<stem>_fake_<d>.jpg`` (MSMT17: StarGAN, to camera ``d``); cameras 1-based.
2. **Colour-statistics transfer** otherwise: per-camera channel mean and std are
   estimated from the (target) training set; an image of camera ``c`` becomes
   ``(x - mean_c) / std_c * std_d + mean_d`` for a random other camera ``d``. Camera-level
   (not per-image) statistics keep the person's own colours, which carry identity.

The augmented image keeps its dataset index (the exemplar-memory slot); see
:class:`~semparts_reid.data.image_dataset.ReIDImageDataset` (``camstyle=``).
:class:`CameraStyleAugmenter` logs one WARNING when CamStyle files exist but some or all
images have none (those use the colour transfer). It needs the camera of every image: a
record with an unknown camera (camid ``-1``) is a ``ValueError``; the trainer checks
:func:`count_unknown_cameras` first and turns the augmentation off instead.

Example:
    >>> aug = CameraStyleAugmenter(ds.train)                      # doctest: +SKIP
    >>> data = ReIDImageDataset(ds.train, transform, camstyle=aug)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .image_io import load_rgb, load_rgb_array
from .records import ImageRecord

__all__ = [
    "CameraStyleAugmenter",
    "ColorStatsTransfer",
    "camera_style_possible",
    "count_unknown_cameras",
    "find_camstyle_images",
]

logger = logging.getLogger(__name__)
# <stem>_fake_<c>to<d> (Market/Duke CamStyle, CycleGAN) or <stem>_fake_<d> (MSMT17, StarGAN)
_FAKE_RE = re.compile(r"^(?P<stem>.+)_fake_(?:(?P<src>\d+)to)?(?P<dst>\d+)$")
_FAKE_PATTERN = "<stem>_fake_<c>to<d>.jpg or <stem>_fake_<d>.jpg (1-based cameras)"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class _Scan:
    """What a search for CamStyle files found."""

    files: dict[int, dict[int, str]]  # record index -> {target camid: path}
    folders: list[Path] = field(default_factory=list)  # holding *_fake_* files, or *_camstyle
    fake_files: int = 0  # *_fake_* image files seen
    used_files: int = 0  # of those, files that belong to a record


def _scan_camstyle(records: Sequence[ImageRecord]) -> _Scan:
    by_dir: dict[Path, dict[str, dict[int, str]]] = {}
    scan = _Scan({})
    used: set[str] = set()
    for i, rec in enumerate(records):
        folder = Path(rec.path).parent
        if folder not in by_dir:
            table: dict[str, dict[int, str]] = defaultdict(dict)
            for d in (folder, folder.with_name(folder.name + "_camstyle")):
                if not d.is_dir():
                    continue
                fakes = [
                    f for f in d.iterdir()
                    if "_fake_" in f.stem and f.suffix.lower() in _IMAGE_SUFFIXES
                ]
                if fakes or d != folder:
                    scan.folders.append(d)
                scan.fake_files += len(fakes)
                for f in fakes:
                    m = _FAKE_RE.match(f.stem)
                    if m:
                        table[m["stem"]][int(m["dst"]) - 1] = str(f)
            by_dir[folder] = table
        styles = by_dir[folder].get(Path(rec.path).stem)
        if styles:
            others = {c: p for c, p in styles.items() if c != rec.camid}
            if others:
                scan.files[i] = others
                used.update(others.values())
    scan.used_files = len(used)
    return scan


def count_unknown_cameras(records: Sequence[Sequence[Any]]) -> int:
    """How many ``(path, pid, camid, ...)`` records have an unknown camera (camid < 0)."""
    return sum(1 for r in records if int(r[2]) < 0)


def camera_style_possible(records: Sequence[Sequence[Any]], what: str = "target") -> bool:
    """Whether every record has a camera id; if not, log the one WARNING that says
    camera-style augmentation is off for ``what`` (the caller then turns it off)."""
    missing = count_unknown_cameras(records)
    if missing:
        logger.warning(
            "%s has no camera id for %d of %d training images (camid -1): camera-style "
            "augmentation (ECN's camera invariance) off", what, missing, len(records),
        )
    return missing == 0


def _require_cameras(records: Sequence[ImageRecord]) -> None:
    """Raise ``ValueError`` naming the first record without a camera id."""
    bad = next((r for r in records if r.camid < 0), None)
    if bad is not None:
        raise ValueError(
            f"camera-style augmentation needs camera ids, but {bad.path} has camid "
            f"{bad.camid} (unknown) and {count_unknown_cameras(records)} of {len(records)} "
            "records have none; turn camera-style augmentation off (TrainConfig.camstyle)"
        )


def find_camstyle_images(records: Sequence[ImageRecord]) -> dict[int, dict[int, str]]:
    """Map record index -> {target camid (0-based): CamStyle file path}.

    Looks in each record's folder and in ``<folder>_camstyle``; files are
    ``<stem>_fake_<c>to<d>.<ext>`` (Market/Duke) or ``<stem>_fake_<d>.<ext>`` (MSMT17)
    with 1-based cameras. Records with no file for another camera are left out.
    """
    return _scan_camstyle(records).files


class ColorStatsTransfer:
    """Per-camera RGB mean/std, and the transfer of an image from one camera to another.

    Args:
        mean: float array (num_cams, 3), per-camera channel means (0..255 scale).
        std: float array (num_cams, 3), per-camera channel stds.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        if mean.ndim != 2 or mean.shape[1] != 3 or mean.shape != std.shape:
            raise ValueError(
                f"mean {mean.shape} / std {std.shape}: expected equal shapes (num_cams, 3)"
            )
        self.mean, self.std = mean, np.maximum(std, 1e-3)

    @property
    def num_cams(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(
        cls,
        records: Sequence[ImageRecord],
        *,
        max_per_camera: int = 200,
        size: tuple[int, int] = (64, 32),
        seed: int = 0,
    ) -> ColorStatsTransfer:
        """Estimate the statistics from (a sample of) the images of each camera.

        Up to ``max_per_camera`` images per camera are read at ``size`` (H, W) and
        reduced in one pass with ``np.add.at`` over camera ids.
        """
        if not records:
            raise ValueError("records is empty: expected the training split of the domain")
        _require_cameras(records)
        rng = np.random.default_rng(seed)
        cams = np.asarray([r.camid for r in records])
        num_cams = int(cams.max()) + 1
        chosen = np.concatenate(
            [rng.permutation(np.flatnonzero(cams == c))[:max_per_camera] for c in range(num_cams)]
        )
        h, w = size
        pix = np.stack(
            [
                np.asarray(load_rgb(records[i].path).resize((w, h), Image.Resampling.BILINEAR))
                for i in chosen
            ]
        ).astype(np.float64)  # (N, H, W, 3)
        per_img_sum = pix.sum(axis=(1, 2))  # (N, 3)
        per_img_sq = (pix**2).sum(axis=(1, 2))
        s, sq = np.zeros((num_cams, 3)), np.zeros((num_cams, 3))
        np.add.at(s, cams[chosen], per_img_sum)
        np.add.at(sq, cams[chosen], per_img_sq)
        count = np.bincount(cams[chosen], minlength=num_cams)[:, None] * h * w
        seen = count[:, 0] > 0
        mean = np.where(seen[:, None], s / np.maximum(count, 1), 127.5)
        var = np.where(seen[:, None], sq / np.maximum(count, 1) - mean**2, 60.0**2)
        return cls(mean, np.sqrt(np.maximum(var, 0.0)))

    def __call__(self, image: np.ndarray, src: int, dst: int) -> np.ndarray:
        """uint8 image (H, W, 3) of camera ``src`` -> uint8 image in camera ``dst``'s style."""
        for name, c in (("src", src), ("dst", dst)):
            if not 0 <= c < self.num_cams:
                raise ValueError(f"{name}={c}: expected a camera in [0, {self.num_cams})")
        x = image.astype(np.float32)
        y = (x - self.mean[src]) * (self.std[dst] / self.std[src]) + self.mean[dst]
        return np.clip(y + 0.5, 0, 255).astype(np.uint8)


class CameraStyleAugmenter:
    """Callable ``(index, image, generator) -> image in another camera's style``.

    Uses a CamStyle file for ``(index, target camera)`` when one exists, else the
    colour-statistics transfer (fitted on ``records`` unless ``stats`` is given).

    Args:
        records: the split the dataset indexes (its ``camid`` picks the source camera).
        stats: a fitted :class:`ColorStatsTransfer`; default: fitted on ``records``.
        use_camstyle_files: look for ``*_fake_*`` files first.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        *,
        stats: ColorStatsTransfer | None = None,
        use_camstyle_files: bool = True,
    ) -> None:
        self.records = list(records)
        _require_cameras(self.records)
        self.stats = stats if stats is not None else ColorStatsTransfer.fit(self.records)
        self.files: dict[int, dict[int, str]] = {}
        if use_camstyle_files:
            scan = _scan_camstyle(self.records)
            self.files = scan.files
            _report(scan, len(self.records))

    def __call__(
        self, index: int, image: np.ndarray, generator: torch.Generator | None = None
    ) -> np.ndarray:
        src = self.records[index].camid
        files = self.files.get(index)
        if files:
            cams = sorted(files)
            pick = cams[int(torch.randint(len(cams), (1,), generator=generator))]
            return load_rgb_array(files[pick])
        n = self.stats.num_cams
        if n < 2:
            return image
        offset = 1 + int(torch.randint(n - 1, (1,), generator=generator))
        return self.stats(image, src, (src + offset) % n)


def _report(scan: _Scan, num_records: int) -> None:
    """One log line on where the camera styles come from (WARNING when files went unused)."""
    covered = len(scan.files)
    where = ", ".join(str(d) for d in scan.folders[:2]) + (", ..." if len(scan.folders) > 2 else "")
    if covered == num_records:
        logger.info("camera-style augmentation: CamStyle files for all %d images", covered)
    elif covered:
        logger.warning(
            "camera-style augmentation: CamStyle files for %d of %d images (in %s); the other "
            "%d use colour-statistics transfer", covered, num_records, where,
            num_records - covered,
        )
    elif scan.folders:
        logger.warning(
            "camera-style augmentation: %s holds %d CamStyle-like file(s) but none matches an "
            "image of this split (expected %s); using colour-statistics transfer instead",
            where, scan.fake_files, _FAKE_PATTERN,
        )
    else:
        logger.info(
            "camera-style augmentation: no CamStyle files (%s) beside the images; using "
            "colour-statistics transfer", _FAKE_PATTERN,
        )
