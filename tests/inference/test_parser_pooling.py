"""Pooling with given part maps (a human parser's) at inference: the model's per-crop
blend of given and predicted masks, and ``FeatureExtractor(part_maps=...)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from semparts_reid.data.transforms import JointTransform
from semparts_reid.errors import InputError
from semparts_reid.inference import FeatureExtractor
from semparts_reid.inference.evaluation import extract_split
from semparts_reid.parsers import ParsedPartMaps, PartMapWriter


def _labels(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lab = torch.zeros(n, h, w, dtype=torch.long)
    for i in range(n):  # head / upper / lower bands at random heights
        a, b = sorted(torch.randint(2, h - 2, (2,), generator=g).tolist())
        lab[i, :a], lab[i, a:b], lab[i, b:] = 1, 2, 3
    return lab


def test_the_blend_pools_given_maps_where_known_and_predicted_maps_elsewhere(
    tiny_model: nn.Module,
) -> None:
    model = tiny_model.eval()
    torch.manual_seed(0)
    x = torch.randn(4, 3, 64, 32)
    maps = _labels(4, 64, 32)
    known = torch.tensor([True, False, True, False])
    with torch.no_grad():
        blend = model(x, maps, known=known)
        given = model(x, maps)
        predicted = model(x)
        again = model(x)
    assert torch.equal(predicted.part_feats, again.part_feats)  # deterministic reference
    for name in ("part_feats", "visibility", "part_raw"):
        b, gv, pr = (getattr(o, name) for o in (blend, given, predicted))
        torch.testing.assert_close(b[known], gv[known], rtol=0, atol=1e-6)
        torch.testing.assert_close(b[~known], pr[~known], rtol=0, atol=1e-6)
    assert not torch.allclose(given.part_raw, predicted.part_raw)
    assert torch.equal(blend.global_feat, predicted.global_feat)  # parts only
    with torch.no_grad():  # all known: exactly the given pooling
        every = model(x, maps, known=torch.ones(4, dtype=torch.bool))
    torch.testing.assert_close(every.part_feats, given.part_feats, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="known must have shape"):
        model(x, maps, known=torch.ones(3, dtype=torch.bool))


@pytest.fixture()
def crops(tmp_path: Path) -> tuple[list[str], Path, list[np.ndarray | None]]:
    """Six crop files and a parse folder with a map for crops 0, 2, 4."""
    rng = np.random.default_rng(0)
    paths, maps = [], []
    writer = PartMapWriter(tmp_path / "parsed", root=str(tmp_path))
    for i in range(6):
        path = tmp_path / f"crop{i}.png"
        Image.fromarray(rng.integers(0, 255, (48, 24, 3), dtype=np.uint8)).save(path)
        lab = _labels(1, 48, 24, seed=i)[0].numpy().astype(np.uint8) if i % 2 == 0 else None
        writer.add("query", i, str(path), lab, confidence=0.8, found=lab is not None,
                   size=(24, 48))
        paths.append(str(path))
        maps.append(lab)
    writer.finish({})
    return paths, tmp_path / "parsed", maps


def test_the_extractor_pools_with_a_parse_folder(
    tiny_model: nn.Module, crops: tuple[list[str], Path, list[np.ndarray | None]],
) -> None:
    paths, folder, maps = crops
    ext = FeatureExtractor(tiny_model, device="cpu", precision="fp32", batch_size=4)
    plain = ext.extract_parts(paths, return_numpy=False)
    parsed = ext.extract_parts(paths, return_numpy=False, part_maps=ParsedPartMaps(folder))
    # the same as the model pooling with the maps at the input size, crop by crop
    x = torch.cat(list(ext.batches(ext.check_inputs(paths, False))))
    resize = JointTransform((64, 32), (0.0,) * 3, (1.0,) * 3)
    lab = torch.stack([resize.labels_only(m) for m in maps])
    known = torch.tensor([m is not None for m in maps])
    with torch.no_grad():
        ref = ext.model(x, lab, known=known)
    torch.testing.assert_close(parsed.part_feats,
                               torch.nn.functional.normalize(ref.part_feats.float(), dim=-1),
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(parsed.visibility, ref.visibility)
    assert not torch.allclose(parsed.part_feats[known], plain.part_feats[known])
    assert torch.equal(parsed.part_feats[~known], plain.part_feats[~known])
    assert torch.equal(parsed.global_feat, plain.global_feat)
    # no map anywhere: bit for bit the default; a sequence and a callable give the same
    none = ext.extract_parts(paths, return_numpy=False, part_maps=[None] * 6)
    assert torch.equal(none.part_feats, plain.part_feats)
    seq = ext.extract_parts(paths, return_numpy=False, part_maps=maps)
    assert torch.equal(seq.part_feats, parsed.part_feats)
    by_call = ParsedPartMaps(folder).read
    split = extract_split(ext, [(p, i, 0) for i, p in enumerate(paths)],
                          part_maps=lambda p: by_call(p))
    assert torch.equal(split.part_feats, parsed.part_feats)
    # the extractor's own default, and flip
    own = FeatureExtractor(tiny_model, device="cpu", precision="fp32", batch_size=4,
                           part_maps=ParsedPartMaps(folder))
    assert torch.equal(own.extract_parts(paths, return_numpy=False).part_feats,
                       parsed.part_feats)
    flip = FeatureExtractor(tiny_model, device="cpu", precision="fp32", flip=True,
                            part_maps=ParsedPartMaps(folder))
    assert flip.extract_parts(paths).part_feats.shape == (6, 3, 512)


def test_bad_part_maps_options(
    tiny_model: nn.Module, crops: tuple[list[str], Path, list[np.ndarray | None]],
    tmp_path: Path,
) -> None:
    paths, _, maps = crops
    ext = FeatureExtractor(tiny_model, device="cpu", precision="fp32")
    with pytest.raises(InputError, match="2 maps for 6 inputs"):
        ext.extract_parts(paths, part_maps=maps[:2])
    arrays = [np.zeros((48, 24, 3), np.uint8)] * 2
    with pytest.raises(InputError, match="need path inputs"):
        ext.extract_parts(arrays, part_maps=lambda p: None)
    with pytest.raises(InputError, match="missing_parse"):
        ParsedPartMaps(tmp_path / "missing_parse")
