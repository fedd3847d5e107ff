"""Ground contact and side from a trunk sensor: pelvis (sacrum / belt clip) or chest.

Segmentation: a foot contact pushes the trunk up, so every step is a hump of the
vertical specific force above 1 g (a two-threshold state on its causally smoothed
value). Each hump is then refined on a zero-phase filtered window:

* **Running** (a flight phase: the force falls to ~0 g next to the hump; spring-mass
  model, Blickhan 1989): the stance is a half sine. Its start and end are where the
  force crosses half the hump's height, extrapolated to the foot of the half sine
  (``u = asin(h/A)/pi`` of the contact time before/after the crossings). When lost
  data hides one edge, the visible edge and the recent contact time place the stance.
* **Walking** (no flight): initial contact is the steepest rise of the vertical force
  into the weight-acceptance peak (the trunk's response to heel strike, cf. McCamley
  et al. 2012 / Zijlstra & Hof 2003, who locate it on the same rise via integrated
  vertical or forward acceleration). Toe-off of the trailing foot is not a sharp
  trunk event; it is taken as the dip of the vertical force that follows the *next*
  step's weight acceptance (end of double support), so walking stances come out one
  step later.

Any mounting: "up" is the low-passed specific force (gravity) unless given by
:class:`SensorAxes`; "forward" is the horizontal direction that correlates with
braking-then-propulsion during stance; "left" = up x forward. Side: during a left
stance the trunk is pushed to the right (towards the midline), and sides alternate;
a leaky vote over steps combines both so that one noisy step cannot swap the sides.

Per-step metrics: vertical oscillation (double integration of the vertical
acceleration over the step cycle ending at this toe-off, mean removed: periodic
motion), impact peak and loading rate of the vertical force after contact.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.records import Side
from pipeline.stages.hysteresis import Hysteresis
from pipeline.stages.stance import Gait, SensorAxes, Stance
from pipeline.stages.streaming import (
    CausalFilter,
    FloatArray,
    col_mean,
    gap_starts,
    make_buffer,
    row_dot,
    row_norm,
    zero_phase_lowpass,
)
from sensors.model import GRAVITY_MPS2, Chunk

G = GRAVITY_MPS2


@dataclass(frozen=True, slots=True)
class TrunkConfig:
    warmup_s: float = 2.0  # samples averaged to start the gravity estimate
    gravity_tau_s: float = 2.0  # time constant of the gravity (up) estimate
    segment_cutoff_hz: float = 6.0  # causal smoothing used only to find contact humps
    refine_cutoff_hz: float = 12.0  # zero-phase smoothing used to time running IC/TO
    walk_cutoff_hz: float = 6.0  # zero-phase smoothing used to time walking IC/TO
    contact_on_g: float = 1.05  # hump starts when smoothed vertical force exceeds this
    contact_off_g: float = 0.95  # ... and ends below this
    min_peak_g: float = 1.08  # humps lower than this are not steps
    flight_g: float = 0.4  # force this low next to a hump: flight, i.e. running
    min_contact_s: float = 0.08
    max_contact_s: float = 1.5
    max_hump_s: float = 0.8  # a hump open longer than this is not a step
    level_frac: float = 0.5  # crossing level as a fraction of the hump height
    margin_s: float = 0.12  # window after a hump used for refinement
    #: the earliest IC of a hump, this long before its start (bounds the watermark)
    ic_back_s: float = 0.1
    walk_double_support: float = 0.2  # walking TO: this share of a step after next IC
    max_gap_s: float = 0.03  # lost data longer than this is a gap
    max_step_s: float = 1.5  # longer: a pause; the side vote restarts
    side_vote_decay: float = 0.85
    impact_window_s: float = 0.06
    history_s: float = 6.0
    piece_s: float = 2.0


@dataclass(slots=True)
class _Hump:
    s0: float
    s1: float = math.nan
    cut_start: bool = False  # began right after lost data: its rise may be hidden
    cut_end: bool = False  # ended where data were lost: its fall may be hidden


@dataclass(slots=True)
class _Raw:
    """A running stance before side and metrics (it may still merge with the next)."""

    ic: float
    to: float
    ic_conf: float
    to_conf: float


@dataclass(slots=True)
class _Walk:
    """A walking stance waiting for the next step to place its toe-off."""

    ic: float
    peak_t: float
    ic_conf: float


class TrunkDetector:
    """Stances (with side) from a pelvis or chest accelerometer (+ gyro if present)."""

    def __init__(
        self,
        placement: str,
        fs_hz: float,
        has_gyro: bool,
        config: TrunkConfig,
        axes: SensorAxes | None = None,
    ) -> None:
        self.placement = placement
        self.fs_hz = fs_hz
        self.has_gyro = has_gyro
        self.config = config
        c = config
        # columns: acc xyz, up-unit xyz, vertical force
        self.buf = make_buffer(c.history_s, fs_hz, 7)
        self._fixed_up = axes.unit("up") if axes is not None else None
        self._fixed_fwd = axes.unit("forward") if axes is not None else None
        self._up = CausalFilter(1.0 / (2 * math.pi * c.gravity_tau_s), fs_hz, 3, order=1)
        self._smooth = CausalFilter(c.segment_cutoff_hz, fs_hz, 1)
        self._hyst = Hysteresis(c.contact_on_g * G, c.contact_off_g * G)
        self._gap_s = max(c.max_gap_s, 2.5 / fs_hz)
        self._warm: list[Chunk] = []
        self._warm_n = 0
        self._primed = False
        self._open: _Hump | None = None
        self._pending: deque[_Hump] = deque()
        self._cut: _Raw | None = None  # stance of a hump that ended in a gap
        self._after_gap = False
        self._walk: _Walk | None = None
        self._last_t = float("-inf")
        self.complete_until_s = float("-inf")
        # recent step shape, for stances with a hidden edge
        self._contact_s = 0.25
        self._walk_contact_s = 0.65
        self._peak = 2.5 * G
        self._last_to: float | None = None
        # side machinery
        self._forward = (0.0, 0.0, 0.0)
        self._vote = 0.0
        self._parity = 0
        self._last_ic: float | None = None
        self._step_s = 0.35
        self.stances = 0

    # -- stage interface --------------------------------------------------------------
    def push(self, chunk: Chunk) -> list[Stance]:
        if len(chunk) == 0:
            return []
        if not self._primed:
            self._warm.append(chunk)
            self._warm_n += len(chunk)
            if self._warm_n < self.config.warmup_s * self.fs_hz:
                return []
            chunk = self._prime()
        out: list[Stance] = []
        step = max(1, int(self.config.piece_s * self.fs_hz))
        if len(chunk) <= step:
            out.extend(self._process(chunk))
        else:
            for piece in chunk.split(step):
                out.extend(self._process(piece))
        return out

    def _prime(self) -> Chunk:
        """Start the gravity estimate from the warm-up mean, not from one sample."""
        chunk = Chunk.concat(self._warm)
        self._warm = []
        # exactly the first warm-up samples, however many the held chunks contain
        n = max(1, int(self.config.warmup_s * self.fs_hz))
        self._up.prime(col_mean(chunk.acc_mps2[:n]))
        self._primed = True
        return chunk

    def flush(self) -> list[Stance]:
        out: list[Stance] = []
        if not self._primed and self._warm:
            out.extend(self.push(self._prime()))
        while self._pending:
            out.extend(self._refine(self._pending.popleft()))
        out.extend(self._emit_cut())
        out.extend(self._end_walk())
        self.complete_until_s = float("inf")
        return out

    def snapshot(self) -> dict[str, Any]:  # pragma: no cover - resume support is future work
        raise NotImplementedError("trunk detector snapshots are not supported yet")

    # -- per piece -------------------------------------------------------------------
    def _process(self, piece: Chunk) -> list[Stance]:
        acc = piece.acc_mps2
        t = piece.t_s
        if self._fixed_up is not None:
            up = np.broadcast_to(self._fixed_up, acc.shape)
        else:
            up = self._up(acc)
            up = up / row_norm(up)[:, None]
        vert = row_dot(acc, up)
        self.buf.append(t, np.column_stack([acc, up, vert]))
        gaps = gap_starts(t, self._last_t, self._gap_s)
        if gaps.size == 0:
            self._segment(t, self._smooth(vert[:, None])[:, 0])
        else:
            # Lost data can hide a flight (two contacts would merge) or an edge: close
            # any hump at the gap and look at the data after it afresh.
            gapset = {int(g) for g in gaps}
            cuts = sorted({0, t.shape[0], *gapset})
            for a, b in itertools.pairwise(cuts):
                if a in gapset:
                    self._on_gap(self._last_t if a == 0 else float(t[a - 1]))
                self._segment(t[a:b], self._smooth(vert[a:b, None])[:, 0])
        self._last_t = float(t[-1])
        return self._advance()

    def _on_gap(self, before_s: float) -> None:
        # restart the smoothing: pre-gap samples must not ring into the new run
        self._smooth.reset()
        if self._open is not None:
            self._open.s1 = before_s
            self._open.cut_end = True
            self._pending.append(self._open)
            self._open = None
        self._hyst.state = 0
        self._after_gap = True

    def _segment(self, t: FloatArray, smooth: FloatArray) -> None:
        after_gap, self._after_gap = self._after_gap, False
        for i, kind in self._hyst.switches(smooth):
            if kind == 1:
                self._open = _Hump(float(t[i]), cut_start=after_gap and i == 0)
            elif self._open is not None:
                self._open.s1 = float(t[i])
                self._pending.append(self._open)
                self._open = None

    def _advance(self) -> list[Stance]:
        c = self.config
        last = self._last_t
        if self._open is not None and last - self._open.s0 > c.max_hump_s:
            self._open = None  # not a step (leaning, a long push): let the watermark move
        out: list[Stance] = []
        while self._pending and self._pending[0].s1 + c.margin_s <= last:
            out.extend(self._refine(self._pending.popleft()))
        if self._walk is not None and last - self._walk.peak_t > c.max_step_s + c.margin_s:
            out.extend(self._end_walk())
        if (
            self._cut is not None
            and self._open is None
            and not self._pending
            and last - self._cut.to > c.max_contact_s
        ):
            out.extend(self._emit_cut())  # nothing came after the gap to complete it
        marks = [last - c.ic_back_s - c.margin_s]
        if self._cut is not None:
            marks.append(self._cut.ic)
        if self._open is not None:
            marks.append(self._open.s0 - c.ic_back_s)
        marks.extend(h.s0 - c.ic_back_s for h in self._pending)
        if self._walk is not None:
            marks.append(self._walk.ic)
        self.complete_until_s = min(marks)
        return out

    # -- refinement --------------------------------------------------------------------
    def _window(self, t0: float, t1: float) -> tuple[FloatArray, FloatArray, bool]:
        t, x = self.buf.window_time(t0, t1)
        gap = t.shape[0] > 1 and float(np.max(t[1:] - t[:-1])) > self._gap_s
        return t, x, bool(gap)

    def _smoothed(self, t: FloatArray, v: FloatArray, cutoff_hz: float) -> FloatArray:
        """Zero-phase low-pass, run by run when data were lost (never across a gap)."""
        gaps = np.flatnonzero(t[1:] - t[:-1] > self._gap_s) + 1
        if gaps.size == 0:
            return zero_phase_lowpass(v, cutoff_hz, self.fs_hz)
        out = np.empty_like(v)
        cuts = [0, *gaps.tolist(), v.shape[0]]
        for a, b in itertools.pairwise(cuts):
            out[a:b] = zero_phase_lowpass(v[a:b], cutoff_hz, self.fs_hz)
        return out

    def _refine(self, h: _Hump) -> list[Stance]:
        c = self.config
        t, x, gap = self._window(h.s0 - c.ic_back_s - c.margin_s, h.s1 + c.margin_s)
        if t.shape[0] < 5:
            return []
        v = x[:, 6]
        vs = self._smoothed(t, v, c.refine_cutoff_hz)
        ipk = int(np.argmax(vs))
        peak = float(vs[ipk])
        if peak < c.min_peak_g * G:
            return []
        flight = float(vs.min()) < c.flight_g * G
        if flight:
            return self._running(h, t, x, vs, ipk, gap)
        return self._walking(h, t, x)

    # running ---------------------------------------------------------------------------
    def _running(
        self, h: _Hump, t: FloatArray, x: FloatArray, vs: FloatArray, ipk: int, gap: bool
    ) -> list[Stance]:
        out = self._end_walk()  # a walking bout ended with this running step
        raw = self._running_raw(h, t, vs, ipk, gap)
        prev, self._cut = self._cut, None
        if prev is not None:
            if raw is not None and h.cut_start and abs(raw.ic - prev.ic) < 0.5 * self._contact_s:
                # the same contact, cut in two by lost data: rise from one, fall from the other
                ic, ic_conf = (
                    (prev.ic, prev.ic_conf)
                    if prev.ic_conf >= raw.ic_conf
                    else (raw.ic, raw.ic_conf)
                )
                to, to_conf = (
                    (raw.to, raw.to_conf)
                    if raw.to_conf >= prev.to_conf
                    else (prev.to, prev.to_conf)
                )
                raw = _Raw(ic, to, ic_conf, to_conf) if to > ic else raw
                prev = None
            if prev is not None:
                out.append(
                    self._stance(prev.ic, prev.to, "run", prev.ic_conf, prev.to_conf, None, None)
                )
        if raw is None:
            return out
        if h.cut_end:
            self._cut = raw  # wait: the data after the gap may complete this contact
            return out
        out.append(self._stance(raw.ic, raw.to, "run", raw.ic_conf, raw.to_conf, t, x))
        return out

    def _emit_cut(self) -> list[Stance]:
        prev, self._cut = self._cut, None
        if prev is None:
            return []
        return [self._stance(prev.ic, prev.to, "run", prev.ic_conf, prev.to_conf, None, None)]

    def _running_raw(
        self, h: _Hump, t: FloatArray, vs: FloatArray, ipk: int, gap: bool
    ) -> _Raw | None:
        c = self.config
        peak = float(vs[ipk])
        ic_conf = to_conf = 1.0
        if h.cut_start or h.cut_end:
            peak = max(peak, self._peak)  # the true peak may lie in the lost data
        level = c.level_frac * peak
        u = math.asin(min(level / peak, 1.0)) / math.pi
        t_up, ok_up = _edge(t, vs, ipk, level, True, self._gap_s)
        t_dn, ok_dn = _edge(t, vs, ipk, level, False, self._gap_s)
        ok_up = ok_up and not h.cut_start
        ok_dn = ok_dn and not h.cut_end
        if t_up is not None and t_dn is not None and ok_up and ok_dn:
            contact = (t_dn - t_up) / (1.0 - 2.0 * u)
            ic, to = t_up - u * contact, t_dn + u * contact
        elif t_up is not None and ok_up:
            ic = t_up - u * self._contact_s
            to = ic + self._contact_s
            to_conf = 0.3
        elif t_dn is not None and ok_dn:
            to = t_dn + u * self._contact_s
            ic = to - self._contact_s
            ic_conf = 0.3
        else:
            return None
        contact = to - ic
        if not (c.min_contact_s <= contact <= c.max_contact_s):
            return None
        if ic_conf == 1.0 and to_conf == 1.0 and not gap:
            # learn the runner's current step shape for stances with a hidden edge
            self._contact_s = 0.8 * self._contact_s + 0.2 * contact
            self._peak = 0.8 * self._peak + 0.2 * peak
        return _Raw(ic, to, ic_conf, to_conf)

    # walking ---------------------------------------------------------------------------
    def _walking(self, h: _Hump, t: FloatArray, x: FloatArray) -> list[Stance]:
        c = self.config
        vs = self._smoothed(t, x[:, 6], c.walk_cutoff_hz)
        ipk = int(np.argmax(vs))
        # the rise into the weight-acceptance peak, from the earliest admissible IC
        i0 = int(np.searchsorted(t, h.s0 - c.ic_back_s))
        if ipk - i0 < 2:
            return []
        slope = (vs[i0 + 1 : ipk + 1] - vs[i0:ipk]) / (t[i0 + 1 : ipk + 1] - t[i0:ipk])
        k = int(np.argmax(slope))
        ic = 0.5 * float(t[i0 + k] + t[i0 + k + 1])
        dt = t[i0 + k + 1] - t[i0 + k]
        ic_conf = 0.3 if dt > self._gap_s else 1.0
        out: list[Stance] = []
        prev = self._walk
        if prev is not None:
            if ic - prev.ic <= c.max_step_s:
                out.extend(self._walk_to(prev, ic))
            else:
                out.extend(self._end_walk())
        self._walk = _Walk(ic=ic, peak_t=float(t[ipk]), ic_conf=ic_conf)
        return out

    def _walk_to(self, prev: _Walk, next_ic: float) -> list[Stance]:
        """Toe-off of the previous walking stance: the end of the next double support.

        The trailing foot's toe-off leaves no sharp mark on the trunk, so it is placed
        ``walk_double_support`` of a step after the next contact (about 10 % of the
        stride in healthy walking, Perry 1992) and reported with low confidence.
        """
        c = self.config
        self._walk = None
        to = next_ic + c.walk_double_support * (next_ic - prev.ic)
        if not (c.min_contact_s <= to - prev.ic <= c.max_contact_s):
            return []
        self._walk_contact_s = 0.8 * self._walk_contact_s + 0.2 * (to - prev.ic)
        return [self._stance(prev.ic, to, "walk", prev.ic_conf, 0.5, None, None)]

    def _end_walk(self) -> list[Stance]:
        """The last step of a walking bout: no next step to end its double support, so
        its toe-off is placed one usual walking contact time after its IC."""
        prev, self._walk = self._walk, None
        if prev is None:
            return []
        to = prev.ic + self._walk_contact_s
        return [self._stance(prev.ic, to, "walk", prev.ic_conf, 0.3, None, None)]

    # common --------------------------------------------------------------------------
    def _stance(
        self,
        ic: float,
        to: float,
        gait: Gait,
        ic_conf: float,
        to_conf: float,
        t: FloatArray | None,
        x: FloatArray | None,
    ) -> Stance:
        """A stance with side and metrics; ``t, x`` is a window holding it, if at hand."""
        if t is None or x is None or t.shape[0] == 0 or t[0] > ic or t[-1] < to:
            t, x, _ = self._window(ic - 0.02, to + 0.02)
        a, b = (int(i) for i in np.searchsorted(t, [ic, to]))
        side = self._side(t[a:b], x[a:b], ic, to)
        metrics = self._metrics(t, x, a, ic, to)
        self._last_to = to
        self.stances += 1
        return Stance(
            side=side,
            ic_s=ic,
            to_s=to,
            source=self.placement,
            confidence=min(ic_conf, to_conf),
            gait=gait,
            metrics=metrics,
            ic_confidence=ic_conf,
            to_confidence=to_conf,
            side_known=False,
        )

    def _metrics(
        self, t: FloatArray, x: FloatArray, a: int, ic: float, to: float
    ) -> dict[str, float]:
        c = self.config
        out: dict[str, float] = {}
        n = max(2, int(c.impact_window_s * self.fs_hz))
        tt, v = t[a : a + n], x[a : a + n, 6]
        if tt.shape[0] >= 2 and float(np.max(tt[1:] - tt[:-1])) <= self._gap_s:
            k = int(np.argmax(v))
            out["impact_peak_g"] = float(v[k]) / G
            if tt[k] > ic:
                out["loading_rate_g_per_s"] = float((v[k] - v[0]) / (tt[k] - ic)) / G
        prev = self._last_to
        if prev is not None and 0 < to - prev <= c.max_step_s:
            tv, xv, gap = self._window(prev, to)
            if tv.shape[0] >= 10 and not gap:
                out["vertical_oscillation_cm"] = _oscillation_cm(tv, xv[:, 6])
        return out

    def _side(self, t: FloatArray, x: FloatArray, ic: float, to: float) -> Side:
        """Side of a stance from its samples ``t, x`` (already cut to the stance)."""
        c = self.config
        n = t.shape[0]
        # 3-vectors as plain floats: numpy's per-call cost dwarfs the arithmetic
        if n:
            # "up" hardly moves within a stance: project the means, not every sample
            ux, uy, uz = x[:, 3:6].sum(axis=0).tolist()
            un = max(math.sqrt(ux * ux + uy * uy + uz * uz), 1e-12)
            ux, uy, uz = ux / un, uy / un, uz / un
            acc = x[:, 0:3]
            inv = 1.0 / n
            px, py, pz = (acc.sum(axis=0) * inv).tolist()
            bx, by, bz = ((-np.sin((2 * np.pi / (to - ic)) * (t - ic)) @ acc) * inv).tolist()
            d = px * ux + py * uy + pz * uz
            px, py, pz = px - d * ux, py - d * uy, pz - d * uz
            d = bx * ux + by * uy + bz * uz
            bx, by, bz = bx - d * ux, by - d * uy, bz - d * uz
        else:
            ux, uy, uz = 0.0, 0.0, 1.0
            px = py = pz = bx = by = bz = 0.0
        if self._fixed_fwd is not None:
            fx, fy, fz = self._fixed_fwd.tolist()
        else:
            ox, oy, oz = self._forward
            fx, fy, fz = 0.9 * ox + bx, 0.9 * oy + by, 0.9 * oz + bz
            self._forward = (fx, fy, fz)
        d = fx * ux + fy * uy + fz * uz
        fx, fy, fz = fx - d * ux, fy - d * uy, fz - d * uz
        norm = math.sqrt(fx * fx + fy * fy + fz * fz)
        if norm > 0:
            fx, fy, fz = fx / norm, fy / norm, fz / norm
            # left = up x forward
            lx, ly, lz = uy * fz - uz * fy, uz * fx - ux * fz, ux * fy - uy * fx
        else:
            lx = ly = lz = 0.0
        score = -(px * lx + py * ly + pz * lz)  # > 0: pushed to the right -> left stance
        # parity: how many steps since the last contact (a missed step flips it twice)
        if self._last_ic is None or ic - self._last_ic > c.max_step_s:
            self._vote, self._parity, self._step_s = 0.0, 0, 0.0
        else:
            dt = ic - self._last_ic
            # Missed steps flip the parity twice; a step up to 1.6x the usual one is
            # still one step (walk-run transitions change the step time by ~1.5x).
            gap_steps = (
                1 if self._step_s == 0.0 or dt < 1.6 * self._step_s else round(dt / self._step_s)
            )
            self._parity = (self._parity + gap_steps) % 2
            if gap_steps == 1:
                self._step_s = dt if self._step_s == 0.0 else 0.7 * self._step_s + 0.3 * dt
        self._last_ic = ic
        sign = 1.0 if self._parity == 0 else -1.0
        self._vote = c.side_vote_decay * self._vote + sign * score
        even_is_left = self._vote >= 0
        return "left" if (self._parity == 0) == even_is_left else "right"


def _edge(
    t: FloatArray, vs: FloatArray, ipk: int, level: float, rising: bool, gap_s: float
) -> tuple[float | None, bool]:
    """Crossing of ``level`` on one side of the peak, and whether it lies in clean data.

    Rising: the last upward crossing before the peak; falling: the first downward one
    after it. A crossing whose two samples straddle lost data is not trustworthy, nor
    is a missing one when the data around the peak has a hole on that side.
    """
    if rising:
        seg_t, seg_v = t[: ipk + 1], vs[: ipk + 1]
        below = np.flatnonzero(seg_v <= level)
        if below.size == 0:
            return None, False
        i = int(below[-1])
        if i + 1 >= seg_v.shape[0]:
            return None, False
    else:
        seg_t, seg_v = t[ipk:], vs[ipk:]
        below = np.flatnonzero(seg_v <= level)
        if below.size == 0:
            return None, False
        i = int(below[0]) - 1
        if i < 0:
            return None, False
    y0, y1 = float(seg_v[i]), float(seg_v[i + 1])
    frac = (level - y0) / (y1 - y0) if y1 != y0 else 0.0
    tc = float(seg_t[i] + frac * (seg_t[i + 1] - seg_t[i]))
    ok = float(seg_t[i + 1] - seg_t[i]) <= gap_s
    return tc, ok


def _oscillation_cm(t: FloatArray, vert: FloatArray) -> float:
    """Peak-to-peak height over one step cycle, assuming periodic motion.

    Over a whole cycle the mean vertical acceleration is zero and the height returns
    to its start, so removing the mean acceleration (which also cancels any error in
    g or in the up estimate) and then the mean velocity leaves no drift to fit. The
    window is gap-free, so the sampling is uniform enough for running sums.
    """
    n = t.shape[0]
    dt = float(t[-1] - t[0]) / (n - 1)
    # sum / n is what ndarray.mean computes, without its Python-level overhead
    vel = np.cumsum(vert - float(vert.sum()) / n) * dt
    z = np.cumsum(vel - float(vel.sum()) / n) * dt
    return float((z.max() - z.min()) * 100.0)
