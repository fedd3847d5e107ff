"""Map each sensor's clock onto the session time base (the host's monotonic clock).

BLE delivery latency jitters by tens of milliseconds and is never negative: a packet
cannot arrive before its last sample was measured. So the host-minus-sensor times of
the packets all lie *above* one straight line, ``offset + drift * sensor_time``, and
the packets that arrived fastest lie on it. Least squares would fit the mean latency
and be dragged by every late packet; instead we fit that lower envelope, as network
clock synchronisation does (Moon, Skelly & Towsley, "Estimation and removal of clock
skew from network delay measurements", INFOCOM 1999): the line below all points that
is closest to them on average, which is the edge of their lower convex hull spanning
the mean sensor time.

To stay cheap and bounded, only the fastest packet of every ``bin_s`` is kept, for the
last ``window_s``; a 4-hour run costs the same as a 4-minute one.

The result is the session time at which each sample *would have arrived with the
smallest latency seen*; the constant base latency (a few ms, about the same for every
sensor on one adapter) cannot be observed and is not removed. Until the fit has seen the
connection-event phase walk through a full interval (see ``ClockConfig.window_s``) the
error is bounded by one connection interval, not better.

Sensors without timestamps (WitMotion) get a virtual clock, sample index / nominal
rate, fitted the same way, so their real rate and start are learnt from arrivals.
Gaps (counter jumps, timestamp jumps, or arrivals far behind the fit) are reported as
lost samples; no sample is ever invented.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

import numpy as np

from sensors.model import FloatArray
from sensors.protocols.types import DecodedSamples


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """Settings of one sensor's clock mapping (units in the names)."""

    #: Fit over this much sensor time. Arrivals are quantised to connection events
    #: (7.5-50 ms apart), and the quantisation phase walks at the drift rate, so the
    #: fastest packets form a sawtooth; the fit needs two of its teeth in the window
    #: (2 x interval / drift: 300 s at 7.5 ms and 50 ppm) to see the drift.
    window_s: float = 600.0
    bin_s: float = 1.0  # keep the fastest packet per bin
    min_span_s: float = 10.0  # before this much data, assume zero drift
    max_drift_ppm: float = 200.0  # crystals: ±50 ppm each side; beyond is noise
    #: Untimestamped sensors only. While a link is up, BLE notifications are reliable
    #: and in order (the link layer retransmits), so a late burst is a stall, not a
    #: loss; only after a reconnect, or a silence longer than this, is lateness loss.
    gap_s: float = 1.0


class LowerEnvelopeFit:
    """Streaming lower-envelope line fit ``y >= a + b * x`` over a sliding window.

    ``x`` must be non-decreasing. ``add`` is O(1) amortised; the hull is recomputed at
    most once per bin and when a point falls below the current line.
    """

    def __init__(self, window: float, bin_width: float, min_span: float, max_slope: float):
        self._window = window
        self._bin = bin_width
        self._min_span = min_span
        self._max_slope = max_slope
        self._bins: deque[tuple[int, float, float]] = deque()  # (bin index, x, y)
        self._dirty = False
        self.a = 0.0
        self.b = 0.0

    def __len__(self) -> int:
        return len(self._bins)

    def add(self, x: float, y: float) -> None:
        index = int(x // self._bin)
        if self._bins and self._bins[-1][0] == index:
            if y < self._bins[-1][2]:
                self._bins[-1] = (index, x, y)
                self._dirty = True
        else:
            self._bins.append((index, x, y))
            self._dirty = True
            while self._bins and self._bins[0][1] < x - self._window:
                self._bins.popleft()
        if self._dirty or y < self.a + self.b * x:
            self._refit()

    def __call__(self, x: float) -> float:
        return self.a + self.b * x

    def _refit(self) -> None:
        self._dirty = False
        xs = np.array([p[1] for p in self._bins])
        ys = np.array([p[2] for p in self._bins])
        span = float(xs[-1] - xs[0])
        slope = 0.0
        if span >= self._min_span and len(xs) >= 2:
            slope = _hull_slope_at(xs, ys, float(xs.mean()))
            slope = min(max(slope, -self._max_slope), self._max_slope)
        self.b = slope
        # Highest line of this slope that stays below every point.
        self.a = float(np.min(ys - slope * xs))


def _hull_slope_at(xs: FloatArray, ys: FloatArray, x_mean: float) -> float:
    """Slope of the lower convex hull edge over ``x_mean`` (Andrew's monotone chain)."""
    hull: list[tuple[float, float]] = []
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # Pop while the last point lies on or above the chord (not a lower-hull turn).
            if (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1) <= 0:
                hull.pop()
            else:
                break
        if hull and x == hull[-1][0]:
            continue  # same x, higher y: not on the lower hull
        hull.append((x, y))
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        if x1 <= x_mean <= x2:
            return (y2 - y1) / (x2 - x1)
    return 0.0


@dataclass(frozen=True, slots=True)
class Mapped:
    """Session times of one packet's samples and what was lost just before it."""

    t_s: FloatArray
    lost_samples: int
    #: The samples' times on the sensor's own (unwrapped) clock: equal for samples
    #: taken together, whatever the host latency, so streams pair up on it.
    sensor_s: FloatArray


class SensorClock:
    """Per-sensor mapping from decoded packets to session-time sample times."""

    def __init__(self, config: ClockConfig | None = None) -> None:
        self.config = config or ClockConfig()
        self.lost_samples = 0
        self.packets = 0
        self.resets = 0
        self.reordered = 0  # packets whose times had to be nudged to keep order
        self._reset_state()

    def _reset_state(self) -> None:
        cfg = self.config
        self._fit: LowerEnvelopeFit | None = None
        self._max_drift = cfg.max_drift_ppm * 1e-6
        self._x0: float | None = None  # sensor time origin (keeps floats small)
        self._raw_last: float | None = None
        self._wraps = 0
        self._counter_next: int | None = None
        self._counter_base = 0
        self._counter_last: int | None = None
        self._next_x: float | None = None  # expected sensor time of the next sample
        self._period_s: float | None = None
        self._index = 0  # virtual clock: samples seen (untimestamped sensors)
        self._prev_stamp: tuple[float, int, int] | None = None
        self._after_reconnect = False
        self._excess_s = 0.0  # typical latency above the fit (untimestamped sensors)
        self._last_t: float | None = None

    # ------------------------------------------------------------------ status

    @property
    def offset_s(self) -> float | None:
        """Session time minus sensor time at the latest sample (``None`` before data)."""
        if self._fit is None or self._next_x is None or self._x0 is None:
            return None
        return self._fit(self._next_x) - self._x0

    @property
    def period_s(self) -> float | None:
        """Sample period on the sensor's clock, once data arrived."""
        return self._period_s

    @property
    def drift_ppm(self) -> float:
        """How much faster the sensor's clock runs than the host's (ppm; + = fast)."""
        # The fit is (host - sensor) against sensor time, so its slope is -drift.
        return 0.0 if self._fit is None else -self._fit.b * 1e6

    def reconnected(self) -> None:
        """The link dropped and came back: samples may be missing before the next packet."""
        self._after_reconnect = True

    # ------------------------------------------------------------------ mapping

    def map(self, packet: DecodedSamples, arrival_s: float) -> Mapped:
        """Session times for ``packet``'s samples, which arrived at ``arrival_s``."""
        n = len(packet)
        if n == 0:
            return Mapped(np.empty(0), 0, np.empty(0))
        self.packets += 1
        lost = self._counter_gap(packet)
        if packet.sensor_time_s is not None:
            x, lost = self._timestamped(packet, n, arrival_s, lost)
        else:
            x, lost = self._untimestamped(packet, n, arrival_s, lost)
        assert self._fit is not None
        t = x + self._fit.a + self._fit.b * x
        t = self._keep_increasing(t)
        self._after_reconnect = False
        self.lost_samples += lost
        return Mapped(t, lost, x + (self._x0 or 0.0))

    def _new_fit(self, max_slope: float) -> LowerEnvelopeFit:
        cfg = self.config
        return LowerEnvelopeFit(cfg.window_s, cfg.bin_s, cfg.min_span_s, max_slope)

    def _counter_gap(self, packet: DecodedSamples) -> int:
        """Samples lost according to the packet counter (0 without a counter)."""
        counter = packet.sample_counter
        if counter is None:
            return 0
        modulo = packet.counter_modulo
        if self._counter_last is not None and modulo and counter < self._counter_last:
            if self._counter_last - counter > modulo // 2:
                self._counter_base += modulo  # wrapped
            else:
                self._restart()  # went backwards: the sensor restarted
        self._counter_last = counter
        full = self._counter_base + counter
        lost = 0 if self._counter_next is None else max(0, full - self._counter_next)
        self._counter_next = full + len(packet)
        return lost

    def _restart(self) -> None:
        lost, packets, resets, reordered, last_t = (
            self.lost_samples,
            self.packets,
            self.resets + 1,
            self.reordered,
            self._last_t,
        )
        self._reset_state()
        self.lost_samples, self.packets, self.resets, self.reordered = (
            lost,
            packets,
            resets,
            reordered,
        )
        self._last_t = last_t

    def _unwrap(self, raw: float, wrap: float | None) -> float:
        last = self._raw_last
        if last is not None and raw < last:
            if wrap is not None and last - raw > wrap / 2:
                self._wraps += 1
            else:
                # The sensor clock jumped back (reboot, time set): start a new fit.
                self._restart()
        self._raw_last = raw
        return raw + self._wraps * (wrap or 0.0)

    def _timestamped(
        self, packet: DecodedSamples, n: int, arrival_s: float, lost: int
    ) -> tuple[FloatArray, int]:
        assert packet.sensor_time_s is not None
        stamp = self._unwrap(packet.sensor_time_s, packet.time_wrap_s)
        if self._x0 is None:
            self._x0 = stamp
            self._fit = self._new_fit(self._max_drift)
        assert self._fit is not None
        stamp -= self._x0
        period = self._period(packet, stamp, n, lost)
        x = stamp + (np.arange(n, dtype=np.float64) - packet.stamp_index) * period
        if lost == 0 and self._next_x is not None and packet.sample_counter is None:
            # No counter: a stamp further ahead than the samples we got means loss.
            missing = (x[0] - self._next_x) / period
            if missing > 0.5:
                lost = round(missing)
        self._next_x = float(x[-1]) + period
        # The packet left after its LAST sample was measured: that bounds the latency.
        self._fit.add(float(x[-1]), arrival_s - float(x[-1]))
        return x, lost

    def _period(self, packet: DecodedSamples, stamp: float, n: int, lost: int) -> float:
        """Sample period on the sensor's clock, learnt from consecutive stamps.

        The IMU's own oscillator sets the sample rate, so "104 Hz" may be 103.6 Hz on
        the sensor's clock; consecutive packet stamps tell (as the Polar SDK does).
        """
        nominal = 1.0 / packet.rate_hz if packet.rate_hz else self._period_s or 0.01
        prev = self._prev_stamp
        self._prev_stamp = (stamp, packet.stamp_index, n)
        if self._period_s is None:
            self._period_s = nominal
        if prev is not None and lost == 0:
            prev_stamp, prev_index, prev_n = prev
            samples_between = (prev_n - prev_index) + packet.stamp_index
            if samples_between > 0:
                observed = (stamp - prev_stamp) / samples_between
                # Trust only observations near nominal: a stamp gap means lost packets.
                if abs(observed - nominal) < 0.05 * nominal:
                    self._period_s += 0.05 * (observed - self._period_s)
        return self._period_s

    def _untimestamped(
        self, packet: DecodedSamples, n: int, arrival_s: float, lost: int
    ) -> tuple[FloatArray, int]:
        rate = packet.rate_hz or 100.0
        period = self._period_s = 1.0 / rate
        if self._fit is None:
            # Virtual clocks follow the IMU's oscillator: allow a few percent of drift.
            self._fit = self._new_fit(max(self._max_drift, 0.03))
            self._x0 = 0.0
        fit = self._fit
        last_x = (self._index + n - 1) * period
        if len(fit) and lost == 0:
            behind = arrival_s - (last_x + fit(last_x))
            if behind > self.config.gap_s or (self._after_reconnect and behind > period):
                # Far later than the fit allows: samples went missing in between.
                lost = max(0, round((behind - self._excess_s) / period))
            else:
                self._excess_s += 0.05 * (max(behind, 0.0) - self._excess_s)
        self._index += lost
        x = (self._index + np.arange(n, dtype=np.float64)) * period
        self._index += n
        self._next_x = float(x[-1]) + period
        fit.add(float(x[-1]), arrival_s - float(x[-1]))
        return x, lost

    def _keep_increasing(self, t: FloatArray) -> FloatArray:
        """When the fit moves down by more than a sample gap, never go back in time."""
        if self._last_t is not None and t[0] <= self._last_t:
            self.reordered += 1
            t = np.maximum(t, self._last_t + 1e-6 * np.arange(1, len(t) + 1))
        self._last_t = float(t[-1])
        return t
