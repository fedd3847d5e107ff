"""Ground contact from a shoe-mounted IMU (or an accelerometer-only shoe pod).

Segmentation: the foot is nearly still in mid-stance and spins fast in swing, so a
two-threshold state on the smoothed angular-rate magnitude (mounting-invariant) splits
the stream into strides; each still period anchors one stance.

Events (Falbriard et al. 2018, foot-worn IMUs vs force plate): the most precise
features are minima of the foot's pitch angular velocity, one around initial contact
and one around terminal contact (toe-off), with precisions of 2 ms and 4 ms. The pitch
axis is the principal axis of the swing rotation (any mounting); its sign is fixed by
physics: push-off rotates the toes down, so the rate right after the still period is
negative. Initial contact is also marked by the impact, a jump in acceleration; for
accelerometer-only pods both events come from the acceleration magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.records import Side
from pipeline.stages.hysteresis import Hysteresis
from pipeline.stages.stance import Stance
from pipeline.stages.streaming import (
    CausalFilter,
    FloatArray,
    make_buffer,
    parabolic_peak,
    row_norm,
)
from sensors.model import GRAVITY_MPS2, Chunk

G = GRAVITY_MPS2


@dataclass(frozen=True, slots=True)
class ShoeConfig:
    swing_on_dps: float = 250.0  # smoothed |gyro| above this: the foot is swinging
    still_off_dps: float = 80.0  # ... below this: the foot is (nearly) still on the ground
    accel_on_g: float = 0.6  # accelerometer-only: | |acc| - g | smoothed, swing above
    accel_off_g: float = 0.25
    acc_weight_dps_per_mps2: float = 20.0  # |acc| - g weight in the still measure
    smooth_cutoff_hz: float = 8.0
    impact_frac: float = 0.25  # impact onset: curvature above this share of its peak
    ic_before_s: float = 0.18  # IC is searched this long before the still period
    ic_after_s: float = 0.03
    to_before_s: float = 0.03
    to_after_s: float = 0.22  # TO is searched this long after the still period
    min_still_s: float = 0.01
    max_gap_s: float = 0.04
    history_s: float = 4.0
    piece_s: float = 0.5


class ShoeDetector:
    def __init__(self, side: Side, fs_hz: float, has_gyro: bool, config: ShoeConfig) -> None:
        self.side = side
        self.placement = f"{side}_foot"
        self.fs_hz = fs_hz
        self.has_gyro = has_gyro
        self.config = config
        c = config
        self.buf = make_buffer(c.history_s, fs_hz, 7)  # acc xyz, gyr xyz, activity
        self._smooth = CausalFilter(c.smooth_cutoff_hz, fs_hz, 1)
        if has_gyro:
            self._hyst = Hysteresis(c.swing_on_dps, c.still_off_dps, state=1)
        else:
            self._hyst = Hysteresis(c.accel_on_g * G, c.accel_off_g * G, state=1)
        self._still_start: float | None = None
        self._pending: list[tuple[float, float]] = []
        self._last_t = float("-inf")
        self._axis: FloatArray | None = None
        self._axis_cov = np.zeros((3, 3))
        self._prev_still_end: float | None = None
        self.complete_until_s = float("-inf")

    # -- stage interface --------------------------------------------------------------
    def push(self, chunk: Chunk) -> list[Stance]:
        out: list[Stance] = []
        step = max(1, int(self.config.piece_s * self.fs_hz))
        for piece in chunk.split(step):
            out.extend(self._process(piece))
        return out

    def flush(self) -> list[Stance]:
        out: list[Stance] = []
        for seg in self._pending:
            out.extend(self._refine(*seg))
        self._pending = []
        self.complete_until_s = float("inf")
        return out

    def snapshot(self) -> dict[str, Any]:  # pragma: no cover - resume support is future work
        raise NotImplementedError("shoe detector snapshots are not supported yet")

    # -- per piece ----------------------------------------------------------------------
    def _process(self, piece: Chunk) -> list[Stance]:
        n = len(piece)
        acc = piece.acc_mps2
        # Zero-velocity style activity (Skog et al. 2010): still needs both a slow
        # rotation and a specific force close to gravity; either alone also holds for
        # moments of the swing (rotation reversing, or free-fall-like phases).
        acc_dev = np.abs(row_norm(acc) - G)
        if piece.gyr_dps is not None:
            gyr = piece.gyr_dps
            activity = row_norm(gyr) + self.config.acc_weight_dps_per_mps2 * acc_dev
        else:
            gyr = np.zeros((n, 3))
            activity = acc_dev
        smooth = self._smooth(activity[:, None])[:, 0]
        self.buf.append(piece.t_s, np.column_stack([acc, gyr, activity]))
        falls_to_still, rises_to_swing, _ = self._still_events(smooth)
        t = piece.t_s
        events = sorted([(int(i), 0) for i in falls_to_still] + [(int(i), 1) for i in rises_to_swing])
        for i, kind in events:
            if kind == 0:
                self._still_start = float(t[i])
            elif self._still_start is not None:
                if float(t[i]) - self._still_start >= self.config.min_still_s:
                    self._pending.append((self._still_start, float(t[i])))
                self._still_start = None
        self._last_t = float(t[-1])
        out: list[Stance] = []
        while self._pending and self._pending[0][1] + self.config.to_after_s <= self._last_t:
            out.extend(self._refine(*self._pending.pop(0)))
        candidates = [self._last_t]
        if self._still_start is not None:
            candidates.append(self._still_start)
        candidates.extend(s for s, _ in self._pending)
        self.complete_until_s = min(candidates) - self.config.ic_before_s
        return out

    def _still_events(self, smooth: FloatArray) -> tuple[Any, Any, Any]:
        rises, falls, state = self._hyst.update(smooth)
        return falls, rises, state

    # -- refinement ----------------------------------------------------------------------
    def _refine(self, q0: float, q1: float) -> list[Stance]:
        c = self.config
        t, x = self.buf.window_time(q0 - c.ic_before_s, q1 + c.to_after_s)
        if t.shape[0] < 5:
            return []
        if self.has_gyro:
            ic, to = self._events_gyro(t, x, q0, q1)
        else:
            ic, to = self._events_accel(t, x, q0, q1)
        if ic is None or to is None or to <= ic:
            return []
        inside = (t >= ic - 0.02) & (t <= to + 0.02)
        ti = t[inside]
        gap = float(np.max(np.diff(ti))) if ti.shape[0] > 1 else 1.0
        confidence = 1.0 if gap <= c.max_gap_s else 0.5
        m = (t >= ic - 0.01) & (t <= ic + 0.05)
        metrics = {"impact_peak_g": float(row_norm(x[m, 0:3]).max() / G)} if m.any() else {}
        self._prev_still_end = q1
        return [
            Stance(
                side=self.side,
                ic_s=ic,
                to_s=to,
                source=self.placement,
                confidence=confidence,
                metrics=metrics,
            )
        ]

    def _pitch_axis(self, t: FloatArray, x: FloatArray, q0: float, q1: float) -> FloatArray:
        """Principal swing-rotation axis, sign set so push-off is negative."""
        swing = (t < q0) | (t > q1)
        g = x[swing, 3:6]
        if g.shape[0] >= 3:
            self._axis_cov = 0.7 * self._axis_cov + 0.3 * (g.T @ g) / g.shape[0]
        w, v = np.linalg.eigh(self._axis_cov)
        axis = v[:, int(np.argmax(w))]
        if self._axis is not None and float(np.dot(axis, self._axis)) < 0:
            axis = -axis  # keep continuity; the push-off vote below decides the sign
        push = (t > q1) & (t <= q1 + 0.08)
        if push.any():
            rate = float((x[push, 3:6] @ axis).mean())
            if rate > 0:
                axis = -axis
        self._axis = axis
        return axis

    def _impact_onset(self, t: FloatArray, x: FloatArray, q0: float) -> float | None:
        """Initial contact as the onset of the impact transient.

        The swing's acceleration is smooth; the heel strike adds a sharp transient. The
        onset is the first sample whose acceleration curvature (second difference) exceeds
        ``impact_frac`` of its largest value before the still period; the contact lies
        between that sample's neighbours, so the midpoint is taken.
        """
        c = self.config
        m = (t >= q0 - c.ic_before_s) & (t <= q0 + c.ic_after_s)
        idx = np.flatnonzero(m)
        if idx.size < 4:
            return None
        a = x[idx, 0:3]
        curv = np.linalg.norm(a[2:] - 2.0 * a[1:-1] + a[:-2], axis=1)
        if curv.size == 0 or curv.max() <= 0:
            return None
        k = int(np.flatnonzero(curv > c.impact_frac * curv.max())[0])
        tt = t[idx]
        return float(0.5 * (tt[k + 1] + tt[k + 2]))

    def _events_gyro(
        self, t: FloatArray, x: FloatArray, q0: float, q1: float
    ) -> tuple[float | None, float | None]:
        c = self.config
        axis = self._pitch_axis(t, x, q0, q1)
        pitch = x[:, 3:6] @ axis
        to_m = (t >= q1 - c.to_before_s) & (t <= q1 + c.to_after_s)
        if not to_m.any():
            return None, None
        i_to = int(np.flatnonzero(to_m)[np.argmin(pitch[to_m])])
        return self._impact_onset(t, x, q0), parabolic_peak(t, pitch, i_to)

    def _events_accel(
        self, t: FloatArray, x: FloatArray, q0: float, q1: float
    ) -> tuple[float | None, float | None]:
        c = self.config
        mag = np.linalg.norm(x[:, 0:3], axis=1)
        to_m = (t >= q1 - c.to_before_s) & (t <= q1 + c.to_after_s)
        if not to_m.any():
            return None, None
        i_to = int(np.flatnonzero(to_m)[np.argmax(mag[to_m])])
        return self._impact_onset(t, x, q0), float(t[i_to])
