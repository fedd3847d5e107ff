"""The live terminal view: what a runner or coach glances at during a run.

It keeps the last few steps per side and redraws at most ``refresh_s`` apart (wall
clock: this is presentation only, it never feeds back into the results).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from statistics import median
from typing import TextIO

from pipeline.engine import Record
from pipeline.records import SIDES, Alert, SensorStatus, StepRecord


class LiveView:
    def __init__(self, stream: TextIO | None = None, refresh_s: float = 0.5, window: int = 10):
        self.stream = stream or sys.stdout
        self.refresh_s = refresh_s
        self.recent: dict[str, deque[StepRecord]] = {s: deque(maxlen=window) for s in SIDES}
        self.alerts: deque[Alert] = deque(maxlen=3)
        self.status: dict[str, SensorStatus] = {}
        self.steps = 0
        self.last_t = 0.0
        self._last_draw = 0.0
        self._lines_drawn = 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def on_records(self, records: list[Record]) -> None:
        for r in records:
            if isinstance(r, StepRecord):
                self.recent[r.side].append(r)
                self.steps += 1
                self.last_t = r.to_s
            elif isinstance(r, Alert):
                self.alerts.append(r)
            elif isinstance(r, SensorStatus):
                self.status[r.placement] = r
        now = time.monotonic()
        if now - self._last_draw >= self.refresh_s:
            self._last_draw = now
            self.draw()

    def _metric(self, side: str, name: str) -> float | None:
        values = [getattr(s, name) for s in self.recent[side] if getattr(s, name) is not None]
        return median(values) if values else None

    def lines(self) -> list[str]:
        cad = [s.cadence_spm for side in SIDES for s in self.recent[side] if s.cadence_spm]
        cadence = f"{median(cad):5.0f} spm" if cad else "    - spm"
        mm, ss = divmod(int(self.last_t), 60)
        out = [f"hipstride live  t={mm:02d}:{ss:02d}  steps={self.steps:5d}  cadence={cadence}"]
        out.append(f"{'':14s}{'left':>10s}{'right':>10s}")
        for label, name, fmt in (
            ("contact (ms)", "contact_ms", "{:10.0f}"),
            ("flight (ms)", "flight_ms", "{:10.0f}"),
            ("hip drop (deg)", "pelvic_drop_deg", "{:10.1f}"),
        ):
            cells = []
            for side in SIDES:
                v = self._metric(side, name)
                cells.append(fmt.format(v) if v is not None else f"{'-':>10s}")
            out.append(f"{label:14s}" + "".join(cells))
        sensors = "  ".join(f"{p}: {s.samples_lost} lost" for p, s in sorted(self.status.items()))
        out.append(f"sensors       {sensors or '-'}")
        if self.alerts:
            a = self.alerts[-1]
            out.append(f"ALERT [{a.level}] {a.message}")
        else:
            out.append("alerts        none")
        return out

    def draw(self) -> None:
        lines = self.lines()
        if self.tty:
            if self._lines_drawn:
                self.stream.write(f"\x1b[{self._lines_drawn}F")
            self.stream.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self._lines_drawn = len(lines)
        else:
            self.stream.write(" | ".join(lines[:1] + lines[2:5]) + "\n")
        self.stream.flush()


class Progress:
    """A one-line progress indicator on stderr for long replays (only on a terminal)."""

    def __init__(self, total_s: float | None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total_s = total_s
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._t0: float | None = None
        self._wall0 = time.monotonic()
        self._last = 0.0

    def __call__(self, t_s: float) -> None:
        if not self.enabled:
            return
        if self._t0 is None:
            self._t0 = t_s
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        done = t_s - self._t0
        speed = done / max(now - self._wall0, 1e-9)
        if self.total_s:
            frac = min(done / self.total_s, 1.0)
            bar = "#" * int(30 * frac)
            self.stream.write(f"\r[{bar:<30s}] {100 * frac:5.1f}%  {speed:7.0f}x real time")
        else:
            self.stream.write(f"\r{done:9.1f} s of data  {speed:7.0f}x real time")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._t0 is not None:
            self.stream.write("\n")
            self.stream.flush()
