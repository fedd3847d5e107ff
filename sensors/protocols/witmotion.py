"""WitMotion BWT901BLE (BLE 5.0 "WT901BLECL") inertial sensor.

Sources (facts only): WitMotion WT901BLECL datasheet v20-0707 section 6 "Communication
Protocol" and the "WIT Standard Communication Protocol" register map (wiki.wit-motion.com).

The sensor notifies on ``0000ffe4-0000-1000-8000-00805f9a34fb`` (service ``ffe5``; note
WitMotion's "9a34fb", not the SIG base "9b34fb") and takes commands on ``ffe9``. Default
packet, 20 bytes, no timestamp, no counter, no checksum::

    0x55 0x61  ax ay az  wx wy wz  roll pitch yaw      (int16 little-endian each)

    acc  = raw / 32768 * 16 g       (±16 g)
    gyro = raw / 32768 * 2000 deg/s (±2000 dps)
    angle = raw / 32768 * 180 deg   (not used: hipstride estimates orientation itself)

``0x55 0x71`` packets (register read replies) are also 20 bytes and are skipped. The
notifications form a byte stream: a header is only trusted when the next packet's
header follows 20 bytes later, or when a notification holds exactly whole packets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sensors.errors import DecodeError
from sensors.model import GRAVITY_MPS2
from sensors.protocols import binary
from sensors.protocols.types import Decoded, DecodedSamples, xyz

NAME = "witmotion"

SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"

PACKET_BYTES = 20
HEADER = 0x55
FLAG_IMU = 0x61
FLAG_REGISTER = 0x71
_FLAGS = (FLAG_IMU, FLAG_REGISTER)

ACC_RANGE_G = 16.0
GYR_RANGE_DPS = 2000.0
_ACC_SCALE = ACC_RANGE_G * GRAVITY_MPS2 / 32768.0
_GYR_SCALE = GYR_RANGE_DPS / 32768.0
#: A stream that never syncs must not grow memory without bound.
_MAX_BUFFER = 16 * PACKET_BYTES

#: Register 0x03 (RRATE) codes by output rate in Hz.
RATE_CODES = {0.2: 0x01, 0.5: 0x02, 1: 0x03, 2: 0x04, 5: 0x05, 10: 0x06, 20: 0x07,
              50: 0x08, 100: 0x09, 200: 0x0B}  # fmt: skip
UNLOCK_COMMAND = bytes([0xFF, 0xAA, 0x69, 0x88, 0xB5])
SAVE_COMMAND = bytes([0xFF, 0xAA, 0x00, 0x00, 0x00])


def rate_command(rate_hz: float) -> bytes:
    """``FF AA 03 <code> 00``: set the output rate (send :data:`UNLOCK_COMMAND` first)."""
    code = RATE_CODES.get(rate_hz)
    if code is None:
        raise ValueError(f"WitMotion rate {rate_hz} Hz not one of {sorted(RATE_CODES)}")
    return bytes([0xFF, 0xAA, 0x03, code, 0x00])


def decode_packet(packet: bytes, rate_hz: float | None = None) -> DecodedSamples:
    """One aligned ``55 61`` packet -> one sample."""
    binary.require(packet, PACKET_BYTES, "witmotion packet")
    if packet[0] != HEADER or packet[1] != FLAG_IMU:
        raise DecodeError(
            f"witmotion packet: expected header 55 61, got {packet[0]:02x} {packet[1]:02x}"
        )
    raw = binary.int_array(packet, 2, 9, 2, "witmotion packet")
    return DecodedSamples(
        acc_mps2=xyz(raw[0:3], _ACC_SCALE),
        gyr_dps=xyz(raw[3:6], _GYR_SCALE),
        rate_hz=rate_hz,
    )


def encode_packet(acc_mps2: np.ndarray, gyr_dps: np.ndarray) -> bytes:
    """The sensor's packet for one sample (angles sent as zero)."""
    acc = np.rint(np.asarray(acc_mps2) / _ACC_SCALE)
    gyr = np.rint(np.asarray(gyr_dps) / _GYR_SCALE)
    raw = np.clip(np.concatenate([acc, gyr, np.zeros(3)]), -32768, 32767).astype("<i2")
    return bytes([HEADER, FLAG_IMU]) + raw.tobytes()


def _is_header(buf: bytes | bytearray, i: int) -> bool:
    return buf[i] == HEADER and buf[i + 1] in _FLAGS


@dataclass
class WitMotionDecoder:
    """Cuts the notification byte stream into packets, resynchronising on ``55 61``."""

    rate_hz: float | None = 100.0
    name: str = NAME
    resync_bytes: int = 0  # bytes thrown away while hunting for a header
    _buf: bytearray | None = None

    def feed(self, packet: bytes) -> list[Decoded]:
        buf = self._buf if self._buf is not None else bytearray()
        fresh = not buf  # nothing carried over: this notification should start a packet
        buf += packet
        out: list[Decoded] = []
        start = 0
        while len(buf) - start >= PACKET_BYTES:
            if not _is_header(buf, start):
                start += 1
                self.resync_bytes += 1
                continue
            end = start + PACKET_BYTES
            if len(buf) - end >= 2 and not _is_header(buf, end):
                # A 0x55 0x61 inside the data, not a packet start: slide on by one.
                start += 1
                self.resync_bytes += 1
                continue
            if len(buf) - end == 1:
                break  # cannot confirm yet; wait for the next notification
            if buf[start + 1] == FLAG_IMU:
                out.append(decode_packet(bytes(buf[start:end]), self.rate_hz))
            start = end
        del buf[:start]
        if len(buf) > _MAX_BUFFER:
            self.resync_bytes += len(buf) - _MAX_BUFFER
            del buf[: len(buf) - _MAX_BUFFER]
        self._buf = buf
        if fresh and not out and len(packet) >= PACKET_BYTES and not _has_header(packet):
            raise DecodeError(
                f"witmotion: no 55 61 header in {len(packet)} bytes: {packet[:8].hex(' ')}..."
            )
        return out

    def reset(self) -> None:
        """A reconnect breaks the byte stream: never glue old bytes to new ones."""
        self._buf = None


def _has_header(data: bytes) -> bool:
    arr = np.frombuffer(data, dtype=np.uint8)
    hits = np.flatnonzero(arr[:-1] == HEADER)
    return bool(np.isin(arr[hits + 1], _FLAGS).any())


def make_decoder(options: Mapping[str, str] | None = None) -> WitMotionDecoder:
    """Options: ``rate_hz`` (default 100; the sensor's factory default is 10)."""
    opts = dict(options or {})
    unknown = set(opts) - {"rate_hz"}
    if unknown:
        raise DecodeError(f"witmotion: unknown option(s) {sorted(unknown)}; known: ['rate_hz']")
    return WitMotionDecoder(rate_hz=float(opts.get("rate_hz", 100.0)))
