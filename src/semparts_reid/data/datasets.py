"""Re-ID dataset layouts: Market-1501, DukeMTMC-reID, MSMT17, image lists, plain folder
trees, synthetic domains.

A dataset is three lists of :class:`ImageRecord` (``train``, ``query``, ``gallery``).
Training identities are relabelled ``0 .. N-1``; camera ids are 0-based in every split
(``-1`` where unknown, e.g. a folder tree without ``c<N>`` in its file names);
query and gallery keep their original identity numbers (``0`` marks Market/Duke
distractors, which stay in the gallery). Junk detections (pid ``-1``) are dropped.

Datasets are named by spec strings (see :func:`build_dataset`)::

    >>> ds = build_dataset("synthetic:a?size=tiny")            # doctest: +SKIP
    >>> ds = build_dataset("market1501:/data/Market-1501-v15.09.15")  # doctest: +SKIP
    >>> ds = build_dataset("folder:/data/my_reid")                # doctest: +SKIP
    >>> print(ds.summary_table())                               # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from ..errors import InputError
from .folder_layout import read_folder_tree
from .list_files import MSMT17, ImageListDataset, read_image_list, read_split_list
from .market_layout import read_market_folder
from .mot import mot_dataset
from .records import UNKNOWN_CAMERA, DatasetLayoutError, ImageRecord, ReIDDataset, relabel
from .synthetic import SyntheticConfig, synthetic_dataset

__all__ = [
    "MSMT17",
    "DatasetLayoutError",
    "DukeMTMCreID",
    "FolderDataset",
    "ImageListDataset",
    "ImageRecord",
    "Market1501",
    "ReIDDataset",
    "UNKNOWN_CAMERA",
    "build_dataset",
    "list_datasets",
    "parse_spec",
    "read_image_list",
    "read_split_list",
    "relabel",
]


def Market1501(  # noqa: N802 - reads like a class, the usual name in re-ID code
    root: str | os.PathLike[str], *, skip_corrupt: bool = False, verify: bool = False
) -> ReIDDataset:
    """Market-1501: ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` under ``root``.

    File names are ``PPPP_cCsS_FFFFFF_NN.jpg``: identity ``PPPP`` (``-1`` junk, dropped;
    ``0000`` distractor, kept in the gallery), camera ``C`` (1-based on disk, 0-based here).
    ``skip_corrupt=True`` decodes every image and drops undecodable ones with a warning;
    ``verify=True`` decodes every image and raises on the first bad one.
    """
    return read_market_folder("market1501", root, skip_corrupt=skip_corrupt, verify=verify)


def DukeMTMCreID(  # noqa: N802
    root: str | os.PathLike[str], *, skip_corrupt: bool = False, verify: bool = False
) -> ReIDDataset:
    """DukeMTMC-reID: same folder layout as Market-1501, names ``PPPP_cC_fFFFFFFF.jpg``."""
    return read_market_folder("dukemtmcreid", root, skip_corrupt=skip_corrupt, verify=verify)


def FolderDataset(  # noqa: N802
    root: str | os.PathLike[str], *, skip_corrupt: bool = False, verify: bool = False
) -> ReIDDataset:
    """A plain folder tree ``root/{train,query,gallery}/<identity>/<image>``.

    The identity is the folder name; the camera comes from an optional ``c<N>`` in the
    file name (1-based on disk: ``c1`` is camid 0), else it is unknown (camid ``-1``).
    See :mod:`semparts_reid.data.folder_layout`.
    """
    return read_folder_tree(root, skip_corrupt=skip_corrupt, verify=verify)


# ----------------------------------------------------------------------------- factory

_FACTORIES: dict[str, Callable[..., ReIDDataset]] = {
    "market1501": Market1501,
    "dukemtmcreid": DukeMTMCreID,
    "msmt17": MSMT17,
    "imagelist": ImageListDataset,
    "folder": FolderDataset,
    "synthetic": synthetic_dataset,
    "mot": mot_dataset,
}
_ALIASES = {"market": "market1501", "duke": "dukemtmcreid", "dukemtmc": "dukemtmcreid"}


def list_datasets() -> list[str]:
    """Names usable in a :func:`build_dataset` spec."""
    return sorted(_FACTORIES)


def _coerce(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def parse_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """Split ``"name:argument?key=value&..."`` into ``(name, argument, options)``."""
    if not isinstance(spec, str) or ":" not in spec:
        raise InputError(
            f"dataset spec {spec!r} is not 'name:path' (e.g. 'market1501:/data/Market', "
            f"'synthetic:a'); known names: {', '.join(list_datasets())}"
        )
    name, rest = spec.split(":", 1)
    arg, _, query = rest.partition("?")
    opts = {k: _coerce(v) for k, v in parse_qsl(query, keep_blank_values=True)}
    return name.strip().lower(), arg, opts


def build_dataset(spec: str, **kwargs: Any) -> ReIDDataset:
    """Build a dataset from a spec string.

    Args:
        spec: ``"<name>:<argument>[?key=value&...]"``: ``market1501:/path``,
            ``dukemtmcreid:/path``, ``msmt17:/path``, ``imagelist:/folder`` or
            ``imagelist:/list.csv`` (rows ``path,pid,camid,split``),
            ``folder:/root`` (``root/{train,query,gallery}/<identity>/<image>``),
            ``synthetic:a`` / ``synthetic:b`` (options e.g. ``?size=tiny&seed=1``),
            ``mot:/seq`` (MOTChallenge sequences, a folder of them or ``/a,/b``; options
            e.g. ``?source=det&train_frames=0.5&gap=25``, see :mod:`.mot`).
        **kwargs: keyword arguments of the dataset function; they override spec options.

    Raises:
        InputError: an unknown dataset name or option, a missing path, or a folder or
            list file that does not match the layout (``DatasetLayoutError``).

    Example:
        >>> ds = build_dataset("synthetic:a?size=tiny")  # doctest: +SKIP
        >>> ds.num_train_pids  # doctest: +SKIP
        12
    """
    name, arg, opts = parse_spec(spec)
    name = _ALIASES.get(name, name)
    if name not in _FACTORIES:
        raise InputError(f"unknown dataset {name!r} in spec {spec!r}; known: {list_datasets()}")
    if not arg:
        raise InputError(f"dataset spec {spec!r} has no path/argument after '{name}:'")
    opts.update(kwargs)
    factory = _FACTORIES[name]
    accepted = _options_of(factory)
    unknown = sorted(set(opts) - accepted) if accepted is not None else []
    if unknown:
        raise InputError(
            f"dataset spec {spec!r}: unknown option(s) {unknown} for {name}; "
            f"accepted: {sorted(accepted or ())}"
        )
    return factory(arg, **opts)


def _options_of(factory: Callable[..., ReIDDataset]) -> set[str] | None:
    """Keyword options a dataset function accepts (``None``: any, it takes ``**kwargs``)."""
    if factory is synthetic_dataset:
        extra = set(SyntheticConfig.__dataclass_fields__) - {"domain"}
    else:
        extra = set()
    params = list(inspect.signature(factory).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params) and not extra:
        return None
    names = {p.name for p in params[1:] if p.kind is not p.VAR_KEYWORD}
    return names | extra
