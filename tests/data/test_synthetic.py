"""Synthetic domains: layout, determinism, atomic generation, part maps aligned with people."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semparts_reid.data import Market1501, build_dataset, part_map_path
from semparts_reid.data.synthetic import generate as syn
from semparts_reid.layers.parts import HEAD, LOWER, UPPER


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name != syn.MARKER:
            h.update(f.relative_to(folder).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def test_tiny_layout_and_cache(tmp_path: Path) -> None:
    ds = build_dataset("synthetic:a?size=tiny", root=tmp_path, progress=False)
    folder = Path(ds.root)
    assert folder.parent == tmp_path and (folder / syn.MARKER).is_file()
    assert ds.num_train_pids == 12
    assert ds.num_cams <= 6 and ds.summary()["query"]["ids"] == 10
    assert any(r.pid == 0 for r in ds.gallery)  # distractors kept
    assert list(folder.glob("bounding_box_test/-1_*.jpg"))  # junk on disk, dropped by the reader
    assert all(r.pid > 0 or r.pid == 0 for r in ds.gallery)
    # readable by the plain Market-1501 reader, every image has its part map
    assert Market1501(folder).summary() == ds.summary()
    for r in ds.train + ds.query + ds.gallery:
        assert os.path.isfile(part_map_path(r.path))
    # every query has a gallery image of the same identity from another camera
    gal = {(r.pid, r.camid) for r in ds.gallery}
    for q in ds.query:
        assert any(p == q.pid and c != q.camid for p, c in gal)
    # second call reuses the cache (same folder, no regeneration)
    stamp = (folder / syn.MARKER).stat().st_mtime_ns
    again = build_dataset("synthetic:a?size=tiny", root=tmp_path, progress=False)
    assert again.root == ds.root and (folder / syn.MARKER).stat().st_mtime_ns == stamp


def test_deterministic_by_seed(tmp_path: Path) -> None:
    cfg = syn.make_config("b", size="tiny", train_ids=4, test_ids=3)
    a = syn.generate_synthetic(cfg, root=tmp_path / "x", progress=False)
    b = syn.generate_synthetic(cfg, root=tmp_path / "y", progress=False)
    assert _digest(a) == _digest(b)
    c = syn.generate_synthetic(
        syn.make_config("b", size="tiny", train_ids=4, test_ids=3, seed=1),
        root=tmp_path / "x",
        progress=False,
    )
    assert c != a and _digest(c) != _digest(a)


def test_domains_differ(tmp_path: Path) -> None:
    a = build_dataset("synthetic:a", size="tiny", root=tmp_path, progress=False)
    b = build_dataset("synthetic:b", size="tiny", root=tmp_path, progress=False)
    cams_a = {r.camid for r in a.train + a.query + a.gallery}
    cams_b = {r.camid for r in b.train + b.query + b.gallery}
    assert max(cams_a) <= 5 and max(cams_b) >= 6
    mean = [np.mean([np.asarray(Image.open(r.path)).mean() for r in d.train]) for d in (a, b)]
    assert mean[0] > mean[1] + 10  # b is the darker domain
    assert syn.DOMAINS["a"].lower_probs[0] > syn.DOMAINS["b"].lower_probs[0]  # shorts in a


def test_crash_leaves_no_whole_looking_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = syn.make_config("a", size="tiny")
    calls = {"n": 0}
    real = syn._write_one

    def dying_writer(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt("simulated kill")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(syn, "_write_one", dying_writer)
    with pytest.raises(KeyboardInterrupt):
        syn.generate_synthetic(cfg, root=tmp_path, progress=False)
    assert not (tmp_path / cfg.key).exists()
    assert list(tmp_path.iterdir()) == []  # the temporary folder was removed too
    # a hard kill leaves a temp folder behind: it never looks whole and is cleaned later
    stale = tmp_path / f".tmp-{cfg.key}-abc-999999999-x"
    (stale / "bounding_box_train").mkdir(parents=True)
    monkeypatch.setattr(syn, "_write_one", real)
    folder = syn.generate_synthetic(cfg, root=tmp_path, progress=False)
    assert not stale.exists()
    marker = json.loads((folder / syn.MARKER).read_text())
    assert marker["config"]["train_ids"] == 12 and marker["images"] > 0
    # a folder without the marker is not trusted: regenerated
    (folder / syn.MARKER).unlink()
    folder = syn.generate_synthetic(cfg, root=tmp_path, progress=False)
    assert (folder / syn.MARKER).is_file()


def test_part_maps_are_aligned_with_the_person(tmp_path: Path) -> None:
    ds = build_dataset("synthetic:a", size="tiny", root=tmp_path, progress=False)
    edge_on, edge_off, rows = [], [], {HEAD: [], UPPER: [], LOWER: []}
    for r in ds.train[:30]:
        img = np.asarray(Image.open(r.path)).astype(np.float32)
        parts = np.asarray(Image.open(part_map_path(r.path)))
        assert parts.shape == img.shape[:2] and set(np.unique(parts)) <= {0, 1, 2, 3}
        for k in rows:
            ys = np.nonzero(parts == k)[0]
            if ys.size:
                rows[k].append(ys.mean())
        # part-map boundaries (person vs background) sit on image edges
        fg = parts > 0
        boundary = np.zeros_like(fg)
        boundary[:, 1:] |= fg[:, 1:] != fg[:, :-1]
        grad = np.zeros(fg.shape, np.float32)
        grad[:, 1:] = np.abs(img[:, 1:] - img[:, :-1]).sum(-1)
        edge_on.append(grad[boundary].mean())
        edge_off.append(grad[~boundary].mean())
    assert np.mean(rows[HEAD]) < np.mean(rows[UPPER]) < np.mean(rows[LOWER])
    assert np.mean(edge_on) > 2.0 * np.mean(edge_off)


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="domain='z'"):
        syn.make_config("z")
    with pytest.raises(ValueError, match="size='huge'"):
        syn.make_config("a", size="huge")
    with pytest.raises(TypeError, match="unknown synthetic options"):
        syn.make_config("a", nonsense=1)
    with pytest.raises(ValueError, match="train_ids=0"):
        syn.make_config("a", train_ids=0)
