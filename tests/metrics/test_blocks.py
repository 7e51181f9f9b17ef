"""DistanceBlocks: evaluate_cmc_map from streamed distance blocks equals the full matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semparts_reid.metrics.blocks import DistanceBlocks
from semparts_reid.metrics.part_distance import part_aware_distance, part_aware_distance_blocks
from semparts_reid.metrics.rank import evaluate_cmc_map


def _of(dist: np.ndarray) -> DistanceBlocks:
    q = dist.shape[0]
    return DistanceBlocks(dist.shape, lambda n: ((a, min(a + n, q), dist[a:a + n])
                                                 for a in range(0, q, n)))


@pytest.mark.parametrize("chunk", [1, 3, 50])
def test_blocks_equal_the_matrix_with_junk_and_both_protocols(chunk: int) -> None:
    rng = np.random.default_rng(0)
    dist = rng.random((9, 25)).astype(np.float32)
    qp, gp = rng.integers(0, 4, 9), rng.integers(-1, 4, 25)
    qc, gc = rng.integers(0, 2, 9), rng.integers(0, 3, 25)
    for protocol in ("market1501", "cuhk03"):
        ref = evaluate_cmc_map(dist, qp, gp, qc, gc, protocol=protocol, junk_pids=(-1,))
        got = evaluate_cmc_map(_of(dist), qp, gp, qc, gc, protocol=protocol, junk_pids=(-1,),
                               chunk_size=chunk)
        assert got.mAP == ref.mAP and np.array_equal(got.cmc, ref.cmc)


def test_part_distance_blocks_equal_the_part_distance_matrix() -> None:
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(7, 8, generator=g), torch.randn(11, 8, generator=g),
            torch.randn(7, 3, 8, generator=g), torch.randn(11, 3, 8, generator=g),
            (torch.rand(7, 3, generator=g) > 0.3).float(),
            (torch.rand(11, 3, generator=g) > 0.3).float())
    full = part_aware_distance(*args)
    streamed = part_aware_distance_blocks(*args)
    assert streamed.shape == (7, 11)
    torch.testing.assert_close(torch.cat([b for _, _, b in streamed.iter(3)]), full)


def test_malformed_blocks_are_named() -> None:
    dist = np.zeros((4, 3))
    skip = DistanceBlocks((4, 3), lambda n: iter([(0, 2, dist[:2]), (3, 4, dist[3:])]))
    with pytest.raises(ValueError, match=r"rows \[3, 4\) out of order; expected a block starting "
                                         r"at row 2"):
        list(skip.iter(2))
    wide = DistanceBlocks((4, 3), lambda n: iter([(0, 4, np.zeros((4, 5)))]))
    with pytest.raises(ValueError, match=r"shape \(4, 5\), expected \(4, 3\)"):
        list(wide.iter(4))
    short = DistanceBlocks((4, 3), lambda n: iter([(0, 2, dist[:2])]))
    with pytest.raises(ValueError, match="ended at row 2 of 4"):
        list(short.iter(2))
    with pytest.raises(ValueError, match=r"\(Q, G\)"):
        DistanceBlocks((4,), lambda n: iter([]))  # type: ignore[arg-type]
