"""A fake part parser for the parser tests: horizontal bands, every ``miss``-th crop missed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semparts_reid.parsers import ParseResult


class BandParser:
    """Head / upper / lower bands (top quarter, middle, bottom 40 %); misses crops
    ``miss - 1, 2 * miss - 1, ...`` in the order seen (``miss=0``: none)."""

    name = "bands"

    def __init__(self, miss: int = 3) -> None:
        self.miss = miss
        self.seen = 0
        self.closed = False

    def parse(self, crops: Sequence[np.ndarray]) -> ParseResult:
        maps, conf, found = [], [], []
        for crop in crops:
            self.seen += 1
            h, w = crop.shape[:2]
            hit = not (self.miss and self.seen % self.miss == 0)
            m = np.zeros((h, w), np.uint8)
            if hit:
                m[: h // 4] = 1
                m[h // 4 : (h * 6) // 10] = 2
                m[(h * 6) // 10 :] = 3
            maps.append(m)
            conf.append(0.9 if hit else 0.7)  # 0.7 must come back as 0
            found.append(hit)
        return ParseResult(maps, np.array(conf), np.array(found))

    def describe(self) -> dict[str, str]:
        return {"parser": self.name}

    def close(self) -> None:
        self.closed = True
