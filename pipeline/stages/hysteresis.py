"""Vectorised two-threshold state tracking, carried across calls."""

from __future__ import annotations

from bisect import bisect_left

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Hysteresis:
    """State 1 once the signal rises above ``on``; 0 once it falls below ``off``.

    ``update`` returns the indices (into the given array) where the state switched on
    and where it switched off. Between the thresholds the state holds, so noise around
    one threshold cannot make a flurry of events.
    """

    def __init__(self, on: float, off: float, state: int = 0) -> None:
        if off > on:
            raise ValueError("off threshold must not exceed on threshold")
        self.on = on
        self.off = off
        self.state = state

    def switches(self, x: FloatArray) -> list[tuple[int, int]]:
        """The switches in ``x`` in order, as ``(index, new state)``; they alternate.

        Cheaper than :meth:`update` when the per-sample state is not needed: a switch
        to 0 is the first sample below ``off`` after the last switch to 1 and vice
        versa, so a few bisections over the threshold crossings find them all.
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

    def update(self, x: FloatArray) -> tuple[IntArray, IntArray, npt.NDArray[np.int8]]:
        n = x.shape[0]
        # Fast path (most calls): nothing crosses the threshold that would switch.
        if n and (float(x.min()) >= self.off if self.state else float(x.max()) <= self.on):
            none = np.zeros(0, dtype=np.int64)
            return none, none, np.full(n, self.state, dtype=np.int8)
        trig = np.full(n, -1, dtype=np.int8)
        trig[x > self.on] = 1
        trig[x < self.off] = 0
        idx = np.where(trig >= 0, np.arange(n), -1)
        np.maximum.accumulate(idx, out=idx)
        state = np.where(idx >= 0, trig[np.maximum(idx, 0)], self.state).astype(np.int8)
        prev = np.empty(n, dtype=np.int8)
        prev[0] = self.state
        prev[1:] = state[:-1]
        rises = np.flatnonzero((state == 1) & (prev == 0))
        falls = np.flatnonzero((state == 0) & (prev == 1))
        if n:
            self.state = int(state[-1])
        return rises, falls, state
