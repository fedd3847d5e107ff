"""Pelvis angles per stance from a sacral IMU (first estimate).

Pelvic drop here is the roll (rotation about the forward axis) integrated from the
gyroscope over the stance, relative to the attitude at initial contact; positive when
the swing side drops. Forward is the horizontal direction that correlates with
braking-then-propulsion in stance (see :mod:`pipeline.stages.trunk`), estimated step
by step in release order so that it does not depend on the chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.records import StepRecord
from pipeline.stages.stance import Stance
from pipeline.stages.streaming import CausalFilter, make_buffer, row_dot, row_norm
from sensors.model import Chunk


@dataclass(frozen=True, slots=True)
class PelvisConfig:
    gravity_tau_s: float = 2.0
    history_s: float = 6.0
    piece_s: float = 0.5
    #: the tracker answers for stances ending this long before its newest sample
    lag_s: float = 0.05


class PelvisTracker:
    def __init__(self, fs_hz: float, config: PelvisConfig | None = None) -> None:
        self.config = config or PelvisConfig()
        self.fs_hz = fs_hz
        self.buf = make_buffer(self.config.history_s, fs_hz, 9)  # acc, gyr, up
        self._up = CausalFilter(1.0 / (2 * math.pi * self.config.gravity_tau_s), fs_hz, 3, order=1)
        self._forward = np.zeros(3)
        self._primed = False
        self.complete_until_s = float("-inf")

    def push(self, chunk: Chunk) -> None:
        if chunk.gyr_dps is None:
            return
        if not self._primed:
            self._up.prime(chunk.acc_mps2[0])
            self._primed = True
        step = max(1, int(self.config.piece_s * self.fs_hz))
        for piece in chunk.split(step):
            up = self._up(piece.acc_mps2)
            up /= row_norm(up)[:, None]
            assert piece.gyr_dps is not None
            self.buf.append(piece.t_s, np.column_stack([piece.acc_mps2, piece.gyr_dps, up]))
        self.complete_until_s = self.buf.last_t - self.config.lag_s

    def flush(self) -> None:
        self.complete_until_s = float("inf")

    def enrich(self, stance: Stance, rec: StepRecord) -> None:
        t, x = self.buf.window_time(stance.ic_s, stance.to_s)
        if t.shape[0] < 3:
            return
        acc, gyr, up_s = x[:, 0:3], x[:, 3:6], x[:, 6:9]
        horiz = acc - row_dot(acc, up_s)[:, None] * up_s
        u = (t - stance.ic_s) / (stance.to_s - stance.ic_s)
        self._forward = 0.9 * self._forward + (horiz * -np.sin(2 * np.pi * u)[:, None]).mean(axis=0)
        up = up_s.mean(axis=0)
        fwd = self._forward - np.dot(self._forward, up) * up
        norm = float(np.sqrt(np.dot(fwd, fwd)))
        if norm == 0:
            return
        roll_rate = gyr @ (fwd / norm)  # deg/s about forward: + lifts the left side
        roll = np.concatenate([[0.0], np.cumsum(0.5 * (roll_rate[1:] + roll_rate[:-1]) * np.diff(t))])
        drop = roll if stance.side == "left" else -roll
        rec.pelvic_drop_deg = float(drop.max())
