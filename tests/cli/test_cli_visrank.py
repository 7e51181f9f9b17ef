"""``semparts-reid visrank`` (``cli/visrank.py``): a ranked-results picture from a checkpoint,
end to end on the tiny synthetic pair, drawn from the library's ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import TINY

from semparts_reid import viz
from semparts_reid.cli import main

TARGET = TINY.format("b")
CPU = ["--device", "cpu", "--precision", "fp32"]


def _record(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record what the command passes to plot_ranked_results (and still draw it)."""
    calls: list[dict[str, Any]] = []
    real = viz.plot_ranked_results

    def spy(*args: Any, **kwargs: Any) -> Path:
        names = ("query_images", "gallery_images", "ranks", "matches", "out_path", "top_k")
        calls.append({**dict(zip(names, args)), **kwargs})
        return real(*args, **kwargs)

    monkeypatch.setattr(viz, "plot_ranked_results", spy)
    return calls


def test_visrank_draws_the_library_ranking(
    tiny_ckpt: Path, tiny_pair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("matplotlib")
    from semparts_reid.inference import load_model_from_checkpoint, rank_gallery

    calls = _record(monkeypatch)
    out = tmp_path / "ranks.png"
    argv = ["visrank", "--checkpoint", str(tiny_ckpt), "--target", TARGET, "-o", str(out),
            "--num-queries", "4", "--top-k", "5", "--mode", "parts", *CPU]  # fmt: skip
    assert main(argv) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert "4 queries" in text and str(out) in text
    _, target = tiny_pair
    expected = rank_gallery(load_model_from_checkpoint(tiny_ckpt), target.query, target.gallery,
                            num_queries=4, top_k=5, mode="parts", device="cpu",
                            precision="fp32")  # fmt: skip
    (call,) = calls
    np.testing.assert_array_equal(call["ranks"], expected.ranks)
    np.testing.assert_array_equal(call["matches"], expected.matches)
    np.testing.assert_array_equal(call["junk"], expected.junk)  # junk greyed, not dropped
    picked = [target.query[i] for i in expected.query_indices]
    assert call["query_images"] == [r.path for r in picked]
    assert call["titles"] == [f"id {r.pid} · cam {r.camid}" for r in picked]
    assert call["part_maps"] is None


def test_visrank_seed_hide_junk_and_part_overlay(
    tiny_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    calls = _record(monkeypatch)
    out = tmp_path / "r.png"
    argv = ["visrank", "--checkpoint", str(tiny_ckpt), "--target", TARGET, "-o", str(out),
            "--num-queries", "3", "--top-k", "4", "--seed", "3", "--hide-junk",
            "--parts-overlay", *CPU]  # fmt: skip
    assert main(argv) == 0 and out.is_file()
    call = calls[0]
    assert not call["junk"].any()
    q_maps, g_maps = call["part_maps"]
    assert len(q_maps) == 3 and all(m.shape == (4, 64, 32) for m in q_maps)
    shown = set(call["ranks"].ravel().tolist())
    assert {i for i, m in enumerate(g_maps) if m is not None} == shown  # only those shown
    assert main([*argv[:-4], "--seed", "4", *CPU]) == 0
    assert call["query_images"] != calls[1]["query_images"]  # another seed, other queries


def test_visrank_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["visrank", "--checkpoint", str(tmp_path / "none.pt"), "--target", TARGET,
            "-o", str(tmp_path / "r.png"), *CPU]  # fmt: skip
    assert main(argv) == 2
    assert "none.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["visrank", "--target", TARGET])  # no --checkpoint
    assert exc.value.code == 2


def test_visrank_overlay_needs_a_part_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    from semparts_reid.engine.checkpoint import model_payload, save_checkpoint
    from semparts_reid.models.factory import build_model

    ckpt = save_checkpoint(model_payload(build_model("ecn_resnet18", input_size=(64, 32))),
                           tmp_path / "ecn.pt")
    argv = ["visrank", "--checkpoint", str(ckpt), "--target", TARGET, "--num-queries", "2",
            "--parts-overlay", "-o", str(tmp_path / "r.png"), *CPU]  # fmt: skip
    assert main(argv) == 2
    assert "predicts no part maps" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()
