"""seqinfo.ini and MOT box files: columns, filters and frame-edge clipping."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from semparts_reid.data import read_mot_boxes, read_seqinfo
from semparts_reid.data.mot_format import SequenceInfo, clip_boxes
from semparts_reid.errors import InputError, InputNotFoundError

INFO = SequenceInfo(Path("."), "s", 10.0, 5, 64, 48)


def _write(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "boxes.txt"
    p.write_text("\n".join(rows) + "\n")
    return p


def test_seqinfo_is_read_and_checked(tmp_path: Path) -> None:
    (tmp_path / "seqinfo.ini").write_text(
        "[Sequence]\nname=S\nimDir=frames\nframeRate=25\nseqLength=7\nimWidth=64\n"
        "imHeight=48\nimExt=png\n"
    )
    info = read_seqinfo(tmp_path)
    assert (info.name, info.frame_rate, info.length, info.width, info.height) == (
        "S",
        25,
        7,
        64,
        48,
    )
    assert (info.im_dir, info.im_ext) == ("frames", ".png")
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=S\nframeRate=25\nseqLength=0\n")
    with pytest.raises(InputError, match="seqLength"):
        read_seqinfo(tmp_path)
    with pytest.raises(InputNotFoundError, match="seqinfo.ini"):
        read_seqinfo(tmp_path / "nothing")


def test_clip_boxes_by_hand() -> None:
    # 1-based left/top: left 1 is pixel 0. Box 2 starts left of the frame (clipped to 0),
    # box 3 ends past the right edge (clipped to 64), box 4 lies outside, box 5 is 1 px wide.
    ltwh = np.array(
        [[1, 1, 10, 20], [-4, 5, 10, 10], [60, 40, 10, 20], [70, 5, 5, 5], [5, 5, 1, 10]],
        dtype=float,
    )
    b, keep = clip_boxes(ltwh, 64, 48)
    assert b[:3].tolist() == [[0, 0, 10, 20], [0, 4, 5, 14], [59, 39, 64, 48]]
    assert keep.tolist() == [True, True, True, False, False]


def test_mot15_gt_keeps_flagged_rows_and_drops_flag_0(tmp_path: Path, caplog) -> None:
    rows = ["2,1,1,1,8,16,1,-1,-1,-1", "1,2,1,1,8,16,0,-1,-1,-1", "1,3,100,1,8,16,1,-1,-1,-1"]
    with caplog.at_level(logging.INFO):
        b = read_mot_boxes(_write(tmp_path, rows), "gt", INFO)
    assert b.track.tolist() == [1] and b.frame.tolist() == [2]
    assert "1 flag 0" in caplog.text and "1 outside the frame" in caplog.text


def test_mot17_gt_keeps_pedestrians_above_min_visibility(tmp_path: Path) -> None:
    rows = [
        "1,1,1,1,8,16,1,1,0.9",  # pedestrian
        "1,2,1,1,8,16,1,7,0.9",  # static person: dropped
        "1,3,1,1,8,16,1,1,0.1",  # barely visible pedestrian
        "1,4,1,1,8,16,0,1,0.9",  # flag 0: dropped
    ]
    path = _write(tmp_path, rows)
    assert read_mot_boxes(path, "gt", INFO).track.tolist() == [1, 3]
    b = read_mot_boxes(path, "gt", INFO, min_visibility=0.5)
    assert b.track.tolist() == [1] and b.visibility.tolist() == [0.9]


def test_det_ignores_ids_and_filters_scores(tmp_path: Path) -> None:
    path = _write(tmp_path, ["3,7,1,1,8,16,0.2,-1,-1,-1", "1,9,1,1,8,16,0.9,-1,-1,-1"])
    b = read_mot_boxes(path, "det", INFO)
    assert b.track.tolist() == [-1, -1] and b.frame.tolist() == [1, 3]  # sorted by frame
    assert read_mot_boxes(path, "det", INFO, min_score=0.5).score.tolist() == [0.9]
    assert read_mot_boxes(path, "tracks", INFO).track.tolist() == [9, 7]  # tracker ids kept


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (["1,1,1,1,8"], "at least 6"),
        (["1,1,1,1,8,16,1", "1,1,1,1,8,16"], "different numbers of columns"),
        (["1,1,a,1,8,16"], "not a number"),
        (["9,1,1,1,8,16"], "frame 9 is outside 1..5"),
    ],
)
def test_bad_box_files_are_named(tmp_path: Path, rows: list[str], match: str) -> None:
    path = _write(tmp_path, rows)
    with pytest.raises(InputError, match=match) as err:
        read_mot_boxes(path, "gt", INFO)
    assert "boxes.txt" in str(err.value)


def test_unknown_kind_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="kind"):
        read_mot_boxes(tmp_path / "x.txt", "labels", INFO)
    with pytest.raises(InputNotFoundError):
        read_mot_boxes(tmp_path / "x.txt", "gt", INFO)
    assert len(read_mot_boxes(_write(tmp_path, []), "gt", INFO)) == 0
