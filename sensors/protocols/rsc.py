"""Running Speed and Cadence (Bluetooth SIG RSC Service 0x1814, RSC Measurement 0x2A53).

Source (facts only): Bluetooth SIG "Running Speed and Cadence Service 1.0" and the GATT
Specification Supplement, section "RSC Measurement"::

    flags u8      bit 0: instantaneous stride length present
                  bit 1: total distance present
                  bit 2: 0 = walking, 1 = running
    speed u16     instantaneous speed, 1/256 m/s
    cadence u8    instantaneous cadence, 1/min
    [stride u16]  instantaneous stride length, 1/100 m   (if bit 0)
    [dist u32]    total distance, 1/10 m                  (if bit 1)

The spec calls the cadence unit "per minute" without saying steps or strides; most foot
pods send steps/min but some send strides/min (half the number), hence the neutral name
``cadence_per_min``. These pods give no raw IMU data: hipstride records them and shows
them next to its own estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sensors.errors import DecodeError
from sensors.protocols import binary
from sensors.protocols.types import Decoded, RscMeasurement

NAME = "rsc"

SERVICE_UUID = "00001814-0000-1000-8000-00805f9b34fb"
MEASUREMENT_UUID = "00002a53-0000-1000-8000-00805f9b34fb"

FLAG_STRIDE = 0x01
FLAG_DISTANCE = 0x02
FLAG_RUNNING = 0x04
_RESERVED = 0xF8


def decode_measurement(data: bytes) -> RscMeasurement:
    what = "RSC measurement"
    flags = binary.uint(data, 0, 1, what)
    if flags & _RESERVED:
        raise DecodeError(f"{what}: reserved flag bits set (flags 0x{flags:02x})")
    expected = 4 + (2 if flags & FLAG_STRIDE else 0) + (4 if flags & FLAG_DISTANCE else 0)
    if len(data) != expected:
        raise DecodeError(f"{what}: flags 0x{flags:02x} mean {expected} bytes, got {len(data)}")
    offset = 4
    stride_m = None
    if flags & FLAG_STRIDE:
        stride_m = binary.uint(data, offset, 2, what) / 100.0
        offset += 2
    distance_m = None
    if flags & FLAG_DISTANCE:
        distance_m = binary.uint(data, offset, 4, what) / 10.0
    return RscMeasurement(
        speed_mps=binary.uint(data, 1, 2, what) / 256.0,
        cadence_per_min=binary.uint(data, 3, 1, what),
        stride_length_m=stride_m,
        total_distance_m=distance_m,
        running=bool(flags & FLAG_RUNNING),
    )


def encode_measurement(m: RscMeasurement) -> bytes:
    """The inverse, for virtual foot pods and tests (values rounded to wire units)."""
    flags = FLAG_RUNNING if m.running else 0
    out = bytearray()
    out += round(m.speed_mps * 256).to_bytes(2, "little")
    out += m.cadence_per_min.to_bytes(1, "little")
    if m.stride_length_m is not None:
        flags |= FLAG_STRIDE
        out += round(m.stride_length_m * 100).to_bytes(2, "little")
    if m.total_distance_m is not None:
        flags |= FLAG_DISTANCE
        out += round(m.total_distance_m * 10).to_bytes(4, "little")
    return bytes([flags]) + bytes(out)


@dataclass
class RscDecoder:
    name: str = NAME

    def feed(self, packet: bytes) -> list[Decoded]:
        return [decode_measurement(packet)]

    def reset(self) -> None:
        """Stateless: every measurement stands alone."""


def make_decoder(options: Mapping[str, str] | None = None) -> RscDecoder:
    if options:
        raise DecodeError(f"rsc: takes no options, got {sorted(options)}")
    return RscDecoder()
