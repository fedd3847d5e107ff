"""Ground contact and side from a trunk sensor: pelvis (sacrum / belt clip) or chest.

Physics (spring-mass model of running, Blickhan 1989): in flight the trunk falls
freely, so its accelerometer reads ~0 along the vertical; during stance the vertical
specific force rises and falls roughly as a half sine whose mean over a step is g.
A contact is a hump of the vertical specific force; its start and end are found at half
the hump's height on a zero-phase-filtered window and extrapolated to the foot of a
half sine (``u = asin(h/A)/pi`` of the contact time before/after the crossings).

Any mounting: "up" is the low-passed specific force (gravity); "forward" is the
horizontal direction that correlates with braking-then-propulsion during stance
(-sin(2 pi u)); "left" = up x forward. Side: during a left stance the trunk is pushed
to the right (towards the midline), and sides alternate; a leaky vote over steps
combines both so that one noisy step cannot swap the sides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.records import Side
from pipeline.stages.hysteresis import Hysteresis
from pipeline.stages.stance import Stance
from pipeline.stages.streaming import (
    CausalFilter,
    FloatArray,
    crossing_time,
    last_crossing_time,
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
    refine_cutoff_hz: float = 12.0  # zero-phase smoothing used to time IC/TO
    contact_on_g: float = 1.1  # hump starts when smoothed vertical force exceeds this
    contact_off_g: float = 0.6  # ... and ends below this
    min_peak_g: float = 1.3  # humps lower than this are not running contacts
    min_contact_s: float = 0.08
    max_contact_s: float = 0.6
    level_frac: float = 0.5  # crossing level as a fraction of the hump height
    margin_s: float = 0.15  # window around a hump used for refinement
    max_gap_s: float = 0.04  # a data gap longer than this inside a contact lowers confidence
    max_step_s: float = 1.5  # longer: a pause; the side vote restarts
    side_vote_decay: float = 0.85
    history_s: float = 4.0
    piece_s: float = 0.5


class TrunkDetector:
    """Stances (with side) from a pelvis or chest accelerometer (+ gyro if present)."""

    def __init__(self, placement: str, fs_hz: float, has_gyro: bool, config: TrunkConfig) -> None:
        self.placement = placement
        self.fs_hz = fs_hz
        self.has_gyro = has_gyro
        self.config = config
        c = config
        # columns: acc xyz, gyr xyz, up-unit xyz, vertical force
        self.buf = make_buffer(c.history_s, fs_hz, 10)
        self._up = CausalFilter(1.0 / (2 * math.pi * c.gravity_tau_s), fs_hz, 3, order=1)
        self._smooth = CausalFilter(c.segment_cutoff_hz, fs_hz, 1)
        self._hyst = Hysteresis(c.contact_on_g * G, c.contact_off_g * G)
        self._warm: list[Chunk] = []
        self._warm_n = 0
        self._primed = False
        self._open_start: float | None = None
        self._pending: list[tuple[float, float]] = []
        self._last_t = float("-inf")
        self.complete_until_s = float("-inf")
        # side machinery
        self._forward = np.zeros(3)
        self._vote = 0.0
        self._parity = 0
        self._last_ic: float | None = None
        self._step_s = 0.35
        self.stances = 0

    # -- stage interface --------------------------------------------------------------
    def push(self, chunk: Chunk) -> list[Stance]:
        if not self._primed:
            self._warm.append(chunk)
            self._warm_n += len(chunk)
            if self._warm_n < self.config.warmup_s * self.fs_hz:
                return []
            chunk = self._prime()
        out: list[Stance] = []
        step = max(1, int(self.config.piece_s * self.fs_hz))
        for piece in chunk.split(step):
            out.extend(self._process(piece))
        return out

    def _prime(self) -> Chunk:
        """Start the gravity estimate from the warm-up mean, not from one sample."""
        chunk = Chunk.concat(self._warm)
        self._warm = []
        # exactly the first warm-up samples, however many the held chunks contain
        n = max(1, int(self.config.warmup_s * self.fs_hz))
        self._up.prime(chunk.acc_mps2[:n].mean(axis=0))
        self._primed = True
        return chunk

    def flush(self) -> list[Stance]:
        out: list[Stance] = []
        if not self._primed and self._warm:
            out.extend(self.push(self._prime()))
        for seg in self._pending:
            out.extend(self._refine(*seg))
        self._pending = []
        self.complete_until_s = float("inf")
        return out

    def snapshot(self) -> dict[str, Any]:  # pragma: no cover - resume support is future work
        raise NotImplementedError("trunk detector snapshots are not supported yet")

    # -- per piece -------------------------------------------------------------------
    def _process(self, piece: Chunk) -> list[Stance]:
        acc = piece.acc_mps2
        n = len(piece)
        gyr = piece.gyr_dps if piece.gyr_dps is not None else np.zeros((n, 3))
        up = self._up(acc)
        up /= row_norm(up)[:, None]
        vert = row_dot(acc, up)
        smooth = self._smooth(vert[:, None])[:, 0]
        self.buf.append(piece.t_s, np.column_stack([acc, gyr, up, vert]))
        rises, falls, _ = self._hyst.update(smooth)
        t = piece.t_s
        # pair rises and falls in time order into [start, end] humps
        events = sorted([(int(i), 1) for i in rises] + [(int(i), 0) for i in falls])
        for i, kind in events:
            if kind == 1:
                self._open_start = float(t[i])
            elif self._open_start is not None:
                self._pending.append((self._open_start, float(t[i])))
                self._open_start = None
        self._last_t = float(t[-1])
        out: list[Stance] = []
        margin = self.config.margin_s
        while self._pending and self._pending[0][1] + margin <= self._last_t:
            out.extend(self._refine(*self._pending.pop(0)))
        self._update_watermark()
        return out

    def _update_watermark(self) -> None:
        # Any stance not yet emitted starts after the earliest open/pending hump, minus
        # the causal filter's delay and the half-sine extrapolation (< margin).
        candidates = [self._last_t]
        if self._open_start is not None:
            candidates.append(self._open_start)
        candidates.extend(s for s, _ in self._pending)
        self.complete_until_s = min(candidates) - self.config.margin_s

    # -- refinement --------------------------------------------------------------------
    def _refine(self, s0: float, s1: float) -> list[Stance]:
        c = self.config
        t, x = self.buf.window_time(s0 - c.margin_s, s1 + c.margin_s)
        if t.shape[0] < 5:
            return []
        vert = zero_phase_lowpass(x[:, 9], c.refine_cutoff_hz, self.fs_hz)
        peak = float(vert.max())
        if peak < c.min_peak_g * G:
            return []
        level = c.level_frac * peak
        ipk = int(np.argmax(vert))
        t_up = last_crossing_time(t[: ipk + 1], vert[: ipk + 1], level, rising=True)
        t_dn = crossing_time(t[ipk:], vert[ipk:], level, rising=False)
        if t_up is None or t_dn is None:
            return []
        u = math.asin(min(level / peak, 1.0)) / math.pi
        contact = (t_dn - t_up) / (1.0 - 2.0 * u)
        ic, to = t_up - u * contact, t_dn + u * contact
        if not (c.min_contact_s <= contact <= c.max_contact_s):
            return []
        inside = (t >= ic - 0.02) & (t <= to + 0.02)
        ti = t[inside]
        gap = float(np.max(np.diff(ti))) if ti.shape[0] > 1 else 1.0
        confidence = 1.0 if gap <= c.max_gap_s else 0.5
        side = self._side(t, x, ic, to)
        self.stances += 1
        return [
            Stance(
                side=side,
                ic_s=ic,
                to_s=to,
                source=self.placement,
                confidence=confidence,
            )
        ]

    def _side(self, t: FloatArray, x: FloatArray, ic: float, to: float) -> Side:
        c = self.config
        m = (t >= ic) & (t <= to)
        acc, up = x[m, 0:3], x[m, 6:9]
        horiz = acc - row_dot(acc, up)[:, None] * up
        u = (t[m] - ic) / (to - ic)
        push = horiz.mean(axis=0) if horiz.shape[0] else np.zeros(3)
        brake = (horiz * -np.sin(2 * np.pi * u)[:, None]).mean(axis=0) if horiz.shape[0] else push
        self._forward = 0.9 * self._forward + brake
        upm = up.mean(axis=0) if up.shape[0] else np.array([0.0, 0.0, 1.0])
        fwd = self._forward - np.dot(self._forward, upm) * upm
        norm = np.linalg.norm(fwd)
        left = np.cross(upm, fwd / norm) if norm > 0 else np.zeros(3)
        score = -float(np.dot(push, left))  # > 0: pushed to the right -> left stance
        # parity: how many steps since the last contact (a missed step flips it twice)
        if self._last_ic is None or ic - self._last_ic > c.max_step_s:
            self._vote, self._parity = 0.0, 0
        else:
            gap_steps = max(1, round((ic - self._last_ic) / self._step_s))
            self._parity = (self._parity + gap_steps) % 2
            if gap_steps == 1:
                self._step_s = 0.9 * self._step_s + 0.1 * (ic - self._last_ic)
        self._last_ic = ic
        sign = 1.0 if self._parity == 0 else -1.0
        self._vote = c.side_vote_decay * self._vote + sign * score
        even_is_left = self._vote >= 0
        return "left" if (self._parity == 0) == even_is_left else "right"
