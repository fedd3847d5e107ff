"""Bounded-memory running statistics for whole-run summaries.

A 4-hour marathon must use the same memory as a 4-minute jog, so per-step values are
kept as counts of values rounded to a fixed resolution (a histogram), not as lists.
The median is exact to that resolution.
"""

from __future__ import annotations

import math
from collections import Counter


class StreamingMedian:
    def __init__(self, resolution: float) -> None:
        self.resolution = resolution
        self._counts: Counter[int] = Counter()
        self.n = 0
        self.total = 0.0

    def add(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        self._counts[round(value / self.resolution)] += 1
        self.n += 1
        self.total += value

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def quantile(self, q: float) -> float | None:
        if not self.n:
            return None
        target = q * (self.n - 1)
        lo_rank, hi_rank = math.floor(target), math.ceil(target)
        lo = hi = None
        seen = 0
        for key in sorted(self._counts):
            c = self._counts[key]
            if lo is None and seen + c > lo_rank:
                lo = key
            if seen + c > hi_rank:
                hi = key
                break
            seen += c
        assert lo is not None and hi is not None
        frac = target - lo_rank
        return (lo + (hi - lo) * frac) * self.resolution

    @property
    def median(self) -> float | None:
        return self.quantile(0.5)
