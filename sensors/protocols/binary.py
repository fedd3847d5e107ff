"""The one place that reads little-endian integers out of sensor packets.

Every BLE protocol we speak is little-endian (Bluetooth Core Spec Vol 3 Part F 3.2.9 for
ATT values; Polar PMD, Movesense and WitMotion follow it too). Decoders use these helpers
so that bounds checks and error messages are the same everywhere.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sensors.errors import DecodeError

IntArray = npt.NDArray[np.int64]


def require(data: bytes, size: int, what: str, *, offset: int = 0) -> None:
    """Raise :class:`DecodeError` unless ``data[offset:offset + size]`` exists."""
    if len(data) < offset + size:
        raise DecodeError(f"{what}: packet too short: need {offset + size} bytes, got {len(data)}")


def uint(data: bytes, offset: int, size: int, what: str) -> int:
    """Unsigned little-endian integer of ``size`` bytes at ``offset``."""
    require(data, size, what, offset=offset)
    return int.from_bytes(data[offset : offset + size], "little", signed=False)


def sint(data: bytes, offset: int, size: int, what: str) -> int:
    """Signed (two's complement) little-endian integer of ``size`` bytes at ``offset``."""
    require(data, size, what, offset=offset)
    return int.from_bytes(data[offset : offset + size], "little", signed=True)


def int_array(data: bytes, offset: int, count: int, size: int, what: str) -> IntArray:
    """``count`` signed little-endian integers of ``size`` bytes (1-4) as int64.

    Sizes 1, 2 and 4 map straight onto numpy dtypes; 3-byte integers (Polar's 24-bit
    frames) are assembled from bytes and sign-extended.
    """
    nbytes = count * size
    require(data, nbytes, what, offset=offset)
    raw = np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset)
    if size in (1, 2, 4):
        return raw.view(f"<i{size}").astype(np.int64)
    if size != 3:
        raise ValueError(f"unsupported integer size {size}")
    b = raw.reshape(count, 3).astype(np.int64)
    value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    return np.where(value >= 1 << 23, value - (1 << 24), value)


def float32_array(data: bytes, offset: int, count: int, what: str) -> npt.NDArray[np.float64]:
    """``count`` little-endian IEEE-754 float32 values as float64."""
    require(data, 4 * count, what, offset=offset)
    return np.frombuffer(data, dtype="<f4", count=count, offset=offset).astype(np.float64)


def signed_bits(data: bytes, count: int, width: int) -> IntArray:
    """``count`` two's complement fields of ``width`` bits, packed LSB first.

    This is the bit order of Polar's delta frames: bit 0 of the first byte is bit 0 of
    the first field. Vectorised so a 100-sample frame costs one numpy pass.
    """
    if width == 0:
        return np.zeros(count, dtype=np.int64)
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    bits = flat[: count * width].reshape(count, width).astype(np.int64)
    weights = np.left_shift(np.int64(1), np.arange(width, dtype=np.int64))
    value = bits @ weights
    return np.where(value >= 1 << (width - 1), value - (1 << width), value)


def pack_signed_bits(values: IntArray, width: int) -> bytes:
    """Inverse of :func:`signed_bits`: fields of ``width`` bits, LSB first, zero padded."""
    if width == 0:
        return b""
    fields = np.asarray(values, dtype=np.int64) & ((1 << width) - 1)
    bits = (fields[:, None] >> np.arange(width, dtype=np.int64)) & 1
    return np.packbits(bits.astype(np.uint8).ravel(), bitorder="little").tobytes()


def bits_needed(values: IntArray) -> int:
    """Smallest two's complement width holding every value (0 if all are zero)."""
    if len(values) == 0:
        return 0
    hi, lo = int(np.max(values)), int(np.min(values))
    if hi == 0 and lo == 0:
        return 0
    need_hi = hi.bit_length() + 1 if hi > 0 else 1
    need_lo = (-lo - 1).bit_length() + 1 if lo < 0 else 1
    return max(need_hi, need_lo)


def hex_bytes(text: str) -> bytes:
    """Bytes from hex text, tolerating spaces, colons and a ``0x`` prefix."""
    cleaned = text.strip().lower().removeprefix("0x")
    for sep in (" ", ":", "-", "_"):
        cleaned = cleaned.replace(sep, "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError as err:
        raise DecodeError(f"not hexadecimal: {text!r}") from err
