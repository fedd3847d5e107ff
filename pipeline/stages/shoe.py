"""Ground contact from a shoe-mounted IMU (or an accelerometer-only shoe pod).

Segmentation (zero-velocity detection, Skog et al. 2010): the foot is nearly still in
mid-stance and moves fast in swing, so a two-threshold state on a smoothed activity
measure (angular-rate magnitude plus the deviation of the specific-force magnitude
from g; both mounting-invariant) splits the stream into strides; each still period
anchors one stance. This works for running and walking alike.

Events:

* Initial contact is the onset of the impact: the swing's acceleration is smooth, the
  heel (or forefoot) strike adds a sharp transient. The onset is the first sample
  whose acceleration second difference stands out from both the noise floor and the
  transient's own size; contact happened between that sample and the one before.
* Toe-off (gyroscope) is the extreme of the foot's pitch rate at push-off (Falbriard
  et al. 2018: the minimum pitch angular velocity of the second half of the cycle,
  4 ms precision against a force plate). The pitch axis is the principal axis of the
  swing rotation (any mounting) unless given by :class:`SensorAxes`; its sign is fixed
  by physics: push-off turns the toes down, so the rate after the still period is
  negative.
* Toe-off (accelerometer only) is the peak of the specific-force magnitude as the
  foot is thrown forward and up at push-off.

Walking or running: a running foot is on the ground for less than half of its stride
(duty factor < 0.5), a walking foot for more.

Latency: the initial contact is fixed as soon as the still period starts (plus
``ic_after_s``), which lets the watermark move past it; the stance is emitted
``to_after_s`` after the still period ends.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.records import Side
from pipeline.stages.hysteresis import Hysteresis
from pipeline.stages.stance import Gait, SensorAxes, Stance
from pipeline.stages.streaming import (
    CausalFilter,
    FloatArray,
    gap_starts,
    make_buffer,
    parabolic_peak,
    row_norm,
)
from pipeline.stages.zupt import ZuptConfig, stride_displacement
from sensors.model import GRAVITY_MPS2, Chunk

G = GRAVITY_MPS2


@dataclass(frozen=True, slots=True)
class ShoeConfig:
    swing_on_dps: float = 200.0  # smoothed activity above this: the foot is swinging
    still_off_dps: float = 80.0  # ... below this: the foot is (nearly) still on the ground
    accel_on_g: float = 0.6  # accelerometer-only: | |acc| - g | smoothed, swing above
    accel_off_g: float = 0.3
    #: accelerometer only: weight of the specific-force vector's turning rate (m/s^3)
    acc_weight_dps_per_mps2: float = 20.0  # |acc| - g weight in the still measure
    smooth_cutoff_hz: float = 8.0
    #: impact onset: second difference above this share of its largest value ...
    impact_frac: float = 0.25
    #: its start: the earliest sample of that rise above this multiple of the median
    #: second difference over the search window (noise floor) ...
    impact_noise_factor: float = 8.0
    onset_frac: float = 0.02  # ... and above this share of the largest
    ic_before_s: float = 0.2  # IC is searched this long before the still period ...
    ic_after_s: float = 0.03  # ... until this long after its start
    to_before_s: float = 0.15  # TO is searched from this long before the still end ...
    to_after_s: float = 0.15  # ... until this long after it
    impact_window_s: float = 0.06  # impact peak searched this long after IC
    min_still_s: float = 0.01
    min_contact_s: float = 0.08
    max_contact_s: float = 1.5  # a longer still period is standing, not a step
    #: a gap shorter than a swing cannot hide one: the still period bridges it
    min_swing_s: float = 0.25
    walk_duty_factor: float = 0.5  # contact / stride above this: walking
    walk_contact_s: float = 0.45  # without a stride (first step): contact above this
    max_stride_s: float = 2.5
    history_s: float = 6.0
    piece_s: float = 2.0
    zupt: ZuptConfig | None = field(default_factory=ZuptConfig)  # None: no stride length


@dataclass(slots=True)
class _Still:
    """A still period and what is known of its stance so far."""

    q0: float
    q1: float | None = None
    #: the still period began at the first sample after lost data that began here
    gap_from: float | None = None
    ic: float | None = None
    ic_conf: float = 0.0
    ic_done: bool = False


class ShoeDetector:
    def __init__(
        self,
        side: Side,
        fs_hz: float,
        has_gyro: bool,
        config: ShoeConfig,
        axes: SensorAxes | None = None,
    ) -> None:
        self.side = side
        self.placement = f"{side}_foot"
        self.fs_hz = fs_hz
        self.has_gyro = has_gyro
        self.config = config
        c = config
        self.buf = make_buffer(c.history_s, fs_hz, 7 if has_gyro else 3)  # acc, gyr, |gyr|
        self._smooth = CausalFilter(c.smooth_cutoff_hz, fs_hz, 1)
        if has_gyro:
            self._hyst = Hysteresis(c.swing_on_dps, c.still_off_dps, state=1)
        else:
            self._hyst = Hysteresis(c.accel_on_g * G, c.accel_off_g * G, state=1)
        self._gap_s = 2.5 / fs_hz  # a longer interval is lost data
        self._open: _Still | None = None
        self._waiting: deque[_Still] = deque()
        self._gap_from: float | None = None
        self._last_still_end: float | None = None
        self._impact_size: float | None = None  # typical impact (second difference)
        self._last_t = float("-inf")
        left = axes.left() if axes is not None else None
        # pitch rate, toes up positive = rotation about -left (right-hand rule)
        self._fixed_axis: FloatArray | None = None if left is None else -left
        self._axis: FloatArray | None = self._fixed_axis
        self._axis_cov = np.zeros((3, 3))
        self._prev_ic: float | None = None
        self._ic_lag: float | None = None  # usual time from IC to the still period
        self._prev_still: tuple[float, float] | None = None
        self.complete_until_s = float("-inf")

    # -- stage interface --------------------------------------------------------------
    def push(self, chunk: Chunk) -> list[Stance]:
        if len(chunk) == 0:
            return []
        out: list[Stance] = []
        step = max(1, int(self.config.piece_s * self.fs_hz))
        if len(chunk) <= step:
            out.extend(self._process(chunk))
        else:
            for piece in chunk.split(step):
                out.extend(self._process(piece))
        return out

    def flush(self) -> list[Stance]:
        out: list[Stance] = []
        if self._open is not None and not self._open.ic_done:
            self._find_ic(self._open)
        while self._waiting:
            out.extend(self._finish(self._waiting.popleft()))
        self._open = None
        self.complete_until_s = float("inf")
        return out

    def snapshot(self) -> dict[str, Any]:  # pragma: no cover - resume support is future work
        raise NotImplementedError("shoe detector snapshots are not supported yet")

    # -- per piece ----------------------------------------------------------------------
    def _process(self, piece: Chunk) -> list[Stance]:
        t = piece.t_s
        acc = piece.acc_mps2
        gyr = piece.gyr_dps
        # Zero-velocity style activity (Skog et al. 2010): still needs both a slow
        # rotation and a specific force close to gravity; either alone also holds for
        # moments of the swing (rotation reversing, or free-fall-like phases).
        acc_dev = np.abs(row_norm(acc) - G)
        if self.has_gyro and gyr is not None:
            gyr_norm = row_norm(gyr)
            activity = gyr_norm + self.config.acc_weight_dps_per_mps2 * acc_dev
            self.buf.append(t, np.column_stack([acc, gyr, gyr_norm]))
        else:
            activity = acc_dev
            self.buf.append(t, acc)
        gaps = gap_starts(t, self._last_t, self._gap_s)
        if gaps.size == 0:
            self._segment(t, self._smooth(activity[:, None])[:, 0])
        else:
            # Lost data: process the runs between gaps separately (rare, so cheap).
            gapset = {int(g) for g in gaps}
            cuts = sorted({0, t.shape[0], *gapset})
            for a, b in itertools.pairwise(cuts):
                if a in gapset:
                    self._on_gap(self._last_t if a == 0 else float(t[a - 1]), float(t[a]))
                self._segment(t[a:b], self._smooth(activity[a:b, None])[:, 0])
        self._last_t = float(t[-1])
        return self._advance()

    def _on_gap(self, before_s: float, after_s: float) -> None:
        """Lost data: restart the smoothing; a long gap ends a still period."""
        self._smooth.reset()
        self._gap_from = before_s
        if after_s - before_s > self.config.min_swing_s and self._hyst.state == 0:
            # The foot may have swung in the gap: close the still period where the data
            # stopped, and look at the data after the gap afresh.
            if self._open is not None:
                self._open.q1 = before_s
                self._close(self._open)
                self._open = None
            self._hyst.state = 1

    def _segment(self, t: FloatArray, smooth: FloatArray) -> None:
        gap_from, self._gap_from = self._gap_from, None
        # kind 0: switched to still; 1: switched to swing (in order, alternating)
        for i, kind in self._hyst.switches(smooth):
            if kind == 0:
                self._open = _Still(q0=float(t[i]), gap_from=gap_from if i == 0 else None)
            elif self._open is not None:
                self._open.q1 = float(t[i])
                self._close(self._open)
                self._open = None

    def _close(self, still: _Still) -> None:
        assert still.q1 is not None
        if still.q1 - still.q0 < self.config.min_still_s:
            return
        last = self._waiting[-1].q1 if self._waiting else self._last_still_end
        if (
            last is not None
            and still.q0 - last < self.config.min_swing_s
            and still.gap_from is None
        ):
            # A swing takes longer: this is a pause of the foot's motion in mid-swing
            # (an accelerometer-only pod can read ~1 g there), not a new stance.
            return
        self._last_still_end = still.q1
        self._waiting.append(still)

    def _advance(self) -> list[Stance]:
        c = self.config
        last = self._last_t
        opened = self._open
        if opened is not None and not opened.ic_done and opened.q0 + c.ic_after_s <= last:
            self._find_ic(opened)
        out: list[Stance] = []
        while self._waiting:
            s = self._waiting[0]
            assert s.q1 is not None
            if not s.ic_done and s.q0 + c.ic_after_s <= last:
                self._find_ic(s)
            if s.q1 + c.to_after_s > last:
                break
            out.extend(self._finish(self._waiting.popleft()))
        # Watermark: no stance with an earlier IC can still come. A future still period
        # starts after the newest sample, and its IC is at most ic_before_s before that.
        marks = [last - c.ic_before_s]
        stills = [*self._waiting] if self._open is None else [*self._waiting, self._open]
        for s in stills:
            if s.ic_done and s.ic is not None:
                marks.append(s.ic)
            elif not s.ic_done:
                marks.append(s.q0 - c.ic_before_s)
        self.complete_until_s = min(marks)
        return out

    # -- events -------------------------------------------------------------------------
    def _find_ic(self, s: _Still) -> None:
        c = self.config
        s.ic_done = True
        # A still period that began right after lost data may really have begun in it:
        # then the impact is searched back from where the data stopped.
        start = (s.q0 if s.gap_from is None else s.gap_from) - c.ic_before_s
        t, x = self.buf.window_time(start, s.q0 + c.ic_after_s)
        if t.shape[0] < 5:
            return
        onset = _impact_onset(t, x[:, 0:3], c, self._gap_s)
        if onset is None:
            return
        ic, conf, size = onset
        if t[0] - start > self._gap_s and ic - t[0] < 0.03:
            conf = min(conf, 0.3)  # data before the window's first samples were lost
        # Lost data between the onset found and the still period may have hidden the
        # real impact. A transient as large as this runner's impacts is one (kept,
        # lower confidence); a smaller one is a swing feature: the contact is then put
        # where this runner's contacts usually are relative to the still period.
        dt = t[1:] - t[:-1]
        if float(dt.max()) > self._gap_s:  # rare: skip the masks on clean data
            holes = np.flatnonzero((dt > self._gap_s) & (t[1:] > ic) & (t[:-1] < s.q0))
        else:
            holes = np.zeros(0, dtype=np.intp)
        if holes.size:
            conf = 0.8
            typical = self._impact_size
            if typical is not None and size < 0.5 * typical and self._ic_lag is not None:
                conf = 0.3
                prior = s.q0 - self._ic_lag
                h = int(holes[np.argmin(np.abs(0.5 * (t[holes] + t[holes + 1]) - prior))])
                if abs(ic - prior) > 0.02:
                    ic = min(max(prior, float(t[h])), float(t[h + 1]))
        elif conf == 1.0 and s.gap_from is None:
            lag = s.q0 - ic
            self._ic_lag = lag if self._ic_lag is None else 0.8 * self._ic_lag + 0.2 * lag
            self._impact_size = (
                size if self._impact_size is None else 0.8 * self._impact_size + 0.2 * size
            )
        s.ic, s.ic_conf = ic, conf

    def _finish(self, s: _Still) -> list[Stance]:
        c = self.config
        assert s.q1 is not None
        if s.ic is None:
            return []
        # One window over the stride (from the previous still period, for the ZUPT)
        # to the end of the toe-off search; every event below is a slice of it.
        t0 = s.q0 - c.ic_before_s
        if self._prev_still is not None and s.q0 - self._prev_still[0] <= c.max_stride_s:
            t0 = min(t0, self._prev_still[0])
        t, x = self.buf.window_time(t0, s.q1 + c.to_after_s)
        # TO is searched from to_before_s before the still end, but never in the first
        # half of the still period (the foot slap after IC also turns the foot quickly)
        to_start = max(s.q1 - c.to_before_s, 0.5 * (s.q0 + s.q1))
        j0, j1, jq0, jic = np.searchsorted(t, [to_start, s.q1, s.q0, s.ic])
        if t.shape[0] - j0 < 3:
            return []
        if self.has_gyro:
            to = self._toe_off_gyro(t, x, int(jq0), int(j1), int(j0))
        else:
            to = self._toe_off_accel(t[j0:], x[j0:])
        if to is None:
            return []
        to_s, to_conf = to
        contact = to_s - s.ic
        if not (c.min_contact_s <= contact <= c.max_contact_s):
            return []
        metrics = self._impact_metrics(t, x, int(jic), s.ic)
        stride_s = None
        if self._prev_ic is not None and 0 < s.ic - self._prev_ic <= c.max_stride_s:
            stride_s = s.ic - self._prev_ic
        gait: Gait
        if stride_s is not None:
            gait = "walk" if contact / stride_s > c.walk_duty_factor else "run"
        else:
            gait = "walk" if contact > c.walk_contact_s else "run"
        if self.has_gyro and c.zupt is not None and self._prev_still is not None:
            metrics.update(self._stride_metrics(t, x, s, stride_s))
        self._prev_ic = s.ic
        self._prev_still = (s.q0, s.q1)
        return [
            Stance(
                side=self.side,
                ic_s=s.ic,
                to_s=to_s,
                source=self.placement,
                confidence=min(s.ic_conf, to_conf),
                gait=gait,
                metrics=metrics,
                ic_confidence=s.ic_conf,
                to_confidence=to_conf,
            )
        ]

    def _pitch_axis(self, t: FloatArray, x: FloatArray, jq0: int, jq1: int) -> FloatArray | None:
        """Principal swing-rotation axis, sign set so that push-off is negative.

        ``x[:jq0]`` ends with the late swing before the still period, ``x[jq1:]`` is
        the push-off and early swing after it.
        """
        if self._fixed_axis is not None:
            return self._fixed_axis
        c = self.config
        jb = int(np.searchsorted(t, float(t[jq0]) - c.ic_before_s)) if jq0 < t.shape[0] else jq0
        g = np.concatenate([x[jb:jq0, 3:6], x[jq1:, 3:6]])
        if g.shape[0] < 3:
            return self._axis
        cov = (g.T @ g) * (1.0 / g.shape[0])
        self._axis_cov = cov if self._axis is None else 0.7 * self._axis_cov + 0.3 * cov
        if self._axis is None:
            w, v = np.linalg.eigh(self._axis_cov)
            ax, ay, az = v[:, int(np.argmax(w))].tolist()
        else:
            # The axis moves little from stride to stride: a few power iterations
            # from the previous one track it at a fraction of an eigendecomposition
            # (3x3 in plain floats: numpy's per-call cost dwarfs the arithmetic).
            (c00, c01, c02), (c10, c11, c12), (c20, c21, c22) = self._axis_cov.tolist()
            ax, ay, az = self._axis.tolist()
            for _ in range(3):
                bx = c00 * ax + c01 * ay + c02 * az
                by = c10 * ax + c11 * ay + c12 * az
                bz = c20 * ax + c21 * ay + c22 * az
                n = max(math.sqrt(bx * bx + by * by + bz * bz), 1e-12)
                ax, ay, az = bx / n, by / n, bz / n
        # push-off (the first 80 ms of swing) turns the toes down
        k = max(1, int(0.08 * self.fs_hz))
        if jq1 < x.shape[0]:
            sx, sy, sz = x[jq1 : jq1 + k, 3:6].sum(axis=0).tolist()
            if sx * ax + sy * ay + sz * az > 0:
                ax, ay, az = -ax, -ay, -az
        axis = np.array([ax, ay, az])
        self._axis = axis
        return axis

    def _toe_off_gyro(
        self, t: FloatArray, x: FloatArray, jq0: int, jq1: int, j0: int
    ) -> tuple[float, float] | None:
        axis = self._pitch_axis(t, x, jq0, jq1)
        if axis is None:
            return None
        tw = t[j0:]
        pitch = x[j0:, 3:6] @ axis
        i = int(np.argmin(pitch))
        return parabolic_peak(tw, pitch, i), self._event_confidence(tw, i)

    def _toe_off_accel(self, t: FloatArray, x: FloatArray) -> tuple[float, float] | None:
        mag = row_norm(x[:, 0:3])
        i = int(np.argmax(mag))
        # a weak cue (no rotation rate): fusion prefers a trunk sensor's toe-off
        return parabolic_peak(t, mag, i), 0.5 * self._event_confidence(t, i)

    def _event_confidence(self, t: FloatArray, i: int) -> float:
        """Lower when the extreme sits next to lost data (the true one may be in it)."""
        lo, hi = max(i - 1, 0), min(i + 2, t.shape[0])
        tt = t[lo:hi].tolist()
        if hi - lo < 2 or max(b - a for a, b in itertools.pairwise(tt)) > self._gap_s:
            return 0.3
        if i == 0 or i == t.shape[0] - 1:
            return 0.5  # at the window's edge: the extreme may lie outside it
        return 1.0

    def _impact_metrics(
        self, t: FloatArray, x: FloatArray, jic: int, ic: float
    ) -> dict[str, float]:
        n = max(2, int(self.config.impact_window_s * self.fs_hz))
        seg = x[jic : jic + n, 0:3]
        if seg.shape[0] < 2:
            return {}
        mag = row_norm(seg) * (1.0 / G)
        k = int(np.argmax(mag))
        out = {"impact_peak_g": float(mag[k])}
        rise_s = float(t[jic + k]) - ic
        if rise_s > 0:
            out["loading_rate_g_per_s"] = float((mag[k] - mag[0]) / rise_s)
        return out

    def _stride_metrics(
        self, t: FloatArray, x: FloatArray, s: _Still, stride_s: float | None
    ) -> dict[str, float]:
        """Stride length and speed by zero-velocity-aided integration (ZUPT)."""
        assert self._prev_still is not None and s.q1 is not None and self.config.zupt is not None
        if stride_s is None:
            return {}
        p0, p1 = self._prev_still
        a, b, c0, c1 = (int(i) for i in np.searchsorted(t, [p0, p1, s.q0, s.q1]))
        if a >= b or c0 >= c1 or c1 > t.shape[0]:
            return {}
        if float(np.max(t[a + 1 : c1] - t[a : c1 - 1])) > self._gap_s:
            return {}  # lost data inside the stride: the integration would be wrong
        # the stillest sample of each still period is the zero-velocity instant
        t_a = float(t[a + int(np.argmin(x[a:b, 6]))])  # column 6: |gyr|
        t_b = float(t[c0 + int(np.argmin(x[c0:c1, 6]))])
        length = stride_displacement(t, x[:, 0:3], x[:, 3:6], t_a, t_b, self.config.zupt)
        if length is None:
            return {}
        return {"stride_length_m": length, "speed_mps": length / stride_s}


def _impact_onset(
    t: FloatArray, acc: FloatArray, c: ShoeConfig, gap_s: float
) -> tuple[float, float, float] | None:
    """Initial contact as the onset of the impact transient, its confidence, and the
    transient's size (largest second difference, m/s^2 per sample^2).

    The transient is found where the acceleration's second difference exceeds
    ``impact_frac`` of its largest value; its start is the earliest sample of that
    rise still above the noise floor. Contact force builds up from zero over a few
    milliseconds, so the onset is placed by extrapolating the transient's first two
    values back to zero (the tangent-intercept rule of force-platform onsets), never
    earlier than the sample before.
    """
    d2 = acc[2:] - 2.0 * acc[1:-1] + acc[:-2]
    r = row_norm(d2)
    if r.shape[0] < 2:
        return None
    dt = t[1:] - t[:-1]
    spans_gap = None
    if float(dt.max()) > gap_s:  # rare: skip the masks on clean data
        gap = dt > gap_s
        spans_gap = gap[1:] | gap[:-1]  # stencil j uses intervals j and j + 1
        r = np.where(spans_gap, 0.0, r)
    peak = float(r.max())
    if peak <= 0.0:
        return None
    strong = int(np.argmax(r > c.impact_frac * peak))
    half = r.shape[0] // 2  # the median by partition: a third of np.median's cost
    low = max(c.impact_noise_factor * float(np.partition(r, half)[half]), c.onset_frac * peak)
    quiet = np.flatnonzero(r[:strong] <= low)
    e = int(quiet[-1]) + 1 if quiet.size else 0
    # r[e] involves samples e .. e+2 and is the first to see the transient: contact
    # came between samples e+1 and e+2, and d2[e] is the transient's value at e+2.
    v1 = float(r[e])
    if e + 1 < d2.shape[0]:
        # plain floats, the same operations as row_norm: bit-identical, 20x cheaper
        (ax, ay, az), (bx, by, bz) = d2[e + 1].tolist(), d2[e].tolist()
        cx, cy, cz = ax + 2.0 * bx, ay + 2.0 * by, az + 2.0 * bz
        v2 = math.sqrt(cx * cx + cy * cy + cz * cz)
    else:
        v2 = v1
    step = float(t[e + 2] - t[e + 1])
    back = step if v2 <= v1 else min(step, v1 * step / (v2 - v1))
    conf = 1.0
    if e > 0 and spans_gap is not None and spans_gap[e - 1]:
        conf = 0.3  # the data just before was lost: the onset may lie in the gap
    return float(t[e + 2]) - back, conf, peak
