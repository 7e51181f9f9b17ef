"""The generated walkers sequence: deterministic, crowded, occluded, edge boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semparts_reid.data import read_mot_boxes, read_seqinfo, write_walkers_sequence
from semparts_reid.data.synthetic.walkers import render_walkers
from semparts_reid.errors import InputError


def test_deterministic_and_seed_dependent() -> None:
    a, b = render_walkers(20, 4, seed=3), render_walkers(20, 4, seed=3)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.ltwh, b.ltwh)
    assert not np.array_equal(a.frames, render_walkers(20, 4, seed=4).frames)


def test_people_share_frames_cross_and_occlude() -> None:
    seq = render_walkers(40, 6, seed=0)
    assert seq.frames.shape == (40, 120, 200, 3)
    per_frame = np.bincount(seq.frame)
    assert per_frame.max() >= 3
    assert (seq.visibility < 0.9).any() and (seq.visibility <= 1).all()
    # some boxes cross the frame edge (people walk in and out)
    assert ((seq.ltwh[:, 0] < 0) | (seq.ltwh[:, 0] + seq.ltwh[:, 2] > 200)).any()
    assert set(np.unique(seq.pid).tolist()) == set(range(1, 7))


def test_written_sequence_reads_back(tmp_path: Path) -> None:
    root = write_walkers_sequence(tmp_path / "w", num_frames=12, num_people=3, seed=2)
    info = read_seqinfo(root)
    assert (info.length, info.width, info.height) == (12, 200, 120)
    assert len(list((root / "img1").glob("*.jpg"))) == 12
    gt = read_mot_boxes(root / "gt" / "gt.txt", "gt", info)
    det = read_mot_boxes(root / "det" / "det.txt", "det", info)
    assert 0 < len(det) <= len(gt) and (det.track == -1).all()
    assert set(gt.track.tolist()) <= {1, 2, 3}


def test_bad_sizes_are_named() -> None:
    with pytest.raises(InputError, match="num_people"):
        render_walkers(10, 0)
