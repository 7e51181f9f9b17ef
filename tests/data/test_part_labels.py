"""Part-map reading, grouping tables, band prior."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semparts_reid.data import GROUPING_TABLES, band_prior, make_lut, part_map_path, read_part_map
from semparts_reid.data.part_labels import PartMapError


def _save(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr.astype(np.uint8), "L").save(path)
    return path


def test_part_map_path() -> None:
    assert part_map_path("/d/0001_c1s1_000151_00.jpg") == "/d/0001_c1s1_000151_00.parts.png"


@pytest.mark.parametrize(
    ("table", "raw", "expected"),
    [
        ("lip", [0, 2, 13, 5, 14, 9, 18, 12], [0, 1, 1, 2, 2, 3, 3, 3]),
        ("cihp", [1, 7, 16, 255], [1, 2, 3, 255]),
        ("atr", [3, 4, 16, 6, 8, 12], [1, 2, 2, 3, 3, 3]),
        ("pascal", [0, 1, 2, 4, 5, 6], [0, 1, 2, 2, 3, 3]),
        ("parts8", [1, 3, 4, 5, 7], [1, 2, 2, 3, 3]),
        ("densepose24", [0, 1, 3, 7, 15, 24], [0, 2, 2, 3, 2, 1]),
        ({0: 0, 10: 1, 20: 2, 30: 3}, [10, 20, 30, 0], [1, 2, 3, 0]),
    ],
)
def test_grouping_tables(
    tmp_path: Path, table: object, raw: list[int], expected: list[int]
) -> None:
    path = _save(tmp_path / "x.parts.png", np.array([raw]))
    out = read_part_map(path, table=table, size=(len(raw), 1))  # type: ignore[arg-type]
    assert out.tolist() == [expected]


def test_every_table_covers_background_and_valid_parts() -> None:
    for name, table in GROUPING_TABLES.items():
        assert table[0] == 0, name
        assert set(table.values()) == {0, 1, 2, 3}, name
        make_lut(name)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = _save(tmp_path / "a.parts.png", np.zeros((4, 2)))
    with pytest.raises(PartMapError, match=r"a.parts.png is 2x4.*5x4"):
        read_part_map(path, size=(5, 4))
    bad = _save(tmp_path / "b.parts.png", np.array([[0, 3, 7, 40]]))
    with pytest.raises(PartMapError, match=r"b.parts.png holds classes \[7, 40\]"):
        read_part_map(bad)
    rgb = tmp_path / "c.parts.png"
    Image.new("RGB", (2, 2)).save(rgb)
    with pytest.raises(PartMapError, match="single-channel"):
        read_part_map(rgb)
    with pytest.raises(ValueError, match="table='nope'"):
        make_lut("nope")
    with pytest.raises(ValueError, match="maps class 1 to 9"):
        make_lut({1: 9})


def test_band_prior_and_pseudo_labels_are_reexported() -> None:
    from semparts_reid.layers import part_clustering

    assert band_prior is part_clustering.band_prior
    prior = band_prior(48, 16)
    assert prior.shape == (4, 48, 16)
    assert torch.allclose(prior.sum(0), torch.ones(48, 16), atol=1e-5)
    winner = prior[:, :, 0].argmax(0)
    assert winner[0] == 1 and winner[20] == 2 and winner[40] == 3
    from semparts_reid.data import pseudo_part_labels

    assert pseudo_part_labels is part_clustering.pseudo_part_labels


def test_data_namespace_resolves_every_name() -> None:
    import semparts_reid.data as data

    for name in data.__all__:
        assert getattr(data, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        data.no_such_name  # noqa: B018
