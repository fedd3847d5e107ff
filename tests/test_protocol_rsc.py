"""Running Speed and Cadence Measurement (0x2A53): vectors from the SIG RSC spec layout.

flags u8 (bit0 stride, bit1 distance, bit2 running), speed u16 1/256 m/s, cadence u8
1/min, [stride u16 1/100 m], [total distance u32 1/10 m].
"""

from __future__ import annotations

import pytest

from sensors.errors import DecodeError
from sensors.protocols import rsc
from sensors.protocols.types import RscMeasurement


def test_minimal_walking_measurement() -> None:
    # flags 00, speed 0x0300 = 768/256 = 3.0 m/s, cadence 0xb4 = 180
    m = rsc.decode_measurement(bytes.fromhex("00 00 03 b4"))
    assert m == RscMeasurement(3.0, 180, None, None, running=False)


def test_all_fields_running() -> None:
    # flags 07, speed 0x0380 = 3.5 m/s, cadence 0xaa = 170, stride 0x007b = 123 cm,
    # distance 0x000003e8 = 1000 dm = 100.0 m
    m = rsc.decode_measurement(bytes.fromhex("07 80 03 aa 7b 00 e8 03 00 00"))
    assert m == RscMeasurement(3.5, 170, 1.23, 100.0, running=True)


def test_distance_without_stride() -> None:
    # flags 06: distance follows cadence directly
    m = rsc.decode_measurement(bytes.fromhex("06 80 03 aa e8 03 00 00"))
    assert m.stride_length_m is None and m.total_distance_m == 100.0


def test_encode_round_trip() -> None:
    m = RscMeasurement(3.5, 170, 1.23, 100.0, running=True)
    assert rsc.encode_measurement(m) == bytes.fromhex("07 80 03 aa 7b 00 e8 03 00 00")


@pytest.mark.parametrize(
    ("hex_text", "message"),
    [
        ("", "too short"),
        ("00 00 03", "mean 4 bytes, got 3"),
        ("01 00 03 b4", "mean 6 bytes, got 4"),  # stride flagged but missing
        ("03 00 03 b4 7b 00 e8 03", "mean 10 bytes, got 8"),  # distance cut short
        ("00 00 03 b4 00", "mean 4 bytes, got 5"),  # trailing garbage
        ("08 00 03 b4", "reserved flag bits"),
    ],
)
def test_broken_measurements(hex_text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        rsc.decode_measurement(bytes.fromhex(hex_text))
