"""WitMotion BWT901BLE: exact byte vectors from the WT901BLECL datasheet section 6.1.1.

Packet: 55 61, then int16 LE ax ay az wx wy wz roll pitch yaw; acc = raw/32768*16 g,
gyro = raw/32768*2000 deg/s. The vector PKT below encodes
ax = 0x0800 (2048 -> +1 g), ay = 0, az = 0xf800 (-2048 -> -1 g),
wx = 0x4000 (+1000 dps), wy = 0xc000 (-1000 dps), wz = 0x0001 (2000/32768 dps),
roll/pitch/yaw = 0x2000, 0xe000, 0x4000 (45, -45, 90 deg; not decoded).
"""

from __future__ import annotations

import numpy as np
import pytest

from sensors.errors import DecodeError
from sensors.model import GRAVITY_MPS2
from sensors.protocols import witmotion as wit

PKT = bytes.fromhex("55 61 00 08 00 00 00 f8 00 40 00 c0 01 00 00 20 00 e0 00 40")
ACC = np.array([[GRAVITY_MPS2, 0.0, -GRAVITY_MPS2]])
GYR = np.array([[1000.0, -1000.0, 2000 / 32768]])


def test_single_packet() -> None:
    out = wit.decode_packet(PKT, rate_hz=100)
    np.testing.assert_allclose(out.acc_mps2, ACC)
    np.testing.assert_allclose(out.gyr_dps, GYR)
    assert out.sensor_time_s is None and out.sample_counter is None
    assert out.rate_hz == 100


def test_full_scale_values() -> None:
    pkt = bytes.fromhex("55 61 ff 7f 00 80 00 00 ff 7f 00 80 00 00 00 00 00 00 00 00")
    out = wit.decode_packet(pkt)
    np.testing.assert_allclose(
        out.acc_mps2[0, :2], [32767 / 32768 * 16 * GRAVITY_MPS2, -16 * GRAVITY_MPS2]
    )
    np.testing.assert_allclose(out.gyr_dps[0, :2], [32767 / 32768 * 2000, -2000])


def test_stream_resyncs_after_garbage_and_split_notifications() -> None:
    decoder = wit.WitMotionDecoder()
    stream = bytes.fromhex("01 02 55") + PKT + PKT
    pieces = [stream[:7], stream[7:30], stream[30:]]  # cut mid-packet, mid-header
    outs = [sample for piece in pieces for sample in decoder.feed(piece)]
    assert len(outs) == 2
    np.testing.assert_allclose(outs[1].acc_mps2, ACC)
    assert decoder.resync_bytes == 3


def test_false_header_inside_data_is_not_trusted() -> None:
    # A truncated packet "55 61 11 22 33" then two good packets: the 55 61 at offset 0 is
    # not followed by a header 20 bytes later, so the decoder slides to the real packet.
    decoder = wit.WitMotionDecoder()
    outs = decoder.feed(bytes.fromhex("55 61 11 22 33") + PKT + PKT)
    assert len(outs) == 2
    assert decoder.resync_bytes == 5


def test_register_reply_packets_are_skipped() -> None:
    reply = bytes.fromhex("55 71 3a 00") + bytes(16)
    decoder = wit.WitMotionDecoder()
    assert len(decoder.feed(reply + PKT)) == 1


def test_waits_when_the_next_header_cannot_be_checked_yet() -> None:
    decoder = wit.WitMotionDecoder()
    assert decoder.feed(PKT + PKT[:1]) == []  # one byte of the next packet: undecided
    assert len(decoder.feed(PKT[1:])) == 2


def test_reset_forgets_partial_bytes() -> None:
    decoder = wit.WitMotionDecoder()
    decoder.feed(PKT[:12])
    decoder.reset()
    assert len(decoder.feed(PKT)) == 1


def test_rate_command() -> None:
    assert wit.rate_command(100) == bytes.fromhex("ff aa 03 09 00")
    assert wit.rate_command(200) == bytes.fromhex("ff aa 03 0b 00")
    with pytest.raises(ValueError, match="not one of"):
        wit.rate_command(150)


@pytest.mark.parametrize(
    ("packet", "message"),
    [
        (PKT[:10], "too short"),
        (bytes.fromhex("55 51") + PKT[2:], "expected header 55 61, got 55 51"),
    ],
)
def test_broken_single_packets(packet: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        wit.decode_packet(packet)


def test_notification_without_any_header_is_an_error() -> None:
    with pytest.raises(DecodeError, match="no 55 61 header"):
        wit.WitMotionDecoder().feed(bytes(range(1, 21)))


def test_encoder_matches_the_vector_apart_from_angles() -> None:
    assert wit.encode_packet(ACC[0], GYR[0]) == PKT[:14] + bytes(6)
