"""Decoded packets of one sensor -> :class:`Chunk`\\ s on the session time base.

Most sensors put acc and gyro in the same packet. Polar's Verity Sense streams them as
two measurements with their own frames, so the samples are paired by time here: both
streams are stamped by the same sensor clock at the same rate, so partners lie within
a fraction of a sample period; a sample whose partner was lost is dropped and counted.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from sensors.clock import ClockConfig, SensorClock
from sensors.model import Chunk, FloatArray
from sensors.protocols.types import DecodedSamples

#: Unpaired samples kept while waiting for the other stream (a few seconds' worth).
MAX_PENDING = 1024


class SensorAssembler:
    def __init__(
        self,
        placement: str,
        device_id: str,
        *,
        separate_streams: bool = False,
        clock_config: ClockConfig | None = None,
    ) -> None:
        self.placement = placement
        self.device_id = device_id
        self.separate_streams = separate_streams
        self._clocks: dict[str, SensorClock] = {}
        self._clock_config = clock_config
        # (sensor time, session time, xyz) per sample waiting for its partner
        self._pending: dict[str, deque[tuple[float, float, FloatArray]]] = {
            "acc": deque(),
            "gyr": deque(),
        }
        self.unpaired = 0

    # ------------------------------------------------------------------ status

    @property
    def lost_samples(self) -> int:
        return max((c.lost_samples for c in self._clocks.values()), default=0)

    @property
    def clock(self) -> SensorClock | None:
        """The clock of the main stream (acc, or the combined one)."""
        return self._clocks.get("acc") or self._clocks.get("imu")

    def reconnected(self) -> None:
        for clock in self._clocks.values():
            clock.reconnected()

    # ------------------------------------------------------------------ data

    def push(self, decoded: DecodedSamples, arrival_s: float) -> list[Chunk]:
        stream = _stream(decoded)
        clock = self._clocks.get(stream)
        if clock is None:
            clock = self._clocks[stream] = SensorClock(self._clock_config)
        mapped = clock.map(decoded, arrival_s)
        if stream == "imu" or not self.separate_streams:
            acc = _acc(decoded)
            return [Chunk(self.placement, mapped.t_s, acc, decoded.gyr_dps, self.device_id)]
        values = decoded.acc_mps2 if stream == "acc" else decoded.gyr_dps
        assert values is not None
        return self._pair(stream, mapped.sensor_s, mapped.t_s, values, clock)

    def _pair(
        self,
        stream: str,
        sensor_s: FloatArray,
        t: FloatArray,
        values: FloatArray,
        clock: SensorClock,
    ) -> list[Chunk]:
        pending = self._pending[stream]
        pending.extend(zip(sensor_s.tolist(), t.tolist(), values, strict=True))
        while len(pending) > MAX_PENDING:
            pending.popleft()
            self.unpaired += 1
        acc, gyr = self._pending["acc"], self._pending["gyr"]
        period = clock.period_s or 0.01
        times: list[float] = []
        acc_rows: list[FloatArray] = []
        gyr_rows: list[FloatArray] = []
        while acc and gyr:
            sa, sg = acc[0][0], gyr[0][0]
            if abs(sa - sg) <= 0.5 * period:
                _, t_acc, a = acc.popleft()
                gyr_row = gyr.popleft()[2]
                times.append(t_acc)
                acc_rows.append(a)
                gyr_rows.append(gyr_row)
            else:  # the earlier one's partner never came
                (acc if sa < sg else gyr).popleft()
                self.unpaired += 1
        if not times:
            return []
        return [
            Chunk(
                self.placement,
                np.array(times),
                np.array(acc_rows),
                np.array(gyr_rows),
                self.device_id,
            )
        ]


def _stream(decoded: DecodedSamples) -> str:
    if decoded.acc_mps2 is not None and decoded.gyr_dps is not None:
        return "imu"
    return "acc" if decoded.acc_mps2 is not None else "gyr"


def _acc(decoded: DecodedSamples) -> FloatArray:
    if decoded.acc_mps2 is None:
        raise ValueError("a gyroscope-only stream needs its accelerometer partner")
    return decoded.acc_mps2
