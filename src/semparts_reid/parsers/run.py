"""Run a :class:`~.base.PartParser` over the crops of a dataset and write its maps.

:func:`parse_dataset` reads the crops of the chosen splits with the data layer's image
reader (the one the training dataset uses, so any dataset spec whose records it can read
works), parses them in batches, and writes the folder described in :mod:`.maps`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.image_io import load_rgb_array
from ..data.records import ImageRecord, ReIDDataset
from ..errors import InputError
from .base import ParseResult, PartParser
from .maps import PartMapWriter

__all__ = ["SPLITS", "ParseSummary", "parse_dataset"]

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "query", "gallery")


@dataclass(frozen=True)
class ParseSummary:
    """The outcome of :func:`parse_dataset`.

    Attributes:
        out_dir: the output folder; ``manifest``: its ``manifest.csv``.
        num_crops: distinct crops parsed; ``found``: with a pose; ``fallback``: without
            (they keep their current labels).
        seconds: wall time of the parser alone; ``crops_per_s``: ``num_crops / seconds``.
        total_seconds: wall time with reading and writing.
    """

    out_dir: str
    manifest: str
    num_crops: int
    found: int
    fallback: int
    seconds: float
    crops_per_s: float
    total_seconds: float

    @property
    def labelled_fraction(self) -> float:
        """Fraction of crops with a map."""
        return self.found / self.num_crops if self.num_crops else 0.0


def _describe(parser: Any) -> dict[str, Any]:
    describe = getattr(parser, "describe", None)
    if callable(describe):
        return dict(describe())
    return {"parser": type(parser).__name__}


def parse_dataset(
    dataset: ReIDDataset,
    parser: PartParser,
    out_dir: str | os.PathLike[str],
    *,
    splits: Sequence[str] = SPLITS,
    batch_size: int = 64,
    loader: Callable[[str], np.ndarray] = load_rgb_array,
    progress: bool = True,
    extra: dict[str, Any] | None = None,
) -> ParseSummary:
    """Parse every crop of ``splits`` and write maps + manifest into ``out_dir``.

    Args:
        dataset: a :class:`~semparts_reid.data.records.ReIDDataset` (``build_dataset``).
        parser: any :class:`~.base.PartParser`.
        out_dir: output folder (:mod:`.maps` describes it).
        splits: split names among ``train``, ``query``, ``gallery``. A crop in several
            splits is parsed once.
        batch_size: crops read and handed to the parser at a time.
        loader: image path -> RGB uint8 (H, W, 3); default the data layer's reader.
        progress: show a tqdm bar.
        extra: more fields for ``parse.json`` (e.g. the dataset spec).

    Returns:
        a :class:`ParseSummary`; the number of fallback crops is also logged.
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise InputError(f"splits={list(splits)}: expected some of {list(SPLITS)}")
    if batch_size < 1:
        raise InputError(f"batch_size={batch_size}: expected >= 1")
    if not isinstance(parser, PartParser):
        raise TypeError(f"parser {type(parser).__name__} has no parse(crops) method")
    records: list[tuple[str, int, ImageRecord]] = [
        (split, i, rec) for split in splits for i, rec in enumerate(getattr(dataset, split))
    ]
    paths = list(dict.fromkeys(rec.path for _, _, rec in records))  # distinct, in order
    start = time.perf_counter()
    results, parse_s = _parse_paths(paths, parser, batch_size, loader, progress)
    writer = PartMapWriter(out_dir, root=dataset.root)
    for split, i, rec in records:
        labels, conf, hit, size = results[rec.path]
        writer.add(split, i, rec.path, labels, confidence=conf, found=hit, size=size)
    found = sum(1 for r in results.values() if r[2])
    speed = len(paths) / parse_s if parse_s > 0 else 0.0
    summary_fields = {
        "splits": list(splits), "root": dataset.root, **_describe(parser),
        "parse_seconds": round(parse_s, 3), "crops_per_s": round(speed, 2), **(extra or {}),
    }  # fmt: skip
    manifest = writer.finish(summary_fields)
    if found < len(paths):
        log.warning(
            "parse: no pose in %d of %d crops; they keep their current labels (found=0 in %s)",
            len(paths) - found, len(paths), manifest,
        )  # fmt: skip
    return ParseSummary(
        str(Path(out_dir)), str(manifest), len(paths), found, len(paths) - found,
        parse_s, speed, time.perf_counter() - start,
    )  # fmt: skip


_Parsed = tuple[np.ndarray, float, bool, tuple[int, int]]


def _parse_paths(
    paths: list[str],
    parser: PartParser,
    batch_size: int,
    loader: Callable[[str], np.ndarray],
    progress: bool,
) -> tuple[dict[str, _Parsed], float]:
    """Read and parse ``paths`` in batches: ``{path: (labels, confidence, found, (w, h))}``
    and the seconds spent in the parser."""
    results: dict[str, _Parsed] = {}
    parse_s, found = 0.0, 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(paths), desc="parse", unit="crop", leave=False)
    try:
        for lo in range(0, len(paths), batch_size):
            chunk = paths[lo : lo + batch_size]
            crops = [loader(p) for p in chunk]
            t0 = time.perf_counter()
            res = parser.parse(crops)
            parse_s += time.perf_counter() - t0
            _check_result(res, crops, parser)
            for p, crop, labels, conf, hit in zip(
                chunk, crops, res.labels, res.confidence, res.found
            ):
                results[p] = (labels, float(conf), bool(hit), (crop.shape[1], crop.shape[0]))
            found += int(res.found.sum())
            if bar is not None:
                bar.update(len(chunk))
                bar.set_postfix(found=f"{found / len(results):.0%}")
    finally:
        if bar is not None:
            bar.close()
    return results, parse_s


def _check_result(res: ParseResult, crops: list[np.ndarray], parser: Any) -> None:
    name = type(parser).__name__
    if not isinstance(res, ParseResult) or len(res) != len(crops):
        got = len(res) if isinstance(res, ParseResult) else type(res).__name__
        raise ValueError(f"{name}.parse gave {got} results for {len(crops)} crops")
    for i, (labels, crop) in enumerate(zip(res.labels, crops)):
        if res.found[i] and np.shape(labels) != crop.shape[:2]:
            raise ValueError(
                f"{name}.parse: map {i} has shape {np.shape(labels)} for a crop of "
                f"{crop.shape[:2]}: expected the crop's (H, W)"
            )


def summary_dict(summary: ParseSummary) -> dict[str, Any]:
    """The summary as plain data (with ``labelled_fraction``)."""
    return {**asdict(summary), "labelled_fraction": summary.labelled_fraction}
