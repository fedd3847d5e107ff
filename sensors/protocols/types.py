"""Result types shared by every decoder.

A decoder turns one BLE notification into zero or more results; it never reads a clock
and never invents a sample. Anything that needs the host clock (mapping sensor time onto
the session time base, counting lost packets) lives in :mod:`sensors.clock`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sensors.model import FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class DecodedSamples:
    """Consecutive samples from one packet, in SI-ish units.

    ``acc_mps2``: (n, 3) m/s², gravity included, or ``None`` when the packet only holds
    gyroscope data (Polar streams acc and gyro as separate frames).
    ``gyr_dps``: (n, 3) deg/s or ``None``.
    ``sensor_time_s``: the sensor's own clock at sample ``stamp_index`` (0 = first,
    n-1 = last), or ``None`` for sensors without timestamps (WitMotion).
    ``time_wrap_s``: the sensor clock wraps after this many seconds (``None``: never).
    ``sample_counter``: counter of the first sample, wrapping at ``counter_modulo``, or
    ``None`` when the protocol has no counter.
    ``rate_hz``: nominal sample rate when the packet or the settings say it.
    """

    acc_mps2: FloatArray | None
    gyr_dps: FloatArray | None
    sensor_time_s: float | None = None
    stamp_index: int = 0
    time_wrap_s: float | None = None
    sample_counter: int | None = None
    counter_modulo: int | None = None
    rate_hz: float | None = None

    def __post_init__(self) -> None:
        if self.acc_mps2 is None and self.gyr_dps is None:
            raise ValueError("a decoded packet holds accelerometer or gyroscope data")
        n = len(self)
        for name, arr in (("acc_mps2", self.acc_mps2), ("gyr_dps", self.gyr_dps)):
            if arr is not None and arr.shape != (n, 3):
                raise ValueError(f"{name} must be ({n}, 3), got {arr.shape}")
        if n and not 0 <= self.stamp_index < n:
            raise ValueError(f"stamp_index {self.stamp_index} outside 0..{n - 1}")

    def __len__(self) -> int:
        arr = self.acc_mps2 if self.acc_mps2 is not None else self.gyr_dps
        assert arr is not None
        return int(arr.shape[0])

    def to_json_rows(self) -> list[dict[str, object]]:
        """One dict per sample, for ``hipstride decode``."""
        rows: list[dict[str, object]] = []
        for i in range(len(self)):
            row: dict[str, object] = {"i": i}
            if self.sample_counter is not None:
                counter = self.sample_counter + i
                if self.counter_modulo:
                    counter %= self.counter_modulo
                row["counter"] = counter
            if self.sensor_time_s is not None and i == self.stamp_index:
                row["sensor_time_s"] = self.sensor_time_s
            if self.acc_mps2 is not None:
                row["acc"] = [round(float(v), 6) for v in self.acc_mps2[i]]
            if self.gyr_dps is not None:
                row["gyr"] = [round(float(v), 6) for v in self.gyr_dps[i]]
            rows.append(row)
        return rows


@dataclass(frozen=True, slots=True)
class RscMeasurement:
    """One Running Speed and Cadence measurement (Bluetooth SIG RSC Service 1.0)."""

    speed_mps: float
    cadence_per_min: int
    stride_length_m: float | None
    total_distance_m: float | None
    running: bool

    def to_json_rows(self) -> list[dict[str, object]]:
        return [
            {
                "speed_mps": self.speed_mps,
                "cadence_per_min": self.cadence_per_min,
                "stride_length_m": self.stride_length_m,
                "total_distance_m": self.total_distance_m,
                "running": self.running,
            }
        ]


Decoded = DecodedSamples | RscMeasurement


class Decoder(Protocol):
    """Stateful wrapper around a protocol's pure packet functions.

    State is only what the wire format forces on us: Polar's previous-frame settings,
    Movesense's split messages, WitMotion's byte stream. ``reset()`` after a reconnect
    drops half-received messages so they are never glued to new data.
    """

    name: str

    def feed(self, packet: bytes) -> list[Decoded]: ...

    def reset(self) -> None: ...


def xyz(values: np.ndarray, scale: float) -> FloatArray:
    """(n*3,) interleaved integers -> (n, 3) float64 times ``scale``."""
    return (values.reshape(-1, 3) * scale).astype(np.float64)
