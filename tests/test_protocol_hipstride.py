"""hipstride open profile v1: vectors written from firmware_stubs/PROTOCOL.md."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.errors import DecodeError
from sensors.model import GRAVITY_MPS2
from sensors.protocols import hipstride_profile as hp

CONFIG = hp.StreamConfig(rate_hz=208, acc_range_g=16, gyr_range_dps=2000)

# version 01 | flags 01 gyro | n 01 | acc 10 = 16 g | gyr d0 07 = 2000 | rate d0 00 = 208 |
# counter ff ff ff ff | timestamp 04 03 02 01 = 0x01020304 us |
# acc (2048, -2048, 32767) = 00 08 00 f8 ff 7f | gyr (-32768, 0, 16384) = 00 80 00 00 00 40
PACKET = bytes.fromhex(
    "01 01 01 10 d0 07 d0 00 ff ff ff ff 04 03 02 01 00 08 00 f8 ff 7f 00 80 00 00 00 40"
)


def test_start_and_stop_commands() -> None:
    # 01 | rate d0 00 | acc 10 | gyr d0 07
    assert hp.start_command(CONFIG) == bytes.fromhex("01 d0 00 10 d0 07")
    assert hp.stop_command() == bytes.fromhex("02")
    assert hp.parse_command(bytes.fromhex("01 d0 00 10 d0 07")) == CONFIG
    assert hp.parse_command(bytes.fromhex("02")) is None


def test_decode_known_packet() -> None:
    out = hp.decode_packet(PACKET)
    g = GRAVITY_MPS2
    np.testing.assert_allclose(out.acc_mps2, [[g, -g, 32767 / 2048 * g]])
    np.testing.assert_allclose(out.gyr_dps, [[-2000.0, 0.0, 1000.0]])
    assert out.sample_counter == 0xFFFFFFFF and out.counter_modulo == 2**32
    assert out.sensor_time_s == pytest.approx(0x01020304 * 1e-6)
    assert out.stamp_index == 0 and out.rate_hz == 208


def test_python_packer_produces_the_vector() -> None:
    packet = hp.pack_packet(
        CONFIG,
        counter=0xFFFFFFFF,
        timestamp_us=0x01020304,
        acc_counts=np.array([[2048, -2048, 32767]], dtype=np.int16),
        gyr_counts=np.array([[-32768, 0, 16384]], dtype=np.int16),
    )
    assert packet == PACKET


def test_accelerometer_only_packet() -> None:
    config = hp.StreamConfig(rate_hz=100, acc_range_g=8, gyr_range_dps=0)
    acc = np.array([[1, 2, 3], [-1, -2, -3]], dtype=np.int16)
    packet = hp.pack_packet(config, counter=5, timestamp_us=0, acc_counts=acc)
    assert packet[:4] == bytes.fromhex("01 00 02 08") and len(packet) == 16 + 2 * 6
    out = hp.decode_packet(packet)
    assert out.gyr_dps is None
    np.testing.assert_allclose(out.acc_mps2, acc * 8 * GRAVITY_MPS2 / 32768)


def test_quantize_rounds_and_clips() -> None:
    counts = hp.quantize(np.array([1.0, -1.0, 100.0, 3 / 8192]), full_scale=16.0)  # 0.75 count
    assert counts.tolist() == [2048, -2048, 32767, 1]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({0: 2}, "protocol version 2"),
        ({1: 0x03}, "reserved flag bits"),
        ({2: 0}, "sample count 0"),
        ({2: 20}, "sample count 20"),
        ({2: 2}, "2 samples mean 40 bytes, got 28"),
        ({3: 3}, "accelerometer range 3 g"),
        ({4: 0, 5: 0}, "gyroscope range 0"),
        ({6: 0, 7: 0}, "sample rate 0"),
    ],
)
def test_broken_packets(patch: dict[int, int], message: str) -> None:
    data = bytearray(PACKET)
    for index, value in patch.items():
        data[index] = value
    with pytest.raises(DecodeError, match=message):
        hp.decode_packet(bytes(data))


def test_short_packet() -> None:
    with pytest.raises(DecodeError, match="too short"):
        hp.decode_packet(PACKET[:10])


@pytest.mark.parametrize(
    ("hex_text", "message"),
    [("03", "unknown or malformed"), ("01 d0 00 10", "unknown or malformed"),
     ("01 d0 00 03 d0 07", "acc_range_g"), ("01 00 00 10 d0 07", "rate_hz")],
)  # fmt: skip
def test_broken_commands(hex_text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        hp.parse_command(bytes.fromhex(hex_text))
