"""Pelvis angles per stance from a sacral IMU: drop, obliquity, tilt and rotation.

How (``docs/pelvis.md`` has the reasoning, the figures and the references):

* ``push``: a strapdown integration of the gyroscope gives, about 50 times a second,
  the sensor attitude ``R`` (frame W from sensor; W is fixed but of unknown heading and
  slowly turned by the gyro bias) and the specific force in W
  (:class:`~pipeline.stages.orientation.Strapdown`), kept with running sums of both in a
  bounded buffer. Still periods (standing) are detected as they end. Nothing here
  depends on the stances, so the buffer is identical however the stream is cut.
* ``enrich`` (once per stance, in release order): gravity in W from the specific force
  averaged over the last stride before the look-ahead horizon (edges in flight; a
  triangular window over two strides around mid-stance where the data reach that far,
  e.g. at the end of a recording). Over a stride the mean specific force of the trunk
  is exactly gravity (its velocity is periodic), so this 'up' has none of the
  stride-periodic error of an AHRS fed with running accelerations; it is carried from
  the window's centre to mid-stance by the drift of W (the gyro bias estimate). The pelvis frame: up
  from neutral (a standing period when there was one, else from running, see
  :meth:`PelvisTracker._neutral`), forward from the braking-then-propulsion force of
  stance, left = up x forward. Angles (Baker 2001): obliquity = elevation of the left
  axis, rotation = its heading, tilt = depression of the forward axis (+ anterior).

The tracker answers for a stance once it holds ``lookahead_s`` (0.2 s) of samples after
its toe-off, so a step is out within the 300 ms live-latency budget (issue #3). Only a
stance in the first ``resume_s`` after a data gap (the gyro chain broken, so no stride
of history) waits until ``resume_s`` after the gap.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.records import StepRecord
from pipeline.stages.orientation import (
    ROW_ACC,
    ROW_FW,
    ROW_GYR,
    ROW_R,
    ROW_SEG,
    ROW_T,
    ROW_WIDTH,
    Strapdown,
    Vec,
    extremes,
    mat_tvec,
    mat_vec,
    trapezoid_mean,
    triangle_rows,
    vadd,
    vcross,
    vdot,
    vreject,
    vscale,
    vunit,
)
from pipeline.stages.stance import Stance
from pipeline.stages.streaming import FloatArray, make_buffer
from sensors.model import GRAVITY_MPS2, Chunk

G = GRAVITY_MPS2
BoolArray = npt.NDArray[np.bool_]
# buffer columns beyond the strapdown row: running sums of the force in W (S1), of S1
# (S2) and of the attitude (SR)
_S1, _S2, _SR = (
    slice(ROW_WIDTH, ROW_WIDTH + 3),
    slice(ROW_WIDTH + 3, ROW_WIDTH + 6),
    slice(ROW_WIDTH + 6, ROW_WIDTH + 15),
)
_WIDTH = ROW_WIDTH + 15

Angles = tuple[float, float, float, float, float]


@dataclass(frozen=True, slots=True)
class PelvisConfig:
    #: samples kept; more than the stride window plus what a stalled sensor holds back
    history_s: float = 20.0
    #: samples after toe-off needed before a stance is measured (latency of the metrics)
    lookahead_s: float = 0.2
    #: after a data gap (the gyro chain broken), stances wait for this much gap-free data
    #: from the gap: their stride window cannot reach back past it
    resume_s: float = 1.2
    #: stride assumed before the first measured one, and the accepted range
    default_stride_s: float = 0.7
    min_stride_s: float = 0.4
    max_stride_s: float = 2.4
    #: an interval between samples longer than this breaks the gyro chain (a shorter one
    #: is bridged with a linearly interpolated rate; longer bridges inside a stance cost
    #: 0.3-1.4° mean error in validation, so such a stance gets no angles)
    max_bridge_s: float = 0.03
    #: stances in a sharper bend than this get no angles (see ``_measure``): at 3.3 m/s
    #: the apparent vertical leans 1.7° at 5°/s (a 400 m track's bends: 2°/s)
    max_turn_dps: float = 5.0
    #: attitude rows per second (sample means; angle peaks are refined by parabola)
    row_rate_hz: float = 50.0
    #: the strapdown composes exact rotations once per block
    block_s: float = 0.25
    #: still (standing) when |gyro| < still_gyr_dps and | |acc| - g | < still_acc_mps2 ...
    still_gyr_dps: float = 6.0
    still_acc_mps2: float = 0.8
    #: ... for at least this long; the last standing_avg_s of it (less a guard before the
    #: first movement) give the neutral attitude and the gyro bias
    standing_min_s: float = 1.5
    standing_avg_s: float = 3.0
    standing_guard_s: float = 0.2
    #: per-step memory of the forward axis and of the running neutral; weight of one
    #: step in the running estimate of the gyro bias across gravity
    forward_decay: float = 0.98
    neutral_decay: float = 0.995
    bias_gain: float = 0.02


@dataclass(frozen=True, slots=True)
class Standing:
    """A still period: when it ended, its mean 'up' (unit, sensor frame), mean gyro."""

    t_end_s: float
    up: Vec
    gyr_rad_s: Vec


@dataclass(slots=True)
class PelvisState:
    """What ``enrich`` carries from step to step (all bounded)."""

    forward_sum: Vec = (0.0, 0.0, 0.0)
    ic_sum: Vec = (0.0, 0.0, 0.0)
    mean_sum: Vec = (0.0, 0.0, 0.0)
    #: gyro bias (rad/s, sensor frame): a standing period's mean, then kept up to date
    #: across gravity from step to step
    bias: Vec = (0.0, 0.0, 0.0)
    standing_seen: float = float("-inf")
    stride_s: float = 0.0
    stride_odd: int = 0
    gait: str = "run"
    gait_since_s: float = float("-inf")
    gait_new_s: float | None = None
    last_ref_t_s: float = float("nan")
    last_up_w: Vec = (0.0, 0.0, 1.0)
    last_seg: float = -1.0


class PelvisTracker:
    """Pelvis angles for every stance, from the pelvis sensor's gyro + accelerometer."""

    def __init__(self, fs_hz: float, config: PelvisConfig | None = None) -> None:
        self.config = config or PelvisConfig()
        c = self.config
        self.fs_hz = fs_hz
        k = max(1, round(fs_hz / c.row_rate_hz))
        self.row_rate_hz = fs_hz / k
        # A row is the mean of k samples, which flattens a peak by y'' d² (k² - 1) / 24;
        # adding back that share of the second difference restores it (exact for a
        # parabola; without it a 7° drop reads 0.06° low at 200 Hz).
        self._sharpen = (k * k - 1) / (24.0 * k * k)
        self._sharpen_mats: dict[int, FloatArray] = {}
        self._max_turn = math.radians(c.max_turn_dps)
        self.buf = make_buffer(c.history_s, self.row_rate_hz, _WIDTH)
        self._strapdown = Strapdown(k, max(1, round(c.block_s * self.row_rate_hz)), c.max_bridge_s)
        self._piece = max(1, int(fs_hz))  # append in pieces (buffer capacity)
        self._sums = np.zeros(15)  # running S1, S2, SR
        # still-period detection (push side, on rows)
        self._still_start: float | None = None
        self._still_last: float | None = None
        self._last_t: float | None = None
        self._was_still = False
        self._flips = 0
        self.standings: deque[Standing] = deque(maxlen=8)
        # first row after each recent data gap (not a still/moving change), and the
        # strapdown's segment number of the last row
        self._gap_starts: deque[float] = deque(maxlen=64)
        self._raw_seg: float | None = None
        self.state = PelvisState(stride_s=c.default_stride_s)
        self.complete_until_s = float("-inf")
        self.measured = 0
        self.skipped = 0
        #: why stances got no pelvis angles (gap in stance, no clean stride, ...)
        self.skip_reasons: dict[str, int] = {}
        #: the last stance's angle traces (time, obliquity, tilt, rotation), for inspection
        self.last_traces: tuple[FloatArray, ...] = ()

    # -- stream side ---------------------------------------------------------------------
    def push(self, chunk: Chunk) -> None:
        if chunk.gyr_dps is None or len(chunk) == 0:
            return
        t, acc, gyr, p = chunk.t_s, chunk.acc_mps2, chunk.gyr_dps, self._piece
        for i in range(0, t.shape[0], p):  # pieces of at most p samples (views)
            self._append(self._strapdown.push(t[i : i + p], acc[i : i + p], gyr[i : i + p]))
        last = float(chunk.t_s[-1])
        self.complete_until_s = last - self.config.lookahead_s
        if self._gap_starts and last < self._gap_starts[-1] + self.config.resume_s:
            self.complete_until_s = min(self.complete_until_s, self._gap_starts[-1])

    def flush(self) -> None:
        self._append(self._strapdown.flush())
        self._close_still()
        self.complete_until_s = float("inf")

    def _append(self, rows: FloatArray) -> None:
        n = rows.shape[0]
        if not n:
            return
        c = self.config
        # |acc| and |gyro| of every row in one pass (the same sums as row_norm)
        sq = rows[:, 1:7] * rows[:, 1:7]
        norms = sq[:, 0::3] + sq[:, 1::3]
        norms += sq[:, 2::3]
        np.sqrt(norms, out=norms)
        norms[:, 0] -= G
        np.abs(norms[:, 0], out=norms[:, 0])
        still = (norms[:, 1] < c.still_gyr_dps) & (norms[:, 0] < c.still_acc_mps2)
        # Standing and moving rows never share a segment, so no stride window averages
        # across the start or the end of running (the mean force there is not gravity).
        raw = rows[:, ROW_SEG]
        prev = raw[0] if self._raw_seg is None else self._raw_seg
        last = raw[-1]
        if prev != last:  # segment numbers only grow
            new = np.flatnonzero(raw != np.concatenate(([prev], raw[:-1])))
            if new.size:
                self._gap_starts.append(float(rows[new[-1], ROW_T]))
        self._raw_seg = float(last)
        changed = np.empty(n, dtype=np.int64)
        changed[0] = still[0] != self._was_still
        np.not_equal(still[1:], still[:-1], out=changed[1:])
        flips = np.add.accumulate(changed)
        rows[:, ROW_SEG] += self._flips + flips
        self._flips += int(flips[-1])
        self._was_still = bool(still[-1])
        # running sums, sequential (cumsum) so every row is the same however it is cut
        out = np.empty((n, _WIDTH))
        out[:, :ROW_WIDTH] = rows
        out[:, _S1] = rows[:, ROW_FW]
        out[0, _S1] += self._sums[0:3]
        np.add.accumulate(out[:, _S1], axis=0, out=out[:, _S1])
        out[:, _S2] = out[:, _S1]
        out[:, _SR] = rows[:, ROW_R]
        tail = out[:, ROW_WIDTH + 3 :]
        tail[0] += self._sums[3:]
        np.add.accumulate(tail, axis=0, out=tail)
        self._sums = out[-1, ROW_WIDTH:].copy()
        self.buf.append(rows[:, ROW_T], out)
        self._track_still(rows[:, ROW_T], still)

    def _track_still(self, t: FloatArray, still: BoolArray) -> None:
        """Runs of still rows (no gap over 0.5 s inside) become standing periods."""
        prev = self._last_t if self._last_t is not None else float(t[0])
        self._last_t = float(t[-1])
        if self._still_start is None and not still.any():
            return  # nothing still: no run starts or goes on here
        gap = np.empty(t.shape[0], dtype=bool)
        gap[0] = t[0] - prev > 0.5
        np.greater(t[1:] - t[:-1], 0.5, out=gap[1:])
        k, n = 0, t.shape[0]
        while k < n:
            if self._still_start is None:
                idx = np.flatnonzero(still[k:])
                if idx.size == 0:
                    return
                k += int(idx[0])
                self._still_start = self._still_last = float(t[k])
                k += 1
                continue
            stop = np.flatnonzero(~still[k:] | gap[k:])
            if stop.size == 0:
                self._still_last = float(t[-1])
                return
            j = k + int(stop[0])
            if j > k:
                self._still_last = float(t[j - 1])
            self._close_still()
            k = j if still[j] else j + 1  # a still row after a gap starts a new run

    def _close_still(self) -> None:
        c = self.config
        t0, t1 = self._still_start, self._still_last
        self._still_start = self._still_last = None
        if t0 is None or t1 is None or t1 - t0 < c.standing_min_s:
            return
        end = t1 - c.standing_guard_s
        t, x = self.buf.window_time(max(t0, end - c.standing_avg_s), end)
        if t.shape[0] < 2:
            return
        a0, a1, a2 = x[:, ROW_ACC].mean(axis=0).tolist()
        w0, w1, w2 = np.radians(x[:, ROW_GYR].mean(axis=0)).tolist()
        self.standings.append(Standing(float(t1), vunit((a0, a1, a2)), (w0, w1, w2)))

    # -- per stance -----------------------------------------------------------------------
    def enrich(self, stance: Stance, rec: StepRecord) -> None:
        m = self._measure(stance, rec)
        if isinstance(m, str):
            self.skipped += 1
            self.skip_reasons[m] = self.skip_reasons.get(m, 0) + 1
            return
        self.measured += 1
        (
            rec.pelvic_drop_deg,
            rec.pelvic_obliquity_range_deg,
            rec.pelvic_tilt_range_deg,
            rec.pelvic_tilt_change_deg,
            rec.pelvic_rotation_range_deg,
        ) = m

    def _stride(self, rec: StepRecord) -> float:
        """Stride time for the window: the step's own, unless it looks like a miscount.

        A missed or spurious contact makes one stride look 40 % short or long, and a
        window of the wrong length averages a partial stride (degrees of error). A real
        change of cadence shows in the step time too, so a stride that agrees with twice
        the step time is believed at once; one that does not, and is far from the last,
        only when three in a row say so.
        """
        c = self.config
        st = self.state
        stride = None if rec.stride_ms is None else rec.stride_ms / 1000.0
        step = None if rec.step_ms is None else rec.step_ms / 1000.0
        if stride is None or not c.min_stride_s <= stride <= c.max_stride_s:
            if step is None or not c.min_stride_s <= 2.0 * step <= c.max_stride_s:
                return st.stride_s
            stride = 2.0 * step
        consistent = step is not None and abs(2.0 * step / stride - 1.0) <= 0.15
        if consistent or abs(stride / st.stride_s - 1.0) <= 0.2 or st.stride_odd >= 2:
            st.stride_s, st.stride_odd = stride, 0
        else:
            st.stride_odd += 1
        return st.stride_s

    def _measure(self, stance: Stance, rec: StepRecord) -> Angles | str:
        """The five angles of a stance, or why there are none."""
        c = self.config
        st = self.state
        ic, to = stance.ic_s, stance.to_s
        stride = self._stride(rec)
        mid = 0.5 * (ic + to)
        # A window must not average across a change between running and walking, with
        # its change of speed: the mean force there is not gravity. A change counts once
        # two stances in a row carry the new label (a single odd label is a detector's
        # hesitation, and costs only its own stance); half a stride more is left out, as
        # a detector names the new gait a step or so late.
        if rec.gait != st.gait:
            if st.gait_new_s is None:
                st.gait_new_s = ic
                return "change of gait"
            st.gait, st.gait_since_s = rec.gait, st.gait_new_s
        st.gait_new_s = None
        if mid - 1.5 * stride < st.gait_since_s:
            return "change of gait"
        # Only rows up to this horizon are sure to be here whenever the stance is
        # released (the watermark guarantees lookahead_s of samples after toe-off, less
        # the samples of a row still being filled): looking further would make the
        # result depend on how the stream was cut.
        horizon = to + c.lookahead_s - 2.0 / self.row_rate_hz
        t, x = self.buf.t, self.buf.x
        # a stance soon after a data gap was held back until resume_s after the gap
        # (only a gap start less than resume_s before the horizon can move it: the last
        # one is the newest, so most stances skip the look-up)
        gaps = self._gap_starts
        if gaps and gaps[-1] + c.resume_s + 1.0 > to + c.lookahead_s:
            a = int(t.searchsorted(ic))
            if 0 < a < t.shape[0]:
                t_seg = float(t[int(x[:, ROW_SEG].searchsorted(x[a, ROW_SEG]))])
                if t_seg in gaps:
                    horizon = max(horizon, t_seg + c.resume_s - 2.0 / self.row_rate_hz)
        n = int(t.searchsorted(horizon, side="right"))
        t, x = t[:n], x[:n]
        lo = int(t.searchsorted(ic, side="right"))  # t[lo - 1] <= ic < t[lo]
        hi, ref = (int(i) for i in t.searchsorted((to, mid)))  # t[hi - 1] < to <= t[hi]
        ref = min(ref, n - 1)
        if lo < 2 or hi + 1 >= n:
            return "stance at the edge of the data"
        if x[lo - 2, ROW_SEG] != x[hi + 1, ROW_SEG]:
            return "data gap in the stance"  # its attitude cannot be followed
        if hi - lo < 2:
            return "stance shorter than three rows"
        window = self._window(t, x, lo, ic, to, mid, ref, stride)
        if isinstance(window, str):
            return window
        g, r_mean, ta, span, t_win = window
        if ta < st.gait_since_s + 0.5 * stride:
            return "change of gait"  # the (trailing) window reaches back to the change
        up = up_win = vunit(g)  # gravity direction in W at the window's centre t_win
        ia, ib = (int(i) for i in t.searchsorted((ta, ta + span)))
        ia, ib = min(max(ia, 1), n - 1), min(max(ib, 1), n - 1)
        # the rows needed below, in one look-up: around both ends of the window (heading
        # trend), mid-stance (reference) and around initial contact
        picked = x[(ia - 1, ia, ib - 1, ib, ref, lo - 1, lo), :ROW_WIDTH].tolist()
        rows_r = [row[ROW_R] for row in picked]
        if abs(self._turn_rate([rows_r[1], rows_r[3]], up, span)) > self._max_turn:
            # In a bend the mean force includes the centripetal acceleration: 'up' is
            # the apparent vertical, which a runner leans to only once the bend is
            # steady. Such stances are left out before they can bend any running average.
            return "sharp turn"
        r_ref, r_a, r_b = rows_r[4:]
        t_ref = picked[4][ROW_T]
        standing = self._standing_before(ic)
        if standing is not None and standing.t_end_s > st.standing_seen:
            st.bias = standing.gyr_rad_s
            st.standing_seen = standing.t_end_s
        # The window ends before the look-ahead horizon, so its centre t_win lies up to
        # a stride before mid-stance: carry 'up' over by the drift of W (the gyro bias
        # known so far) from t_win to t_ref.
        up = vunit(vadd(up, vcross(mat_vec(r_ref, st.bias), up), t_ref - t_win))
        self._update_bias(t_ref, picked[4][ROW_SEG], up, r_ref)
        # W turns at drift = R bias relative to the world: within the stance 'up' in W
        # moves by drift x up x (t - t_ref) (first order; < 0.01° at 1°/s)
        drift_up = vcross(mat_vec(r_ref, st.bias), up)
        # forward: horizontal force correlated with braking-then-propulsion (in W)
        u = (t[lo:hi] - ic) * (2.0 * math.pi / (to - ic))
        f0, f1, f2 = (-(np.sin(u, out=u) @ x[lo:hi, ROW_FW])).tolist()
        cue = mat_tvec(r_ref, vreject((f0, f1, f2), up))
        st.forward_sum = vadd(cue, st.forward_sum, c.forward_decay)
        # 'up' in the sensor frame at initial contact, between the rows around it
        frac = (ic - picked[5][ROW_T]) / (picked[6][ROW_T] - picked[5][ROW_T])
        r_ic = [p + frac * (q - p) for p, q in zip(r_a, r_b, strict=True)]
        up_ic = mat_tvec(r_ic, vadd(up, drift_up, ic - t_ref))
        up_n = self._neutral(standing, up_ic, mat_tvec(r_mean, up_win))
        if up_n is None:
            return "no forward direction yet"
        fwd = vunit(vreject(st.forward_sum, up_n))
        left = vcross(up_n, fwd)
        # Body axes carried into W by the attitude, against 'up' (and the horizontal
        # axes of W) at their own time: six bilinear forms v·(R a) of each row's R, one
        # matrix product. The heading one stride (or two) apart, at the same phase, gives
        # its trend (the vertical gyro bias, turning); rotation is measured against it.
        e1 = vunit(vreject(mat_vec(r_ref, left), up))  # the left axis at t_ref, level
        e2 = vcross(up, e1)
        # (9, 6): v_i a_j (the tilt's forward axis negated: its sign is folded in here)
        back = vscale(fwd, -1.0)
        vs = np.array((up, drift_up, e1, e2, up, drift_up))
        axes = np.array((left, left, left, left, back, back))
        k = (vs[:, :, None] * axes[:, None, :]).reshape(6, 9).T
        # The heading trend from four rows, in plain floats: atan2(e2·R left, e1·R left)
        h = []
        for r in rows_r[:4]:
            rl = mat_vec(r, left)
            h.append(math.atan2(vdot(e2, rl), vdot(e1, rl)))
        tt = [row[ROW_T] for row in picked[:4]]
        h_a = h[0] + (ta - tt[0]) / (tt[1] - tt[0]) * (h[1] - h[0])
        h_b = h[2] + (ta + span - tt[2]) / (tt[3] - tt[2]) * (h[3] - h[2])
        q = (x[lo - 2 : hi + 2, ROW_R] @ k).T  # (6, m)
        ts = t[lo - 2 : hi + 2]
        ds = ts - t_ref
        raw = np.empty((3, ds.shape[0]))
        sin_obl, sin_tilt = raw[0], raw[1]
        np.multiply(q[1], ds, out=sin_obl)
        sin_obl += q[0]
        np.multiply(q[5], ds, out=sin_tilt)
        sin_tilt += q[4]
        cos_obl = sin_obl * sin_obl
        np.subtract(1.0, cos_obl, out=cos_obl)
        np.sqrt(cos_obl, out=cos_obl)
        sin_tilt /= cos_obl
        both = raw[:2]
        np.maximum(both, -1.0, out=both)
        np.minimum(both, 1.0, out=both)
        np.arcsin(both, out=both)
        # heading relative to this stance's own left axis: far from ±180°, no unwrapping
        np.arctan2(q[3], q[2], out=raw[2])
        raw[2] -= (h_b - h_a) / span * ds
        angles = raw @ self._sharpen_matrix(raw.shape[1])  # degrees, rows sharpened
        t_rows = ts[1:-1].tolist()
        (obl_hi, obl_lo), (tilt_hi, tilt_lo), (rot_hi, rot_lo) = extremes(t_rows, angles, ic, to)
        self.last_traces = (ts[1:-1], angles[0], angles[1], angles[2])
        return (
            obl_hi if stance.side == "left" else -obl_lo,
            obl_hi - obl_lo,
            tilt_hi - tilt_lo,
            trapezoid_mean(t_rows, angles[1].tolist(), ic, to),
            rot_hi - rot_lo,
        )

    def _sharpen_matrix(self, m: int) -> FloatArray:
        """(m, m - 2): radians of m rows to degrees of the inner m - 2, sharpened
        (``y - sharpen (y[+1] - 2 y + y[-1])``), one matrix product per stance."""
        mat = self._sharpen_mats.get(m)
        if mat is None:
            s = self._sharpen
            mat = np.zeros((m, m - 2))
            j = np.arange(m - 2)
            mat[j + 1, j] = 1.0 + 2.0 * s
            mat[j, j] = mat[j + 2, j] = -s
            mat *= 180.0 / math.pi
            if len(self._sharpen_mats) < 256:
                self._sharpen_mats[m] = mat
        return mat

    def _window(
        self,
        t: FloatArray,
        x: FloatArray,
        lo: int,
        ic: float,
        to: float,
        mid: float,
        m: int,
        stride: float,
    ) -> tuple[Vec, list[float], float, float, float] | str:
        """Gravity sum in W, mean attitude, start, span and centre of the stride window.

        The window must avoid data gaps and standing. Preferred: a triangular window
        over two strides centred on mid-stance (row ``m``). Its spectrum, sinc², is zero
        at the stride frequency and every harmonic, so no stride-periodic acceleration
        leaks into the mean; being symmetric it cancels a gyro bias to first order; and
        it is the second difference of the twice-summed force, three lookups per width
        (two widths blended for a fractional number of rows). Where a gap or the end of
        the data is in the way: one stride, rectangular, inside the gap-free stretch
        around the stance, with its edges in flight (a trunk reads no force in flight,
        so an error in the stride length costs nothing there).
        """
        n = t.shape[0]
        half = stride * self.row_rate_hz  # rows
        h0 = int(half)
        if m - h0 - 2 >= 0 and m + h0 + 1 < n:
            # every row the triangle needs, in one look-up: its ends (segment check),
            # the twice-summed force (triangle_sum's rows) and the attitude sums
            rows = x[[m - h0 - 2, m + h0 + 1, m + h0 - 1, m - h0 - 1, m + h0, m - 1, m]].tolist()
            if rows[0][ROW_SEG] == rows[1][ROW_SEG]:
                s2 = [r[_S2] for r in rows]
                g = triangle_rows(s2[2], s2[3], s2[4], s2[5], s2[0], half)
                ra, rb = rows[4][_SR], rows[3][_SR]
                r_mean = [(p - q) / (2 * h0 + 1) for p, q in zip(ra, rb, strict=True)]
                tm = rows[6][ROW_T]
                return g, r_mean, tm - stride, 2.0 * stride, tm
        seg = x[:, ROW_SEG]
        # one stride inside the gap-free stretch that holds the stance
        here = x[lo, ROW_SEG]
        a = int(seg.searchsorted(here, side="left"))
        b = int(seg.searchsorted(here, side="right"))
        g0, g1 = float(t[a]), float(t[b - 1])
        if g1 - g0 < stride:
            return "less than a stride without a gap around the stance"
        step = 0.5 * stride
        flight = max(0.0, step - (to - ic))
        start = None
        for s0 in (ic - 0.5 * flight - step, ic - 0.5 * flight):
            if g0 <= s0 and s0 + stride <= g1:
                start = s0
                break
        if start is None:
            start = min(max(mid - 0.5 * stride, g0), g1 - stride)
        i, j = (int(k) for k in t.searchsorted((start, start + stride)))
        i = max(i, 1)
        (fa, ra), (fb, rb) = ((r[0:3], r[6:15]) for r in x[[j - 1, i - 1], _S1.start :].tolist())
        r_mean = [(p - q) / (j - i) for p, q in zip(ra, rb, strict=True)]
        return vadd(fa, fb, -1.0), r_mean, start, stride, start + 0.5 * stride

    def _neutral(self, standing: Standing | None, up_ic: Vec, mean_up: Vec) -> Vec | None:
        """Neutral 'up' in the sensor frame (None before any forward direction is known).

        A standing period defines it when there was one. Without one, neither absolute
        tilt nor absolute obliquity is observable, so neutral is defined from running:
        sagittal = the mean attitude over the stride (insensitive to event timing);
        frontal = the mean attitude at initial contact of both feet, when the pelvis
        passes from one side's drop to the other's (the stride mean would move with any
        left/right asymmetry of the drop, the very thing measured).
        """
        c = self.config
        st = self.state
        st.ic_sum = vadd(up_ic, st.ic_sum, c.neutral_decay)
        st.mean_sum = vadd(mean_up, st.mean_sum, c.neutral_decay)
        if standing is not None:
            up = standing.up
        else:
            s = vunit(st.mean_sum)
            side = vcross(s, st.forward_sum)
            if vdot(side, side) == 0.0:
                return None
            side = vunit(side)
            up = vunit(vadd(s, side, vdot(vadd(vunit(st.ic_sum), s, -1.0), side)))
        fwd = vreject(st.forward_sum, up)
        return None if vdot(fwd, fwd) == 0.0 else up

    @staticmethod
    def _turn_rate(rows: list[list[float]], up: Vec, span: float) -> float:
        """Mean heading rate (rad/s) between two attitude rows ``span`` seconds apart:
        how far a sensor-fixed direction, level at the first, turned about 'up'."""
        r_a, r_b = rows
        h = vreject((1.0, 0.0, 0.0) if abs(up[0]) < 0.9 else (0.0, 1.0, 0.0), up)
        h1 = vreject(mat_vec(r_b, mat_tvec(r_a, h)), up)
        return math.atan2(vdot(vcross(h, h1), up), vdot(h, h1)) / span

    def _standing_before(self, t_s: float) -> Standing | None:
        for s in reversed(self.standings):
            if s.t_end_s <= t_s:
                return s
        return None

    def _update_bias(self, t_ref: float, seg: float, up: Vec, r_ref: list[float]) -> None:
        """Keep the gyro bias up to date from step to step.

        W turns with the bias, so 'up' found in W drifts from one stance to the next
        (unless a data gap broke the chain in between): the drift rate is the bias
        across gravity. A bias about the vertical only turns the heading, whose trend is
        removed per stride anyway, so that part is kept as it was. A leaky average over
        steps keeps the estimate quiet.
        """
        st = self.state
        prev_t, prev_up, prev_seg = st.last_ref_t_s, st.last_up_w, st.last_seg
        st.last_ref_t_s, st.last_up_w, st.last_seg = t_ref, up, seg
        if not (prev_seg == seg and 0.0 < t_ref - prev_t < 2 * self.config.max_stride_s):
            return
        miss = vscale(mat_tvec(r_ref, vcross(prev_up, up)), 1.0 / (t_ref - prev_t))
        across = vreject(st.bias, mat_tvec(r_ref, up))
        st.bias = vadd(st.bias, vadd(miss, across, -1.0), self.config.bias_gain)
