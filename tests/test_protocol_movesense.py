"""Movesense GATT SensorData Protocol: exact byte vectors.

Command layout ``[op][ref][path]`` and notification layout ``[kind][ref][payload]`` with
kinds 1 result / 2 DATA / 3 DATA_PART2 are from movesense.com/docs/esw/
gatt_sensordata_protocol and the gatt_sensordata_app Python client; the IMU6 payload
(uint32 ms, n acc triplets, n gyro triplets, float32 LE) from the same client. Floats
below are exactly representable so the vectors can be read by eye:
1.0 = 0000803f, -2.5 = 000020c0, 9.75 = 00001c41, 0.5 = 0000003f, -0.25 = 000080be,
9.5 = 00001841, 100.0 = 0000c842, -45.25 = 000035c2, 0.125 = 0000003e, 3.0 = 00004040,
-7.5 = 0000f0c0, 0.0 = 00000000.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensors.errors import DecodeError
from sensors.protocols import movesense as ms


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# 123456 ms = 40 e2 01 00
TS = "40 e2 01 00"
ACC = "0000803f 000020c0 00001c41  0000003f 000080be 00001841"  # (1,-2.5,9.75) (0.5,-0.25,9.5)
GYR = "0000c842 000035c2 0000003e  00004040 0000f0c0 00000000"  # (100,-45.25,.125) (3,-7.5,0)
PAYLOAD = h(f"{TS} {ACC} {GYR}")  # 4 + 2 * 24 = 52 bytes


def test_subscribe_and_unsubscribe_commands() -> None:
    # [01 subscribe][63 = ref 99] + ASCII "/Meas/IMU6/104"
    assert ms.subscribe_command("/Meas/IMU6/104", 99) == h(
        "01 63 2f 4d 65 61 73 2f 49 4d 55 36 2f 31 30 34"
    )
    assert ms.unsubscribe_command(99) == h("02 63")
    assert ms.hello_command(1) == h("00 01")


def test_subscribe_rejects_unknown_resources() -> None:
    with pytest.raises(DecodeError, match="rate 100 Hz"):
        ms.subscribe_command("/Meas/IMU6/100")
    with pytest.raises(DecodeError, match="unsupported resource"):
        ms.subscribe_command("/Meas/ECG/250")


def test_single_data_notification() -> None:
    decoder = ms.MovesenseDecoder()
    (out,) = decoder.feed(h("02 63") + PAYLOAD)
    np.testing.assert_array_equal(out.acc_mps2, [[1, -2.5, 9.75], [0.5, -0.25, 9.5]])
    np.testing.assert_array_equal(out.gyr_dps, [[100, -45.25, 0.125], [3, -7.5, 0]])
    assert out.sensor_time_s == pytest.approx(123.456)
    assert out.stamp_index == 0
    assert out.rate_hz == 104


@pytest.mark.parametrize("mtu", [None, 43])
def test_data_part2_is_reassembled(mtu: int | None) -> None:
    # ATT MTU 43 -> 40-byte notifications: DATA carries 38 payload bytes, PART2 the last 14.
    decoder = ms.make_decoder({"mtu": str(mtu)} if mtu else None)
    first, second = h("02 63") + PAYLOAD[:38], h("03 63") + PAYLOAD[38:]
    assert decoder.feed(first) == []
    assert decoder.pending
    (out,) = decoder.feed(second)
    np.testing.assert_array_equal(out.gyr_dps, [[100, -45.25, 0.125], [3, -7.5, 0]])


def test_lost_part2_is_counted_and_next_message_still_decodes() -> None:
    decoder = ms.MovesenseDecoder()
    decoder.feed(h("02 63") + PAYLOAD[:38])
    (out,) = decoder.feed(h("02 63") + PAYLOAD)
    assert len(out) == 2
    assert decoder.dropped_messages == 1


def test_reset_drops_half_message() -> None:
    decoder = ms.MovesenseDecoder()
    decoder.feed(h("02 63") + PAYLOAD[:38])
    decoder.reset()
    with pytest.raises(DecodeError, match="DATA_PART2 without its DATA"):
        decoder.feed(h("03 63") + PAYLOAD[38:])


def test_command_result_is_kept() -> None:
    decoder = ms.MovesenseDecoder()
    assert decoder.feed(h("01 63 c8 00")) == []  # status 200
    assert decoder.last_result == ms.CommandResult(reference=99, status=200)


def test_imu9_magnetometer_block_is_skipped() -> None:
    decoder = ms.make_decoder({"path": "/Meas/IMU9/52"})
    magn = "00000000 00000000 00000000  00000000 00000000 00000000"
    (out,) = decoder.feed(h(f"02 63 {TS} {ACC} {GYR} {magn}"))
    np.testing.assert_array_equal(out.gyr_dps, [[100, -45.25, 0.125], [3, -7.5, 0]])


@pytest.mark.parametrize(
    ("packets", "message"),
    [
        ([h("02")], "too short"),
        ([h("07 63 00")], "unknown notification kind 7"),
        ([h("02 64") + PAYLOAD], "reference 100, subscribed as 99"),
        ([h("02 63 40 e2 01 00 00 00")], "too short"),
        ([h("01 63 c8")], "command result.*too short"),
    ],
)
def test_broken_notifications(packets: list[bytes], message: str) -> None:
    decoder = ms.MovesenseDecoder(max_payload_bytes=244)
    with pytest.raises(DecodeError, match=message):
        for packet in packets:
            decoder.feed(packet)


def test_truncated_complete_message_is_reported() -> None:
    # With the MTU known, a short DATA is final; 28 sample bytes is not n * 24.
    decoder = ms.MovesenseDecoder(max_payload_bytes=244)
    with pytest.raises(DecodeError, match="not a whole number"):
        decoder.feed(h("02 63") + PAYLOAD[:32])


def test_encoder_splits_like_the_sensor_and_round_trips() -> None:
    acc = np.arange(24, dtype=np.float64).reshape(8, 3)
    gyr = -acc
    parts = ms.encode_data(99, 123456, acc, gyr, max_payload_bytes=158)  # ATT MTU 161
    assert [p[0] for p in parts] == [ms.KIND_DATA, ms.KIND_DATA_PART2]
    decoder = ms.MovesenseDecoder(max_payload_bytes=158)
    out = [r for p in parts for r in decoder.feed(p)]
    np.testing.assert_array_equal(out[0].gyr_dps, gyr)
    assert len(ms.encode_data(99, 0, acc, gyr)) == 1  # fits one MTU-247 notification
