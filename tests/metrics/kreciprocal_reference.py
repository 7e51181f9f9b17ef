"""Straightforward references for the k-reciprocal tests: torchreid 0.2.5's
``re_ranking`` loaded from its file, and a dense loop-and-set Jaccard distance."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import types
from collections.abc import Callable
from functools import partial

import numpy as np


def load_torchreid_rerank(stable: bool = False) -> Callable[..., np.ndarray] | None:
    """torchreid's ``re_ranking`` (its file alone: the package needs cv2), or ``None``.

    ``stable=True`` runs it with a stable ``argsort`` (ties by index, as ours); its own
    ``np.argsort`` is not stable, so exact ties at a neighbourhood's edge are arbitrary.
    """
    spec = importlib.machinery.PathFinder.find_spec("torchreid")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "reid", "utils", "rerank.py")
    if not os.path.exists(path):
        return None
    mod_spec = importlib.util.spec_from_file_location("_torchreid_rerank", path)
    assert mod_spec is not None and mod_spec.loader is not None
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    if stable:
        shim = types.ModuleType("numpy_stable_argsort")
        shim.__dict__["__getattr__"] = lambda name: getattr(np, name)
        shim.argsort = partial(np.argsort, kind="stable")  # type: ignore[attr-defined]
        mod.np = shim  # type: ignore[attr-defined]
    return mod.re_ranking  # type: ignore[no-any-return]


def dense_jaccard(d: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """Module docstring of ``kreciprocal``, one item at a time with Python sets.

    ``d``: ``(N, N)`` distances (the weights are ``exp(-d)``). Returns ``(N, N)`` Jaccard
    distances with a zero diagonal.
    """
    n = len(d)
    rank = np.argsort(d, axis=1, kind="stable")

    def recip(p: int, k: int) -> set[int]:
        return {int(g) for g in rank[p, : k + 1] if p in rank[g, : k + 1]}

    kh = int(np.around(k1 / 2))
    v = np.zeros((n, n))
    for p in range(n):
        r = recip(p, k1)
        expanded = set(r)
        for c in r:
            rc = recip(c, kh)
            if len(rc & r) > 2 / 3 * len(rc):
                expanded |= rc
        idx = sorted(expanded)
        w = np.exp(-d[p, idx].astype(np.float64))
        v[p, idx] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[rank[p, :k2]].mean(axis=0) for p in range(n)])
    mins = np.minimum(v[:, None], v[None]).sum(-1)
    maxs = np.maximum(v[:, None], v[None]).sum(-1)
    out = 1.0 - mins / maxs
    np.fill_diagonal(out, 0.0)
    return out
