"""``semparts-reid extract`` (``cli/extract.py``): inputs -> features files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semparts_reid.cli import main
from semparts_reid.cli.common import UsageError
from semparts_reid.cli.extract import collect_images


def _image(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (64, 32, 3), dtype=np.uint8)).save(path)
    return path


def test_collect_images_expands_folders_and_lists(tmp_path: Path) -> None:
    a = _image(tmp_path / "imgs" / "b.jpg")
    b = _image(tmp_path / "imgs" / "sub" / "a.png")
    _image(tmp_path / "imgs" / "a.parts.png")  # a part label map, not an image to embed
    (tmp_path / "imgs" / "notes.md").write_text("not an image")
    single = _image(tmp_path / "one.bmp")
    (tmp_path / "list.txt").write_text(f"one.bmp 3 0\n\n{a} 4 1\n")
    got = collect_images([str(tmp_path / "imgs"), str(single), str(tmp_path / "list.txt")])
    assert got == [str(a), str(b), str(single), str(tmp_path / "one.bmp"), str(a)]


def test_collect_images_names_a_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or folder: .*missing.jpg"):
        collect_images([str(tmp_path / "missing.jpg")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="folder .*empty holds no images"):
        collect_images([str(tmp_path / "empty")])


def test_extract_images_of_a_folder_to_npy(
    tiny_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        _image(tmp_path / "imgs" / f"{i}.jpg", seed=i)
    out = tmp_path / "f.npy"
    argv = ["extract", str(tmp_path / "imgs"), "--checkpoint", str(tiny_ckpt), "--device",
            "cpu", "--precision", "fp32", "--flip", "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    feats = np.load(out)
    assert feats.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    assert f"wrote 3 features of dimension 512 to {out}" in capsys.readouterr().out


def test_extract_from_an_image_list(tiny_ckpt: Path, tmp_path: Path) -> None:
    """``extract --dataset imagelist:/data/list.csv`` as docs/cli.md shows it."""
    rows = ["path,pid,camid,split"]
    for i, (pid, cam, split) in enumerate(
        [(3, 0, "query"), (3, 1, "gallery"), (5, 0, "query"), (5, 2, "gallery")]
    ):
        _image(tmp_path / f"{i}.png", seed=i)
        rows.append(f"{i}.png,{pid},{cam},{split}")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "q.npz"
    argv = ["extract", "--checkpoint", str(tiny_ckpt), "--dataset",
            f"imagelist:{tmp_path / 'list.csv'}", "--split", "query", "--precision", "fp32",
            "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    data = np.load(out)
    assert [Path(p).name for p in data["paths"]] == ["0.png", "2.png"]
    assert data["pids"].tolist() == [3, 5] and data["camids"].tolist() == [0, 0]
    assert data["features"].shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(data["features"], axis=1), 1.0, atol=1e-5)


def test_extract_without_inputs_is_bad_input(
    tiny_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["extract", "--checkpoint", str(tiny_ckpt), "-o", str(tmp_path / "f.npy")]) == 2
    assert "give image files/folders/list files" in capsys.readouterr().err
