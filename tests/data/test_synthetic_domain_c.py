"""Synthetic domain ``c``: a and b unchanged, c rendered differently with correct part maps,
and any domain written as a Market-1501 folder without part maps."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from semparts_reid import InputError
from semparts_reid.data import build_dataset, part_map_path
from semparts_reid.data.synthetic import DOMAINS, write_synthetic_market
from semparts_reid.data.synthetic import generate as syn
from semparts_reid.data.synthetic.export import INFO_FILE
from semparts_reid.data.synthetic.plan import RenderPlan, plan_render
from semparts_reid.data.synthetic.styles import DomainStyle
from semparts_reid.layers.parts import BACKGROUND, HEAD, LOWER, UPPER

# Rendered arrays of size "tiny", hashed per image (name, sha256 of the uint8 image, of the
# part map) in name order: computed with the generator as it was before domain c existed.
# The image hashes go through float32 sin and the sensor noise; the part maps through
# plain arithmetic only.
PINNED = {
    "a": (139, "161cfadee4cfe55336ab3e012ac7d46c7c862d17f2487e6c56168a3ab4a4084a",
          "0458b2ab5e86479949db64dec6614080e1f96e3efa1ab4b1c7ee939f1d09a210"),
    "b": (138, "b487fbf27f7272a114e312750ac1549c42c4ff8731c240125280e5f59b5b1afe",
          "a62167ca18fdd761046e5159ca80f72efd7486702911c71ad4e264f1089b2180"),
}  # fmt: skip


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()


def _rendered(plan: RenderPlan) -> dict[str, tuple[str, str]]:
    """Image name -> (sha256 of the image, of the part map), rendered as generation does."""
    out = {}
    for lo in range(0, len(plan), syn._CHUNK):  # the noise is drawn chunk by chunk
        sl = slice(lo, min(lo + syn._CHUNK, len(plan)))
        img8, part = plan.render(sl)
        for name, im, pm in zip(plan.names[sl], img8, part):
            out[name.rsplit("/", 1)[-1]] = (_sha(im), _sha(pm))
    return out


@pytest.mark.parametrize("domain", ["a", "b"])
def test_a_and_b_render_the_pinned_pixels_and_part_maps(domain: str) -> None:
    recs = _rendered(plan_render(syn.make_config(domain, size="tiny")))
    both, parts = hashlib.sha256(), hashlib.sha256()
    for name in sorted(recs):
        both.update(name.encode() + recs[name][0].encode() + recs[name][1].encode())
        parts.update(name.encode() + recs[name][1].encode())
    assert (len(recs), both.hexdigest(), parts.hexdigest()) == PINNED[domain]
    assert syn.GENERATOR_VERSION == 2


def _body_stats(domain: str) -> dict[str, float]:
    """Mean proportions of the visible people (no occluder, no junk) from the part maps.

    Rows and widths in units of the person's height on the map: ``shoulder`` the first
    upper-body row, ``waist`` the first lower-body row, ``feet`` / ``arms`` the width of
    the lower body at 97% of the height / of the upper body at 40%.
    """
    plan = plan_render(syn.make_config(domain, size="tiny"))
    _, _, part = plan.layers(slice(0, len(plan)))
    part = part[(plan.geo["occ"] == 0) & (plan.split != 4)]
    n, h, w = part.shape
    r, cols = np.arange(h), np.arange(w)
    rows = (part > 0).any(2)
    top = np.where(rows, r, h).min(1)
    height = (np.where(rows, r, -1).max(1) - top + 1).astype(float)

    def first_row(k: int) -> np.ndarray:
        return (np.where((part == k).any(2), r, h).min(1) - top) / height

    def width(frac: float, k: int) -> np.ndarray:
        m = part[np.arange(n), (top + frac * height).astype(int).clip(0, h - 1)] == k
        lo, hi = np.where(m, cols, w).min(1), np.where(m, cols, -1).max(1)
        return np.where(hi >= lo, hi - lo + 1, 0) / height

    stats = {
        "shoulder": first_row(UPPER),
        "waist": first_row(LOWER),
        "feet": width(0.97, LOWER),
        "arms": width(0.4, UPPER),
    }
    return {k: float(v.mean()) for k, v in stats.items()}


def test_c_has_other_proportions_and_poses_measured_on_its_part_maps() -> None:
    a, c = _body_stats("a"), _body_stats("c")
    assert c["shoulder"] > a["shoulder"] + 0.01  # bigger heads: the shoulders start lower
    assert c["waist"] < a["waist"] - 0.03  # longer legs: the waist is higher
    assert c["feet"] > 1.2 * a["feet"]  # legs apart, long skirts
    assert c["arms"] > 1.08 * a["arms"]  # broad shoulders, arms away from the body


def test_c_has_other_styles_clothing_backgrounds_and_cameras() -> None:
    a, b, c = DOMAINS["a"], DOMAINS["b"], DOMAINS["c"]
    assert c.num_cams == 7 and {a.num_cams, b.num_cams} == {6, 8}
    assert c.head_scale != a.head_scale == b.head_scale
    assert c.leg_length != a.leg_length == b.leg_length
    assert c.arm_spread[0] > 0 == a.arm_spread[1] and c.stride[0] > a.stride[0]
    assert c.dress_p > 0 and c.coat_p > 0 and len(c.lower_probs) == 4
    assert sum(c.bg_kind_probs[4:]) > 0.5 and len(a.bg_kind_probs) == len(b.bg_kind_probs) == 4
    assert c.cam_gamma != (1.0, 1.0)
    plan = plan_render(syn.make_config("c", size="tiny"))
    assert plan.attrs["dress"].any() and plan.attrs["coat"].any()
    assert (plan.attrs["low_type"] == 3).any()  # long skirts
    assert (plan.scenes["kind"] >= 4).any()  # the new background kinds
    assert len(np.unique(plan.gamma)) == 7  # one tone curve per camera
    # every dress's skirt has the colour of its top
    d = plan.attrs["dress"]
    np.testing.assert_array_equal(plan.attrs["low"][d], plan.attrs["up1"][d])


def test_c_part_maps_agree_with_its_images() -> None:
    plan = plan_render(syn.make_config("c", size="tiny"))
    bg, img, part = plan.layers(slice(0, len(plan)))
    assert part.dtype == np.uint8 and set(np.unique(part)) == {BACKGROUND, HEAD, UPPER, LOWER}
    same = (img == bg).all(-1)
    clear = plan.geo["occ"] == 0
    # background label without an occluder: exactly the rendered background
    assert same[clear][part[clear] == BACKGROUND].all()
    # a person label: the person's colour, not the background
    assert same[part > 0].mean() < 0.001
    # occluded images: what differs from the background under a background label is
    # the occluder, and it hides part of the person
    occ = ~clear
    assert (~same[occ] & (part[occ] == BACKGROUND)).any()
    # head above upper above lower body, in every image that shows all three
    r = np.arange(part.shape[1])[None, :, None]
    means = [np.where(part == k, r, 0).sum((1, 2)) / np.maximum((part == k).sum((1, 2)), 1)
             for k in (HEAD, UPPER, LOWER)]  # fmt: skip
    seen = np.stack([(part == k).any((1, 2)) for k in (HEAD, UPPER, LOWER)]).all(0)
    assert seen.sum() > 50
    assert ((means[0] < means[1]) & (means[1] < means[2]))[seen].all()


def test_synthetic_c_is_a_spec_like_a_and_b(tmp_path: Path) -> None:
    ds = build_dataset("synthetic:c?size=tiny", root=tmp_path, progress=False)
    assert ds.num_train_pids == 12 and ds.summary()["query"]["ids"] == 10
    assert max(r.camid for r in ds.train + ds.query + ds.gallery) <= 6
    assert all(os.path.isfile(part_map_path(r.path)) for r in ds.train)


def test_market_export_reads_back_without_part_maps(tmp_path: Path) -> None:
    root = write_synthetic_market("c", tmp_path / "c", size="tiny", progress=False)
    assert root == tmp_path / "c"
    assert not list(root.rglob("*.parts.png")) and not list(tmp_path.glob(".c.tmp-*"))
    ds = build_dataset(f"market1501:{root}")
    cached = build_dataset("synthetic:c?size=tiny", root=tmp_path / "cache", progress=False)
    assert ds.summary() == cached.summary() and ds.num_train_pids == 12
    assert not any(os.path.exists(part_map_path(r.path)) for r in ds.train + ds.gallery)
    # the same images as the cached domain, byte for byte
    for r, s in zip(ds.query, cached.query):
        assert Path(r.path).name == Path(s.path).name
        assert Path(r.path).read_bytes() == Path(s.path).read_bytes()
    info = json.loads((root / INFO_FILE).read_text())
    assert info["config"]["domain"] == "c" and info["part_maps"] is False
    # with part maps on request, into an existing empty folder
    (tmp_path / "with").mkdir()
    root = write_synthetic_market("a", tmp_path / "with", size="tiny", seed=1, part_maps=True,
                                  progress=False, train_ids=3)  # fmt: skip
    ds = build_dataset(f"market1501:{root}")
    assert ds.num_train_pids == 3
    assert all(os.path.isfile(part_map_path(r.path)) for r in ds.train + ds.query)


def test_market_export_errors_name_the_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="domain='z'"):
        write_synthetic_market("z", tmp_path / "z", size="tiny")
    with pytest.raises(InputError, match="size='huge'"):
        write_synthetic_market("c", tmp_path / "z", size="huge")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(InputError, match=f"output folder {full} is not empty"):
        write_synthetic_market("c", full, size="tiny")
    with pytest.raises(InputError, match="is a file"):
        write_synthetic_market("c", full / "keep.txt", size="tiny")
    # a failure part-way leaves neither the folder nor the temporary one
    calls = {"n": 0}
    real = syn._write_one

    def dying_writer(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt("simulated kill")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(syn, "_write_one", dying_writer)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_market("c", tmp_path / "dead", size="tiny", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_domain_style_checks_its_fields() -> None:
    base = DOMAINS["c"]
    fields = {f: getattr(base, f) for f in DomainStyle.__dataclass_fields__}
    with pytest.raises(InputError, match="lower_probs"):
        DomainStyle(**{**fields, "lower_probs": (0.5, 0.6)})
    with pytest.raises(InputError, match="bg_kind_probs"):
        DomainStyle(**{**fields, "bg_kind_probs": (0.1,) * 8 + (0.2,)})
    with pytest.raises(InputError, match="leg_length"):
        DomainStyle(**{**fields, "leg_length": (0.6, 0.5)})
    with pytest.raises(InputError, match="dress_p"):
        DomainStyle(**{**fields, "dress_p": 0.8, "coat_p": 0.5})
