"""``DistanceBlocks``: a ``(Q, G)`` distance matrix given a block of query rows at a time.

:func:`~semparts_reid.metrics.rank.evaluate_cmc_map` ranks any distance block by block;
this type lets a caller hand it a distance that is neither a stored matrix nor a plain
feature metric (the visibility-aware part distance, say) without ever building the
``Q x G`` matrix.

Example:
    >>> import numpy as np
    >>> full = np.array([[0.1, 0.5], [0.4, 0.2], [0.3, 0.9]])
    >>> blocks = DistanceBlocks((3, 2), lambda n: ((a, min(a + n, 3), full[a:a + n])
    ...                                             for a in range(0, 3, n)))
    >>> [(a, b) for a, b, _ in blocks.iter(2)]
    [(0, 2), (2, 3)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DistanceBlocks"]

Block = tuple[int, int, "np.ndarray | torch.Tensor"]


@dataclass(frozen=True)
class DistanceBlocks:
    """A ``(Q, G)`` distance matrix produced one block of query rows at a time.

    Attributes:
        shape: ``(Q, G)``.
        make: ``make(chunk_size)`` returns an iterator of ``(start, stop, block)`` with
            ``block`` of shape ``(stop - start, G)`` (numpy or torch), covering the rows
            ``0..Q`` in order.
    """

    shape: tuple[int, int]
    make: Callable[[int], Iterator[Block]]

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or min(self.shape) < 0:
            raise ValueError(f"DistanceBlocks.shape must be (Q, G) >= 0, got {self.shape}")

    def iter(self, chunk_size: int) -> Iterator[Block]:
        """The blocks, checked for shape and order as they come."""
        expected = 0
        num_q, num_g = self.shape
        for start, stop, block in self.make(chunk_size):
            if start != expected or not start < stop <= num_q:
                raise ValueError(
                    f"DistanceBlocks: block rows [{start}, {stop}) out of order; expected a "
                    f"block starting at row {expected} of {num_q}"
                )
            if tuple(block.shape) != (stop - start, num_g):
                raise ValueError(
                    f"DistanceBlocks: block [{start}, {stop}) has shape {tuple(block.shape)}, "
                    f"expected {(stop - start, num_g)}"
                )
            expected = stop
            yield start, stop, block
        if expected != num_q:
            raise ValueError(f"DistanceBlocks: the blocks ended at row {expected} of {num_q}")
