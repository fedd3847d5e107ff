"""hipstride's own open BLE profile for DIY sensors (spec: firmware_stubs/PROTOCOL.md).

The C packer in ``firmware_stubs/hipstride_pack.c`` and :func:`pack_packet` here must
produce identical bytes; ``tests/test_firmware_agreement.py`` compiles the C and checks.

Data notification, all little-endian::

    0   u8   version (1)
    1   u8   flags: bit 0 = gyroscope present; bits 1-7 reserved, 0
    2   u8   n, samples in this packet (1..19)
    3   u8   accelerometer full scale, g (2, 4, 8, 16)
    4   u16  gyroscope full scale, deg/s (125..2000; 0 without gyroscope)
    6   u16  sample rate, Hz
    8   u32  sample counter of the first sample (+1 per sample, wraps at 2^32)
    12  u32  sensor clock at the first sample, µs (wraps at 2^32 µs, ~71.6 min)
    16  n x [ax ay az (gx gy gz)] int16, full scale = 32768
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sensors.errors import DecodeError
from sensors.model import GRAVITY_MPS2, FloatArray
from sensors.protocols import binary
from sensors.protocols.types import Decoded, DecodedSamples, xyz

NAME = "hipstride"

# Fixed random 128-bit UUIDs sharing one base (an nRF SoftDevice stores the base once).
SERVICE_UUID = "798e0001-3433-45cf-81c0-3521e775e6a8"
DATA_UUID = "798e0002-3433-45cf-81c0-3521e775e6a8"
CONTROL_UUID = "798e0003-3433-45cf-81c0-3521e775e6a8"
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

VERSION = 1
HEADER_BYTES = 16
MAX_SAMPLES = 19  # 16 + 19 * 12 = 244 bytes = ATT MTU 247 - 3
FLAG_GYRO = 0x01
ACC_RANGES_G = (2, 4, 8, 16)
GYR_RANGES_DPS = (125, 250, 500, 1000, 2000)
MAX_RATE_HZ = 1000

CMD_START = 0x01
CMD_STOP = 0x02

COUNTER_MODULO = 2**32
TIME_WRAP_S = 2**32 * 1e-6

Int16Array = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """What the host asks for with START; echoed in every data packet header."""

    rate_hz: int = 208
    acc_range_g: int = 16
    gyr_range_dps: int = 2000  # 0: accelerometer only

    def validate(self) -> None:
        if not 1 <= self.rate_hz <= MAX_RATE_HZ:
            raise ValueError(f"rate_hz must be 1..{MAX_RATE_HZ}, got {self.rate_hz}")
        if self.acc_range_g not in ACC_RANGES_G:
            raise ValueError(f"acc_range_g must be one of {ACC_RANGES_G}")
        if self.gyr_range_dps and self.gyr_range_dps not in GYR_RANGES_DPS:
            raise ValueError(f"gyr_range_dps must be 0 or one of {GYR_RANGES_DPS}")


def start_command(config: StreamConfig) -> bytes:
    """``01 rate(u16) acc_range_g(u8) gyr_range_dps(u16)``."""
    config.validate()
    return (
        bytes([CMD_START])
        + config.rate_hz.to_bytes(2, "little")
        + bytes([config.acc_range_g])
        + config.gyr_range_dps.to_bytes(2, "little")
    )


def stop_command() -> bytes:
    return bytes([CMD_STOP])


def parse_command(data: bytes) -> StreamConfig | None:
    """Firmware side of the control point: a START's config, or ``None`` for STOP."""
    binary.require(data, 1, "hipstride command")
    if data[0] == CMD_STOP and len(data) == 1:
        return None
    if data[0] != CMD_START or len(data) != 6:
        raise DecodeError(f"hipstride command: unknown or malformed: {data.hex(' ')}")
    config = StreamConfig(
        rate_hz=binary.uint(data, 1, 2, "hipstride START"),
        acc_range_g=data[3],
        gyr_range_dps=binary.uint(data, 4, 2, "hipstride START"),
    )
    try:
        config.validate()
    except ValueError as err:
        raise DecodeError(f"hipstride START: {err}") from None
    return config


def quantize(values: FloatArray, full_scale: float) -> Int16Array:
    """Physical values -> int16 counts at ``full_scale`` (rounded, clipped)."""
    counts = np.rint(np.asarray(values, dtype=np.float64) * (32768.0 / full_scale))
    return np.clip(counts, -32768, 32767).astype(np.int16)


def pack_packet(
    config: StreamConfig,
    counter: int,
    timestamp_us: int,
    acc_counts: Int16Array,
    gyr_counts: Int16Array | None = None,
) -> bytes:
    """One data notification from raw int16 counts, exactly as the C packer does."""
    n = len(acc_counts)
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"a packet holds 1..{MAX_SAMPLES} samples, got {n}")
    with_gyro = gyr_counts is not None
    if with_gyro != bool(config.gyr_range_dps):
        raise ValueError("gyroscope samples iff the config has a gyroscope range")
    header = (
        bytes([VERSION, FLAG_GYRO if with_gyro else 0, n, config.acc_range_g])
        + config.gyr_range_dps.to_bytes(2, "little")
        + config.rate_hz.to_bytes(2, "little")
        + (counter % COUNTER_MODULO).to_bytes(4, "little")
        + (timestamp_us % 2**32).to_bytes(4, "little")
    )
    acc = np.asarray(acc_counts, dtype="<i2").reshape(n, 3)
    rows = np.hstack([acc, np.asarray(gyr_counts, dtype="<i2").reshape(n, 3)]) if with_gyro else acc
    return header + rows.astype("<i2").tobytes()


def decode_packet(data: bytes) -> DecodedSamples:
    what = "hipstride packet"
    binary.require(data, HEADER_BYTES, what)
    if data[0] != VERSION:
        raise DecodeError(f"{what}: protocol version {data[0]}, this hipstride reads {VERSION}")
    flags, n, acc_range = data[1], data[2], data[3]
    if flags & ~FLAG_GYRO:
        raise DecodeError(f"{what}: reserved flag bits set (0x{flags:02x})")
    if not 1 <= n <= MAX_SAMPLES:
        raise DecodeError(f"{what}: sample count {n} outside 1..{MAX_SAMPLES}")
    if acc_range not in ACC_RANGES_G:
        raise DecodeError(f"{what}: accelerometer range {acc_range} g not one of {ACC_RANGES_G}")
    gyr_range = binary.uint(data, 4, 2, what)
    with_gyro = bool(flags & FLAG_GYRO)
    if with_gyro and gyr_range not in GYR_RANGES_DPS:
        raise DecodeError(f"{what}: gyroscope range {gyr_range} deg/s not one of {GYR_RANGES_DPS}")
    channels = 6 if with_gyro else 3
    expected = HEADER_BYTES + n * channels * 2
    if len(data) != expected:
        raise DecodeError(f"{what}: {n} samples mean {expected} bytes, got {len(data)}")
    rate = binary.uint(data, 6, 2, what)
    if rate == 0:
        raise DecodeError(f"{what}: sample rate 0")
    counts = binary.int_array(data, HEADER_BYTES, n * channels, 2, what).reshape(n, channels)
    return DecodedSamples(
        acc_mps2=xyz(counts[:, :3], acc_range * GRAVITY_MPS2 / 32768.0),
        gyr_dps=xyz(counts[:, 3:], gyr_range / 32768.0) if with_gyro else None,
        sensor_time_s=binary.uint(data, 12, 4, what) * 1e-6,
        stamp_index=0,
        time_wrap_s=TIME_WRAP_S,
        sample_counter=binary.uint(data, 8, 4, what),
        counter_modulo=COUNTER_MODULO,
        rate_hz=float(rate),
    )


@dataclass
class HipstrideDecoder:
    name: str = NAME

    def feed(self, packet: bytes) -> list[Decoded]:
        return [decode_packet(packet)]

    def reset(self) -> None:
        """Stateless: every packet carries its own counter, clock and ranges."""


def make_decoder(options: Mapping[str, str] | None = None) -> HipstrideDecoder:
    if options:
        raise DecodeError(f"hipstride: takes no options, got {sorted(options)}")
    return HipstrideDecoder()
