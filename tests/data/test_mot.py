"""The mot: dataset: spec, crops, temporal split, tracklets, protocols, several cameras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mot_helpers import frame_image, walking_gt, write_sequence

from semparts_reid.data import (
    MOTDataset,
    build_dataset,
    read_crops,
    read_mot_boxes,
    read_seqinfo,
    write_walkers_sequence,
)
from semparts_reid.data.image_io import load_rgb_array
from semparts_reid.errors import InputError, InputNotFoundError
from semparts_reid.metrics.rank import evaluate_cmc_map


def _build(spec: str, tmp_path: Path) -> MOTDataset:
    sep = "&" if "?" in spec else "?"
    ds = build_dataset(f"{spec}{sep}cache={tmp_path / 'cache'}")
    assert isinstance(ds, MOTDataset)
    return ds


def test_crops_come_from_their_frame_and_box(tmp_path: Path) -> None:
    # a box at the right edge: 1-based left 60, 8 wide -> pixels 59..63 after clipping
    seq = write_sequence(tmp_path / "s", ["2,1,60,3,8,16,1,-1,-1,-1", "1,2,3,5,4,6,1,-1,-1,-1"],
                         length=3)  # fmt: skip
    info = read_seqinfo(seq)
    boxes = read_mot_boxes(seq / "gt" / "gt.txt", "gt", info)
    crops = read_crops(info, boxes)
    img1, img2 = frame_image(1, 64, 48), frame_image(2, 64, 48)
    np.testing.assert_array_equal(crops[0], img1[4:10, 2:6])  # frame 1 row sorted first
    np.testing.assert_array_equal(crops[1], img2[2:18, 59:64])
    ds = _build(f"mot:{seq}?source=gt&split=transductive", tmp_path)
    cached = load_rgb_array(ds.train[1].path)  # JPEG in the cache: close, not equal
    assert cached.shape == crops[1].shape
    assert np.abs(cached.astype(int) - crops[1]).mean() < 4


def test_temporal_split_and_no_ground_truth_ids_in_training(tmp_path: Path) -> None:
    seq = write_sequence(tmp_path / "s", walking_gt(10, [5, 9]), length=10)
    ds = _build(f"mot:{seq}?source=gt&train_frames=0.4", tmp_path)
    assert ds.split_frames == [5]  # floor(0.4 * 10) = 4 adaptation frames
    assert ds.frames.tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert (ds.eval_table.frame >= 5).all() and len(ds.eval) == 12
    # every training crop its own pid, no tracklet: the ids 5 and 9 never reach training
    assert [r.pid for r in ds.train] == list(range(8))
    assert (ds.tracklets == -1).all() and (ds.train_table.pid == -1).all()
    assert {r.camid for r in ds.train} == {0}
    # an absolute number of frames, and the transductive split
    assert _build(f"mot:{seq}?source=gt&train_frames=3", tmp_path).split_frames == [4]
    trans = _build(f"mot:{seq}?source=gt&split=transductive", tmp_path)
    assert len(trans.train) == len(trans.eval) == 20


def test_tracker_output_gives_tracklets(tmp_path: Path) -> None:
    seq = write_sequence(tmp_path / "s", walking_gt(6, [1, 2]), length=6)
    tracks = tmp_path / "tracks.txt"
    # a tracker that swaps ids at frame 3 (tracklets 10, 20 then 30, 40)
    rows = [f"{f},{(10, 20)[k] if f < 3 else (30, 40)[k]},{2 + 10 * k},3,8,16,1,-1,-1,-1"
            for f in range(1, 7) for k in range(2)]  # fmt: skip
    tracks.write_text("\n".join(rows) + "\n")
    ds = _build(f"mot:{seq}?source={tracks}&train_frames=4", tmp_path)
    assert ds.frames.tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert ds.tracklets.tolist() == [0, 1, 0, 1, 2, 3, 2, 3]
    assert [r.pid for r in ds.train] == ds.tracklets.tolist()
    assert ds.source == str(tracks)


def test_det_source_and_auto(tmp_path: Path) -> None:
    det = [
        "1,-1,2,3,8,16,0.9,-1,-1,-1",
        "1,-1,12,3,8,16,0.3,-1,-1,-1",
        "4,-1,2,3,8,16,0.9,-1,-1,-1",
    ]
    seq = write_sequence(tmp_path / "s", walking_gt(4, [1, 2]), length=4, det_rows=det)
    ds = _build(f"mot:{seq}?train_frames=2", tmp_path)  # auto: det.txt is there
    assert len(ds.train) == 2 and ds.frames.tolist() == [1, 1]
    ds = _build(f"mot:{seq}?train_frames=2&source=det&min_score=0.5", tmp_path)
    assert len(ds.train) == 1


def test_segment_protocol_follows_market_rules(tmp_path: Path) -> None:
    # eval frames 5..12 cut into 2 segments (5-8, 9-12); persons 1, 2 everywhere, 3 in 5-8 only
    gt = walking_gt(12, [1, 2]) + [f"{f},3,40,3,8,16,1,-1,-1,-1" for f in range(5, 9)]
    seq = write_sequence(tmp_path / "s", gt, length=12)
    ds = _build(f"mot:{seq}?source=gt&train_frames=4&segments=2", tmp_path)
    gallery_cams = np.array([r.camid for r in ds.gallery])
    assert sorted(set(gallery_cams.tolist())) == [0, 1]
    assert (gallery_cams == (ds.eval_table.frame >= 9)).all()
    # one query per person and segment: the middle crop (frames 5..8 -> 6, 9..12 -> 10)
    q = sorted((r.pid, r.camid, ds.eval_table.frame[ds.eval.index(
        next(e for e in ds.eval if e.path == r.path))]) for r in ds.query)  # fmt: skip
    assert q == [(0, 0, 6), (0, 1, 10), (1, 0, 6), (1, 1, 10), (2, 0, 6)]
    # perfect features: person 3 has no match in the other segment -> 4 valid queries
    onehot = np.eye(3, dtype=np.float32)
    m = evaluate_cmc_map(
        (onehot[[r.pid for r in ds.query]], onehot[[r.pid for r in ds.gallery]]),
        [r.pid for r in ds.query], [r.pid for r in ds.gallery],
        [r.camid for r in ds.query], gallery_cams,
    )  # fmt: skip
    assert m.num_valid_queries == 4 and m.mAP == pytest.approx(1.0)


def test_reassociation_through_the_dataset(tmp_path: Path) -> None:
    seq = write_sequence(tmp_path / "s", walking_gt(20, [1, 2]), length=20)
    ds = _build(f"mot:{seq}?source=gt&train_frames=10&gap=5&stride=5", tmp_path)
    feats = np.eye(2, dtype=np.float32)[ds.eval_table.pid]
    m = ds.evaluate_reassociation(feats)
    # eval frames 11..20; query frames 11, 16 (stride 5); each has the other end >= 5 away
    assert (m.num_queries, m.num_valid_queries, m.mAP) == (4, 4, 1.0)
    with pytest.raises(InputError, match="one per eval crop"):
        ds.evaluate_reassociation(feats[:3])


def test_a_list_or_a_folder_of_sequences_makes_cameras(tmp_path: Path) -> None:
    a = write_sequence(tmp_path / "seqs" / "A", walking_gt(6, [1, 2]), length=6)
    b = write_sequence(tmp_path / "seqs" / "B", walking_gt(8, [1]), length=8)
    for spec in (f"mot:{a},{b}", f"mot:{tmp_path / 'seqs'}"):
        ds = _build(f"{spec}?source=gt&segments=2", tmp_path)
        assert [s.name for s in ds.sequences] == ["A", "B"]
        assert ds.split_frames == [4, 5]
        assert [r.camid for r in ds.train] == [0] * 6 + [1] * 4
        assert ds.train_table.sequence.tolist() == [0] * 6 + [1] * 4
        # person 1 of A and person 1 of B are different people; segments are per sequence
        assert sorted(set(ds.eval_table.pid.tolist())) == [0, 1, 2]
        assert sorted({r.camid for r in ds.gallery}) == [0, 1, 2, 3]
        assert len({r.pid for r in ds.train}) == len(ds.train)  # no pid shared across cameras


def test_cache_is_reused_and_complete(tmp_path: Path) -> None:
    seq = write_sequence(tmp_path / "s", walking_gt(4, [1]), length=4)
    ds = _build(f"mot:{seq}?source=gt", tmp_path)
    folder = Path(ds.train[0].path).parent
    assert (folder / "COMPLETE.json").is_file()
    stamp = (folder / "COMPLETE.json").stat().st_mtime_ns
    again = _build(f"mot:{seq}?source=gt", tmp_path)
    assert again.train[0].path == ds.train[0].path
    assert (folder / "COMPLETE.json").stat().st_mtime_ns == stamp
    assert not list(folder.parent.glob(".*tmp*"))


@pytest.mark.parametrize(
    ("query", "error", "match"),
    [
        ("?split=later", InputError, "split"),
        ("?train_frames=1.5", InputError, "train_frames"),
        ("?train_frames=40", InputError, "train_frames"),
        ("?gap=0", InputError, "gap"),
        ("?source=det", InputNotFoundError, "det.txt"),
        ("?source=/no/tracks.txt", InputNotFoundError, "tracks.txt"),
        ("?colour=red", InputError, "unknown option"),
    ],
)
def test_bad_options_are_named(tmp_path: Path, query: str, error: type, match: str) -> None:
    seq = write_sequence(tmp_path / "s", walking_gt(4, [1]), length=4)
    with pytest.raises(error, match=match):
        _build(f"mot:{seq}{query}", tmp_path)


def test_missing_sequence_and_missing_frames(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="seqinfo.ini"):
        build_dataset(f"mot:{tmp_path}")
    seq = write_sequence(tmp_path / "s", walking_gt(4, [1]), length=4)
    (seq / "img1" / "000003.png").unlink()
    with pytest.raises(InputNotFoundError, match="000003.png"):
        _build(f"mot:{seq}?source=gt", tmp_path)


def test_video_file_instead_of_frames(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    seq = write_sequence(tmp_path / "s", walking_gt(6, [1, 2]), length=6)
    writer = cv2.VideoWriter(str(seq / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write mp4v")
    for f in range(1, 7):
        writer.write(np.full((48, 64, 3), (0, 0, 40 * f), np.uint8))  # BGR: red = 40 f
    writer.release()
    for p in (seq / "img1").iterdir():
        p.unlink()
    (seq / "img1").rmdir()
    ds = _build(f"mot:{seq}?source=gt&train_frames=3", tmp_path)
    assert len(ds.train) == 6 and len(ds.eval) == 6
    reds = [load_rgb_array(r.path)[..., 0].mean() for r in ds.eval]
    assert np.allclose(reds, np.repeat([160, 200, 240], 2), atol=12)  # frames 4, 5, 6
    # a video shorter than the boxes need
    (seq / "gt" / "gt.txt").write_text("9,1,2,3,8,16,1,-1,-1,-1\n")
    (seq / "seqinfo.ini").write_text((seq / "seqinfo.ini").read_text().replace("=6\n", "=9\n"))
    with pytest.raises(InputError, match="video"):
        _build(f"mot:{seq}?source=gt&train_frames=3", tmp_path)


def test_walkers_sequence_reads_as_a_dataset(tmp_path: Path) -> None:
    root = write_walkers_sequence(tmp_path / "walk", num_frames=30, num_people=5, seed=1)
    ds = _build(f"mot:{root}?source=det&gap=5&stride=3", tmp_path)
    assert len(ds.train) > 0 and len(ds.eval) > 0
    assert (ds.frames < 16).all() and (ds.eval_table.frame >= 16).all()
    rng = np.random.default_rng(0)
    m = ds.evaluate_reassociation(rng.normal(size=(len(ds.eval), 4)).astype(np.float32))
    assert m.num_valid_queries > 0
