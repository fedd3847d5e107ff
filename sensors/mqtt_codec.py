"""Binary wire format of one raw sensor :class:`~sensors.model.Chunk` (MQTT ``raw`` topics).

Pure ``bytes <-> Chunk`` functions, no I/O: the collector encodes what it reads from a
sensor, ``hipstride run --source mqtt://...`` decodes. It lives in ``sensors`` beside
the other decoders because it describes sensor samples, not pipeline results, and a
collector can use it without importing the pipeline.

Layout, version 1, all little-endian (``docs/publishing.md`` has the full table)::

    0   2   magic b"HR"
    2   1   version (1)
    3   1   flags: bit 0 gyro present, bit 1 float32 samples, bit 2 end of stream
    4   1   placement code (see PLACEMENT_CODES)
    5   1   device id length L (bytes, UTF-8)
    6   4   sample count n (uint32)
    10  L   device id
    ..  8n  t_s, float64
    ..  3nw acc_mps2 x,y,z per sample (w = 4 with bit 1, else 8)
    ..  3nw gyr_dps x,y,z per sample, only with bit 0

float64 samples (the default) make a live run over MQTT reproduce a replay bit for bit;
float32 halves the payload at ~1e-7 relative error, far below any IMU's noise. Time is
always float64: float32 seconds would lose milliseconds after a few hours. There is no
checksum: MQTT runs over TCP, which already guards the bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from sensors.errors import DecodeError
from sensors.model import Chunk

MAGIC = b"HR"
VERSION = 1
HEADER = struct.Struct("<2sBBBBI")

FLAG_GYRO = 0x01
FLAG_FLOAT32 = 0x02
FLAG_END = 0x04
_KNOWN_FLAGS = FLAG_GYRO | FLAG_FLOAT32 | FLAG_END

#: Fixed here, not taken from the order of PLACEMENTS: the wire format must not change
#: when that tuple does.
PLACEMENT_CODES: dict[str, int] = {"pelvis": 0, "left_foot": 1, "right_foot": 2, "chest": 3}
_PLACEMENT_BY_CODE = {code: name for name, code in PLACEMENT_CODES.items()}


@dataclass(frozen=True, slots=True)
class RawPacket:
    """A decoded message: samples, or (``end``) the sensor's end-of-stream marker."""

    chunk: Chunk
    end: bool = False


def encode_chunk(chunk: Chunk, *, float32: bool = False) -> bytes:
    flags = (FLAG_GYRO if chunk.gyr_dps is not None else 0) | (FLAG_FLOAT32 if float32 else 0)
    sample = "<f4" if float32 else "<f8"
    parts = [
        _header(chunk.placement, chunk.device_id, flags, len(chunk)),
        np.ascontiguousarray(chunk.t_s, dtype="<f8").tobytes(),
        np.ascontiguousarray(chunk.acc_mps2, dtype=sample).tobytes(),
    ]
    if chunk.gyr_dps is not None:
        parts.append(np.ascontiguousarray(chunk.gyr_dps, dtype=sample).tobytes())
    return b"".join(parts)


def encode_end(placement: str, device_id: str = "") -> bytes:
    """The marker a collector sends when a sensor stops for good."""
    return _header(placement, device_id, FLAG_END, 0)


def _header(placement: str, device_id: str, flags: int, n: int) -> bytes:
    if placement not in PLACEMENT_CODES:
        raise ValueError(f"placement {placement!r} has no wire code")
    dev = device_id.encode("utf-8")
    if len(dev) > 255:
        raise ValueError(f"device id is {len(dev)} bytes in UTF-8; at most 255 fit")
    if n > 0xFFFFFFFF:
        raise ValueError("too many samples for one message")
    return HEADER.pack(MAGIC, VERSION, flags, PLACEMENT_CODES[placement], len(dev), n) + dev


def decode(payload: bytes) -> RawPacket:
    """Parse one message; a short, corrupt or unknown payload raises :class:`DecodeError`."""
    buf = bytes(payload)
    if len(buf) < HEADER.size:
        raise DecodeError(
            f"raw chunk: {len(buf)} bytes, shorter than the {HEADER.size}-byte header"
        )
    magic, version, flags, code, dev_len, n = HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise DecodeError(f"raw chunk: bad magic {magic!r} (expected {MAGIC!r})")
    if version != VERSION:
        raise DecodeError(f"raw chunk: version {version} not supported (this reads {VERSION})")
    if flags & ~_KNOWN_FLAGS:
        raise DecodeError(f"raw chunk: unknown flag bits 0x{flags & ~_KNOWN_FLAGS:02x}")
    placement = _PLACEMENT_BY_CODE.get(code)
    if placement is None:
        raise DecodeError(f"raw chunk: unknown placement code {code}")
    width = 4 if flags & FLAG_FLOAT32 else 8
    axes = 2 if flags & FLAG_GYRO else 1
    expected = HEADER.size + dev_len + n * (8 + 3 * width * axes)
    if len(buf) != expected:
        raise DecodeError(f"raw chunk: {len(buf)} bytes, expected {expected} for {n} samples")
    if flags & FLAG_END and n:
        raise DecodeError(f"raw chunk: end-of-stream marker carries {n} samples")
    try:
        device_id = buf[HEADER.size : HEADER.size + dev_len].decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("raw chunk: device id is not UTF-8") from None
    offset = HEADER.size + dev_len
    t = np.frombuffer(buf, "<f8", n, offset).astype(np.float64)
    offset += 8 * n
    dtype = "<f4" if width == 4 else "<f8"
    acc = np.frombuffer(buf, dtype, 3 * n, offset).astype(np.float64).reshape(n, 3)
    offset += 3 * width * n
    gyr = None
    if flags & FLAG_GYRO:
        gyr = np.frombuffer(buf, dtype, 3 * n, offset).astype(np.float64).reshape(n, 3)
    if not bool(np.isfinite(t).all()):
        raise DecodeError("raw chunk: t_s has a non-finite value")
    if n > 1 and not bool(np.all(np.diff(t) > 0)):
        raise DecodeError("raw chunk: t_s is not strictly increasing")
    return RawPacket(Chunk(placement, t, acc, gyr, device_id), end=bool(flags & FLAG_END))
