"""The raw-chunk wire format (sensors.mqtt_codec): exact bytes, round trips, broken input."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.errors import DecodeError
from sensors.model import PLACEMENTS, Chunk
from sensors.mqtt_codec import PLACEMENT_CODES, decode, encode_chunk, encode_end

# left_foot, device "L1", one sample t=0.5 s, acc (1, -2, 0.25), gyr (1.5, 0, -1), float32
VECTOR_F32_GYRO = bytes.fromhex(
    "4852"  # magic "HR"
    "01"  # version 1
    "03"  # flags: gyro | float32
    "01"  # placement left_foot
    "02"  # device id: 2 bytes
    "01000000"  # 1 sample
    "4c31"  # "L1"
    "000000000000e03f"  # t_s 0.5 (float64)
    "0000803f000000c00000803e"  # acc 1.0, -2.0, 0.25 (float32)
    "0000c03f00000000000080bf"  # gyr 1.5, 0.0, -1.0 (float32)
)

# pelvis, no device id, two samples t=1, 2 s, acc (0,0,1) and (0,0,2), float64, no gyro
VECTOR_F64 = bytes.fromhex(
    "4852" "01" "00" "00" "00" "02000000"
    "000000000000f03f" "0000000000000040"
    "0000000000000000" "0000000000000000" "000000000000f03f"
    "0000000000000000" "0000000000000000" "0000000000000040"
)  # fmt: skip

VECTOR_END = bytes.fromhex("4852" "01" "04" "03" "01" "00000000" "78")  # fmt: skip


def f32_chunk() -> Chunk:
    return Chunk(
        "left_foot",
        np.array([0.5]),
        np.array([[1.0, -2.0, 0.25]]),
        np.array([[1.5, 0.0, -1.0]]),
        "L1",
    )


def test_exact_bytes_float32_with_gyro() -> None:
    assert encode_chunk(f32_chunk(), float32=True) == VECTOR_F32_GYRO
    packet = decode(VECTOR_F32_GYRO)
    assert not packet.end
    assert packet.chunk.equals(f32_chunk())
    assert packet.chunk.device_id == "L1"


def test_exact_bytes_float64_accelerometer_only() -> None:
    chunk = Chunk("pelvis", np.array([1.0, 2.0]), np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]))
    assert encode_chunk(chunk) == VECTOR_F64
    back = decode(VECTOR_F64).chunk
    assert back.equals(chunk) and back.gyr_dps is None


def test_exact_bytes_end_marker() -> None:
    assert encode_end("chest", "x") == VECTOR_END
    packet = decode(VECTOR_END)
    assert packet.end and packet.chunk.placement == "chest" and len(packet.chunk) == 0


def test_float64_round_trip_is_bit_exact() -> None:
    rng = np.random.default_rng(7)
    n = 257
    chunk = Chunk(
        "right_foot",
        1e6 + np.cumsum(rng.uniform(0.001, 0.01, n)),
        rng.normal(0, 30, (n, 3)),
        rng.normal(0, 500, (n, 3)),
        "Movesense 2131 ü",
    )
    back = decode(encode_chunk(chunk)).chunk
    assert back.equals(chunk) and back.device_id == chunk.device_id
    assert back.t_s.flags.aligned and back.acc_mps2.flags.writeable


def test_float32_halves_the_samples_and_keeps_them_close() -> None:
    t = np.arange(100) / 200.0
    acc = np.random.default_rng(1).normal(0, 20, (100, 3))
    chunk = Chunk("pelvis", t, acc, acc * 10)
    small, full = encode_chunk(chunk, float32=True), encode_chunk(chunk)
    assert len(full) - len(small) == 100 * 6 * 4
    back = decode(small).chunk
    np.testing.assert_array_equal(back.t_s, t)  # time stays float64
    np.testing.assert_allclose(back.acc_mps2, acc, rtol=1e-6)


def test_every_placement_has_a_wire_code() -> None:
    assert set(PLACEMENT_CODES) == set(PLACEMENTS)
    assert len(set(PLACEMENT_CODES.values())) == len(PLACEMENT_CODES)


def _swap_first_two_times(v: bytes) -> bytes:
    return v[:10] + v[18:26] + v[10:18] + v[26:]


NAN_F64 = bytes.fromhex("000000000000f87f")
BROKEN = {
    "empty": (b"", "shorter than the 10-byte header"),
    "short header": (VECTOR_F64[:9], "shorter than"),
    "truncated": (VECTOR_F64[:-1], "73 bytes, expected 74 for 2 samples"),
    "trailing byte": (VECTOR_F64 + b"\x00", "75 bytes, expected 74"),
    "bad magic": (b"XX" + VECTOR_F64[2:], "bad magic"),
    "future version": (VECTOR_F64[:2] + b"\x02" + VECTOR_F64[3:], "version 2 not supported"),
    "unknown flag": (VECTOR_F64[:3] + b"\x80" + VECTOR_F64[4:], "unknown flag bits 0x80"),
    "bad placement": (VECTOR_F64[:4] + b"\x09" + VECTOR_F64[5:], "unknown placement code 9"),
    "device id overrun": (VECTOR_F32_GYRO[:5] + b"\x03" + VECTOR_F32_GYRO[6:], "expected"),
    "device id not utf8": (VECTOR_F32_GYRO[:10] + b"\xff\xfe" + VECTOR_F32_GYRO[12:], "UTF-8"),
    "time goes back": (_swap_first_two_times(VECTOR_F64), "not strictly increasing"),
    "time is nan": (VECTOR_F64[:10] + NAN_F64 + VECTOR_F64[18:], "non-finite"),
}


@pytest.mark.parametrize(("payload", "message"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_payloads_raise_decode_error(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(payload)


def test_end_marker_with_samples_is_refused() -> None:
    with_samples = bytearray(VECTOR_F64)
    with_samples[3] = 0x04
    with pytest.raises(DecodeError, match="end-of-stream marker carries 2 samples"):
        decode(bytes(with_samples))


def test_encoder_refuses_what_the_format_cannot_hold() -> None:
    chunk = Chunk("pelvis", np.array([0.0]), np.zeros((1, 3)), None, "x" * 256)
    with pytest.raises(ValueError, match="at most 255"):
        encode_chunk(chunk)
