"""Vectorised two-threshold state tracking, carried across calls."""

from __future__ import annotations

from bisect import bisect_left

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class Hysteresis:
    """State 1 once the signal rises above ``on``; 0 once it falls below ``off``.

    ``switches`` returns where, in the given array, the state switched and to what.
    Between the thresholds the state holds, so noise around one threshold cannot make a
    flurry of events.
    """

    def __init__(self, on: float, off: float, state: int = 0) -> None:
        if off > on:
            raise ValueError("off threshold must not exceed on threshold")
        self.on = on
        self.off = off
        self.state = state

    def switches(self, x: FloatArray) -> list[tuple[int, int]]:
        """The switches in ``x`` in order, as ``(index, new state)``; they alternate.

        A switch to 0 is the first sample below ``off`` after the last switch to 1 and
        vice versa, so a few bisections over the threshold crossings find them all
        (no per-sample state array is built).
        """
        state = self.state
        if state:
            lows = np.flatnonzero(x < self.off)
            if lows.size == 0:
                return []
            highs = np.flatnonzero(x > self.on)
        else:
            highs = np.flatnonzero(x > self.on)
            if highs.size == 0:
                return []
            lows = np.flatnonzero(x < self.off)
        lo: list[int] = lows.tolist()
        hi: list[int] = highs.tolist()
        out: list[tuple[int, int]] = []
        pos = 0
        while True:
            seq = lo if state else hi
            k = bisect_left(seq, pos)
            if k == len(seq):
                break
            pos = seq[k]
            state = 1 - state
            out.append((pos, state))
        self.state = state
        return out
