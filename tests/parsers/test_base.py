"""The PartParser protocol and ParseResult."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import BandParser

from semparts_reid.errors import InputError
from semparts_reid.parsers import ParseResult, PartParser, check_crops


def test_a_class_with_parse_is_a_part_parser_and_others_are_not() -> None:
    assert isinstance(BandParser(), PartParser)
    assert not isinstance(object(), PartParser)


def test_parse_result_zeroes_confidence_where_no_pose_was_found() -> None:
    res = BandParser(miss=2).parse([np.zeros((8, 4, 3), np.uint8)] * 4)
    assert res.found.tolist() == [True, False, True, False]
    assert res.confidence.dtype == np.float32
    np.testing.assert_allclose(res.confidence, [0.9, 0, 0.9, 0])
    assert res.num_found == 2 and len(res) == 4


def test_parse_result_checks_lengths_and_concatenates() -> None:
    with pytest.raises(ValueError, match=r"2 label maps"):
        ParseResult([np.zeros((2, 2), np.uint8)] * 2, np.ones(3), np.ones(2, bool))
    a = ParseResult([np.zeros((2, 2), np.uint8)], [0.5], [True])
    both = ParseResult.concat([a, ParseResult([np.ones((3, 1), np.uint8)], [0.2], [False])])
    assert len(both) == 2 and both.found.tolist() == [True, False]
    assert len(ParseResult.concat([])) == 0


@pytest.mark.parametrize(
    "crop, match",
    [(np.zeros((8, 4), np.uint8), r"crops\[0\] has shape"),
     (np.zeros((8, 4, 4), np.uint8), r"expected \(H, W, 3\)"),
     (np.zeros((0, 4, 3), np.uint8), r"shape \(0, 4, 3\)"),
     (np.zeros((8, 4, 3), np.float32), r"dtype float32")],
)  # fmt: skip
def test_check_crops_names_the_bad_crop(crop: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        check_crops([crop])


def test_check_crops_makes_contiguous_copies_only_when_needed() -> None:
    crop = np.zeros((8, 6, 3), np.uint8)
    out = check_crops([crop, crop[:, ::2]])
    assert out[0] is crop and out[1].flags.c_contiguous
