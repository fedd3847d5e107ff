"""Shared machinery of the per-sensor detectors.

Chunk-invariance by construction: incoming chunks are cut into pieces of at most
``piece_s`` seconds; every filter is sample-sequential (``sosfilt`` with carried state,
bit-identical however the stream is cut); every event decision looks at a window of
the buffer fixed by sample *times*, taken only once the buffer holds the window's end.
The buffer keeps ``history_s`` seconds, more than any window plus one piece.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import signal

from pipeline.buffer import SlidingBuffer

FloatArray = npt.NDArray[np.float64]


@lru_cache(maxsize=64)
def _butter_ba(order: int, cutoff_hz: float, fs_hz: float) -> tuple[FloatArray, FloatArray]:
    wn = min(cutoff_hz / (fs_hz / 2.0), 0.99)
    b, a = signal.butter(order, wn)
    return np.asarray(b), np.asarray(a)


@lru_cache(maxsize=64)
def _butter_sos(order: int, cutoff_hz: float, fs_hz: float) -> FloatArray:
    wn = min(cutoff_hz / (fs_hz / 2.0), 0.99)
    return np.asarray(signal.butter(order, wn, output="sos"))


class CausalFilter:
    """A low-order Butterworth low-pass applied sample by sample across calls.

    ``lfilter`` with carried state is bit-identical however the stream is cut, and costs
    a quarter of ``sosfilt``'s per-call overhead; orders 1-2 are well conditioned in
    transfer-function form at the cut-offs used here.
    """

    def __init__(self, cutoff_hz: float, fs_hz: float, channels: int, order: int = 2) -> None:
        if order > 2:
            raise ValueError("use order <= 2 (transfer-function form)")
        self.b, self.a = _butter_ba(order, cutoff_hz, fs_hz)
        self._zi: FloatArray | None = None
        self.channels = channels

    def prime(self, x0: FloatArray) -> None:
        """Start settled on ``x0`` (e.g. the mean of a warm-up window)."""
        zi0 = signal.lfilter_zi(self.b, self.a)
        self._zi = zi0[:, None] * np.asarray(x0, dtype=float).reshape(1, -1)

    def __call__(self, x: FloatArray) -> FloatArray:
        if self._zi is None:
            # Start settled on the first sample so the filter does not ring in from zero.
            self.prime(x[0])
        y, self._zi = signal.lfilter(self.b, self.a, x, axis=0, zi=self._zi)
        return np.asarray(y)


def zero_phase_lowpass(x: FloatArray, cutoff_hz: float, fs_hz: float) -> FloatArray:
    """Offline (window) low-pass without delay, for refining event times."""
    if x.shape[0] <= 9:
        return x
    sos = _butter_sos(2, cutoff_hz, fs_hz)
    return np.asarray(signal.sosfiltfilt(sos, x, axis=0, padlen=min(x.shape[0] - 1, 9)))


def crossing_time(t: FloatArray, y: FloatArray, level: float, rising: bool) -> float | None:
    """First time ``y`` crosses ``level`` in the given direction, linearly interpolated."""
    above = y > level
    edges = np.flatnonzero(above[1:] & ~above[:-1]) if rising else np.flatnonzero(
        ~above[1:] & above[:-1]
    )
    if edges.size == 0:
        return None
    i = int(edges[0])
    y0, y1 = y[i], y[i + 1]
    frac = (level - y0) / (y1 - y0) if y1 != y0 else 0.0
    return float(t[i] + frac * (t[i + 1] - t[i]))


def last_crossing_time(t: FloatArray, y: FloatArray, level: float, rising: bool) -> float | None:
    """Last crossing of ``level`` in the given direction, linearly interpolated."""
    rev = crossing_time(t[::-1], y[::-1], level, not rising)
    return rev


def parabolic_peak(t: FloatArray, y: FloatArray, i: int) -> float:
    """Sub-sample time of an extremum at index ``i`` (parabola through 3 samples)."""
    if i <= 0 or i >= len(y) - 1:
        return float(t[i])
    y0, y1, y2 = y[i - 1], y[i], y[i + 1]
    den = y0 - 2 * y1 + y2
    if den == 0:
        return float(t[i])
    off = 0.5 * (y0 - y2) / den
    off = max(-0.5, min(0.5, off))
    dt = (t[i + 1] - t[i - 1]) / 2.0
    return float(t[i] + off * dt)


def row_dot(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise dot product of (n, 3) arrays, written out so that the result of every
    row is bit-identical whatever ``n`` is (reductions may change order with length)."""
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def row_norm(a: FloatArray) -> FloatArray:
    """Row-wise Euclidean norm of an (n, 3) array, bit-identical for any ``n``."""
    return np.sqrt(row_dot(a, a))


def max_gap_s(t: FloatArray) -> float:
    return float(np.max(np.diff(t))) if t.shape[0] > 1 else 0.0


def make_buffer(history_s: float, fs_hz: float, width: int) -> SlidingBuffer:
    return SlidingBuffer(int(np.ceil(history_s * fs_hz)) + 1, width)
