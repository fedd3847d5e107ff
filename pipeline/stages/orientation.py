"""Strapdown attitude of a trunk sensor and the window maths of the pelvis tracker.

:class:`Strapdown` integrates the gyroscope at the full sample rate and emits *rows*:
means over ``k`` consecutive samples (about 50 rows per second) of time, specific force
and raw gyro, with the sensor attitude ``R`` (frame W from sensor) at the row and the
specific force in W, ``R f``. W is an arbitrary frame fixed at the start of the stream
that slowly turns with the gyro bias; nothing downstream needs its heading, and the
gravity direction in it is found by averaging ``R f`` over whole strides
(:mod:`pipeline.stages.pelvis`, ``docs/pelvis.md``).

Why rows and not a per-sample filter loop: a Python call per sample (imufusion's
``update`` and reading its result back: 1.2-2.3 µs, ``bench/bench_pelvis.py``) costs
0.24-0.47 ms of CPU per second of a 200 Hz stream, a quarter to a half of what a
1000x-real-time pipeline has for three sensors; and a pelvis turns smoothly (under
10 Hz), so 50 attitudes a second with parabolic peak refinement lose less than 0.03° at
a drop peak. Only the rate integration runs at the sample rate, as running sums (numpy
``cumsum``):

* ``Theta = ∫ω dt`` and ``C = ½∫Theta x dTheta`` (trapezoid on the sample times, so a
  short gap is bridged with a linearly interpolated rate);
* the rotation since a block start (every ``block_rows`` rows) is the second-order
  (Bortz 1971) rotation vector ``dTheta + dC - ½ Theta_0 x dTheta``; it is linear in
  Theta and C, so a row's mean of it is the rotation at the row's mean time;
* block-start attitudes are composed exactly, one 3x3 product per block.

Against an analytic pelvis motion the rotation across any 1.4 s (the widest stride
window) is right to 0.02°, 0.05° while turning at 30°/s (``tests/test_pelvis_orientation``).

Rows never span a break in the data (an interval over ``max_gap_s``); each row carries
the index of its gap-free segment, so a caller can refuse to average across one. Every
value is a sequential running sum, a sum over the same samples in the same order, or an
element-wise function of them, so the rows are bit-identical however the stream is cut.

Also here: plain-float 3-vector helpers, the triangular-window sum from running sums, and
the peak and mean of a stance's angle rows.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.stages.streaming import FloatArray, row_dot

#: columns of a row: time, mean acc (3), mean gyro (3), specific force in W (3),
#: attitude R row-major (9), gap-free segment index
ROW_T, ROW_ACC, ROW_GYR, ROW_FW, ROW_R, ROW_SEG = (
    0,
    slice(1, 4),
    slice(4, 7),
    slice(7, 10),
    slice(10, 19),
    19,
)
ROW_WIDTH = 20


Vec = tuple[float, float, float]


# Single 3-vectors in plain floats: per stance the tracker does a few dozen of these, and
# a numpy call on a 3-vector costs more than the arithmetic itself (about 1 µs each).
def vdot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def vcross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def vadd(a: Vec, b: Vec, s: float = 1.0) -> Vec:
    """``a + s b``."""
    return (a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2])


def vscale(a: Vec, s: float) -> Vec:
    return (a[0] * s, a[1] * s, a[2] * s)


def vunit(a: Vec) -> Vec:
    return vscale(a, 1.0 / math.sqrt(vdot(a, a)))


def vreject(a: Vec, u: Vec) -> Vec:
    """The part of ``a`` across the unit vector ``u``."""
    return vadd(a, u, -vdot(a, u))


def mat_vec(r: list[float], v: Vec) -> Vec:
    """``R v`` for a row-major 3x3 ``R`` given as 9 floats."""
    return (
        r[0] * v[0] + r[1] * v[1] + r[2] * v[2],
        r[3] * v[0] + r[4] * v[1] + r[5] * v[2],
        r[6] * v[0] + r[7] * v[1] + r[8] * v[2],
    )


def mat_tvec(r: list[float], v: Vec) -> Vec:
    """``Rᵀ v`` for a row-major 3x3 ``R`` given as 9 floats."""
    return (
        r[0] * v[0] + r[3] * v[1] + r[6] * v[2],
        r[1] * v[0] + r[4] * v[1] + r[7] * v[2],
        r[2] * v[0] + r[5] * v[1] + r[8] * v[2],
    )


def rows_cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise cross product of (n, 3) arrays (element-wise, so chunk-invariant)."""
    out = np.empty(a.shape if a.ndim >= b.ndim else b.shape)
    out[..., 0] = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    out[..., 1] = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    out[..., 2] = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


def rotation_matrices(rotvec: FloatArray) -> FloatArray:
    """(n, 3, 3) Rodrigues matrices ``cos(a) I + s1 [θ]x + s2 θθᵀ`` of (n, 3) vectors.

    ``s1 = sin(a)/a``, ``s2 = (1 - cos a)/a²``: Taylor series below 0.5 rad (exact to
    1e-7, no square root or trigonometry), ``sinc`` above.
    """
    a2 = row_dot(rotvec, rotvec)
    if a2.shape[0] and float(a2.max()) < 0.25:
        s1 = 1.0 + a2 * (-1.0 / 6.0 + a2 * (1.0 / 120.0 - a2 / 5040.0))
        s2 = 0.5 + a2 * (-1.0 / 24.0 + a2 * (1.0 / 720.0 - a2 / 40320.0))
    else:
        a = np.sqrt(a2)
        half = np.sinc(a / (2.0 * math.pi))
        s1 = np.sinc(a / math.pi)
        s2 = 0.5 * half * half
    x, y, z = rotvec[:, 0] * s1, rotvec[:, 1] * s1, rotvec[:, 2] * s1
    m = (s2[:, None, None] * rotvec[:, :, None]) * rotvec[:, None, :]
    c = 1.0 - s2 * a2
    m[:, 0, 0] += c
    m[:, 1, 1] += c
    m[:, 2, 2] += c
    m[:, 0, 1] -= z
    m[:, 1, 0] += z
    m[:, 0, 2] += y
    m[:, 2, 0] -= y
    m[:, 1, 2] -= x
    m[:, 2, 1] += x
    return m


def rotation_matrix(rotvec: FloatArray) -> FloatArray:
    """One Rodrigues matrix, in plain floats (for the once-per-block compositions)."""
    x, y, z = float(rotvec[0]), float(rotvec[1]), float(rotvec[2])
    a2 = x * x + y * y + z * z
    if a2 < 1e-12:
        s1, s2 = 1.0 - a2 / 6.0, 0.5 - a2 / 24.0
    else:
        a = math.sqrt(a2)
        s1, s2 = math.sin(a) / a, (1.0 - math.cos(a)) / a2
    c = 1.0 - s2 * a2
    return np.array(
        (
            (c + s2 * x * x, s2 * x * y - s1 * z, s2 * x * z + s1 * y),
            (s2 * x * y + s1 * z, c + s2 * y * y, s2 * y * z - s1 * x),
            (s2 * x * z - s1 * y, s2 * y * z + s1 * x, c + s2 * z * z),
        )
    )


class Strapdown:
    """Rows of attitude and specific force from a gyro + accelerometer stream.

    ``push(t, acc, gyr)`` returns the rows completed so far (``ROW_*`` columns);
    ``flush()`` the last, partial one. The raw gyro is integrated: W turns with its
    bias, which the caller accounts for (over a stride window it is a small drift).
    """

    def __init__(self, row_samples: int, block_rows: int, max_gap_s: float) -> None:
        self.k = max(1, row_samples)
        self.block = max(1, block_rows)
        self.max_gap_s = max_gap_s
        self.rows_out = 0
        self.segment = 0.0
        self._t: float | None = None
        self._w = np.zeros(3)
        self._theta = np.zeros(3)  # running ∫ω dt (rad)
        self._c = np.zeros(3)  # running ½∫Theta x dTheta (rad²)
        # samples of the row in progress: t, acc, gyr, Theta, C, and whether row starts
        self._pending = np.empty((0, 14))
        # the current block's start row: its mean Theta, C and attitude
        self._theta0 = np.zeros(3)
        self._c0 = np.zeros(3)
        self._r0 = np.eye(3)

    def push(self, t_s: FloatArray, acc: FloatArray, gyr_dps: FloatArray) -> FloatArray:
        w = np.radians(gyr_dps)
        if self._t is None:
            self._t, self._w = float(t_s[0]), w[0].copy()
        dt = np.diff(np.concatenate([[self._t], t_s]))
        inc = 0.5 * (np.concatenate([self._w[None, :], w[:-1]]) + w) * dt[:, None]
        theta = np.cumsum(np.concatenate([self._theta[None, :], inc]), axis=0)
        dc = 0.5 * rows_cross(theta[:-1], inc)  # C_k = C_{k-1} + ½ Theta_{k-1} x dTheta_k
        c = np.cumsum(np.concatenate([self._c[None, :], dc]), axis=0)
        self._t, self._w = float(t_s[-1]), w[-1].copy()
        self._theta, self._c = theta[-1].copy(), c[-1].copy()
        brk = (dt > self.max_gap_s).astype(np.float64)
        if self._pending.shape[0] == 0 and self.rows_out == 0:
            brk[0] = 0.0
        samples = np.column_stack([t_s, acc, gyr_dps, theta[1:], c[1:], brk])
        return self._rows(np.concatenate([self._pending, samples]), final=False)

    def flush(self) -> FloatArray:
        return self._rows(self._pending, final=True)

    def _rows(self, s: FloatArray, final: bool) -> FloatArray:
        """Group samples into rows of k (restarting at every break) and emit full ones."""
        m = s.shape[0]
        if m == 0:
            return np.empty((0, ROW_WIDTH))
        brk = s[:, 13] > 0
        seg_start = np.maximum.accumulate(np.where(brk, np.arange(m), 0))
        pos = np.arange(m) - seg_start
        starts = np.flatnonzero((pos % self.k == 0) | brk)
        if starts.size == 0 or starts[0] != 0:
            starts = np.concatenate([[0], starts])
        ends = np.append(starts[1:], m)
        full = (ends - starts == self.k) | (ends < m) | final
        n_rows = int(np.count_nonzero(full))  # only the last row can be partial
        self._pending = s[starts[n_rows] :] if n_rows < starts.size else s[m:]
        if n_rows == 0:
            return np.empty((0, ROW_WIDTH))
        starts, counts = starts[:n_rows], (ends - starts)[:n_rows]
        means = np.add.reduceat(s[: ends[n_rows - 1], :13], starts, axis=0) / counts[:, None]
        out = np.empty((n_rows, ROW_WIDTH))
        out[:, ROW_T] = means[:, 0]
        out[:, ROW_ACC] = means[:, 1:4]
        out[:, ROW_GYR] = means[:, 4:7]
        out[:, ROW_SEG] = self.segment + np.cumsum(brk[starts])
        self.segment = float(out[-1, ROW_SEG])
        r = self._attitude(means[:, 7:10], means[:, 10:13])
        out[:, ROW_R] = r.reshape(-1, 9)
        out[:, ROW_FW] = (r @ means[:, 1:4, None])[:, :, 0]
        return out

    def _attitude(self, theta: FloatArray, c: FloatArray) -> FloatArray:
        """Attitude of each row: block-start attitude times the rotation since then."""
        n = theta.shape[0]
        theta0 = np.empty((n, 3))
        c0 = np.empty((n, 3))
        r0 = np.empty((n, 3, 3))
        prev = 0
        for s in range((-self.rows_out) % self.block, n, self.block):  # once per block
            theta0[prev:s], c0[prev:s], r0[prev:s] = self._theta0, self._c0, self._r0
            d = theta[s] - self._theta0
            rel = d + (c[s] - self._c0) - 0.5 * rows_cross(self._theta0, d)
            r = self._r0 @ rotation_matrix(rel)
            self._r0 = 1.5 * r - 0.5 * r @ r.T @ r  # stays orthonormal over hours
            self._theta0, self._c0 = theta[s].copy(), c[s].copy()
            prev = s
        theta0[prev:], c0[prev:], r0[prev:] = self._theta0, self._c0, self._r0
        self.rows_out += n
        return np.asarray(r0 @ rotation_matrices(_bortz(theta, c, theta0, c0)))


def _bortz(theta: FloatArray, c: FloatArray, theta0: FloatArray, c0: FloatArray) -> FloatArray:
    """Second-order rotation vector from the block start: d + dC - ½ Theta_0 x d."""
    d = theta - theta0
    return np.asarray(d + (c - c0) - 0.5 * rows_cross(theta0, d))


def triangle_sum(s2: FloatArray, m: int, half: float) -> Vec:
    """``Σ w_k f_k`` with triangular weights ``w_k = max(0, 1 - |k - m| / half)``.

    ``s2`` holds the twice-cumulated ``f`` (``S1[j] = Σ_{k<=j} f_k``, ``S2[j] = Σ_{k<=j}
    S1[k]``). For a whole half-width h the sum is ``(S2[m+h-1] - 2 S2[m-1] + S2[m-h-1])
    / h`` (the second difference of S2); a fractional one blends h and h + 1. Needs rows
    ``m - int(half) - 2`` to ``m + int(half)``.
    """
    h0 = int(half)
    h1 = h0 + 1
    w0, w1 = (h1 - half) / h0, (half - h0) / h1
    a, b, c, d, e = s2[(m + h0 - 1, m - h0 - 1, m + h1 - 1, m - h1 - 1, m - 1), :].tolist()
    g = vscale(e, -2.0 * (w0 + w1))
    return vadd(vadd(vadd(vadd(g, a, w0), b, w0), c, w1), d, w1)


def extremes(t: list[float], y: FloatArray, t0: float, t1: float) -> list[tuple[float, float]]:
    """(max, min) over ``[t0, t1]`` of each signal ``y[j]`` (rows of ``y``) sampled at ``t``.

    ``t[0] <= t0 < t[1]`` and ``t[-2] < t1 <= t[-1]``: the first and last rows bracket
    the interval, the others are inside it. Interior extrema are refined with a
    parabola through three rows (pelvis angles are smooth, so at 50 rows a second this
    loses < 0.03°); the ends of the interval are interpolated linearly, since a range
    often ends there (a tilt range at toe-off, for one).
    """
    f0 = (t0 - t[0]) / (t[1] - t[0])
    f1 = (t1 - t[-2]) / (t[-1] - t[-2])
    rows = y.tolist()
    out = []
    for j, row in enumerate(rows):
        inner = row[1:-1]
        total = sum(inner)
        if total - total == 0.0:  # all finite: the first maximum and minimum, as argmax
            hi_pick = inner.index(max(inner)) + 1
            lo_pick = inner.index(min(inner)) + 1
        else:  # a NaN or an infinity: numpy's argmax/argmin conventions
            hi_pick = int(y[j, 1:-1].argmax()) + 1
            lo_pick = int(y[j, 1:-1].argmin()) + 1
        ends = (row[0] + f0 * (row[1] - row[0]), row[-2] + f1 * (row[-1] - row[-2]))
        best = []
        for sign, i in ((1.0, hi_pick), (-1.0, lo_pick)):
            y0, y1, y2 = sign * row[i - 1], sign * row[i], sign * row[i + 1]
            den = y0 - 2.0 * y1 + y2
            if den < 0.0:  # refine only a concave peak
                y1 -= 0.25 * (y0 - y2) * min(max(0.5 * (y0 - y2) / den, -0.5), 0.5)
            best.append(sign * max(y1, sign * ends[0], sign * ends[1]))
        out.append((best[0], best[1]))
    return out


def trapezoid_mean(t: list[float], y: list[float], t0: float, t1: float) -> float:
    """Mean of ``y`` over ``[t0, t1]`` (rows as in :func:`extremes`), ends interpolated."""
    y0 = y[0] + (t0 - t[0]) / (t[1] - t[0]) * (y[1] - y[0])
    y1 = y[-2] + (t1 - t[-2]) / (t[-1] - t[-2]) * (y[-1] - y[-2])
    tt = [t0, *t[1:-1], t1]
    yy = [y0, *y[1:-1], y1]
    area = sum((tt[i + 1] - tt[i]) * (yy[i + 1] + yy[i]) for i in range(len(tt) - 1))
    return 0.5 * area / (t1 - t0)
