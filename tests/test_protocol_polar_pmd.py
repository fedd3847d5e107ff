"""Polar PMD: exact byte vectors hand-built from the Polar Measurement Data spec.

Layouts: polar-ble-sdk technical_documentation/Polar_Measurement_Data_Specification.pdf
(frame header, control point), TimeSystemExplained.md (ns since 2000, example
timestamp 599616023171427290), and the SDK's delta-frame description (reference sample,
then [width][count][bits LSB first] blocks). Every vector below is written out by hand;
the comment under each says how its bytes were derived.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensors.errors import DecodeError
from sensors.model import GRAVITY_MPS2
from sensors.protocols import polar_pmd as pmd

G = GRAVITY_MPS2 / 1000.0  # m/s² per milli-g

# 599616023171427290 ns (TimeSystemExplained.md example) as uint64 LE.
TS = "da eb c3 9e 98 43 52 08"
TS_S = 599616023171427290e-9


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# ------------------------------------------------------------ control point


def test_h10_acc_start_command_matches_spec_example() -> None:
    # op 02 start, type 02 ACC, [00 01 c8 00] 200 Hz, [01 01 10 00] 16 bit, [02 01 08 00] 8 g
    cmd = pmd.start_command(pmd.Measurement.ACC, pmd.H10_ACC)
    assert cmd == h("02 02 00 01 c8 00 01 01 10 00 02 01 08 00")


def test_verity_gyro_start_and_stop_commands() -> None:
    # 52 Hz = 0x0034, 2000 dps = 0x07d0
    cmd = pmd.start_command(pmd.Measurement.GYRO, pmd.VERITY_GYRO)
    assert cmd == h("02 05 00 01 34 00 01 01 10 00 02 01 d0 07")
    assert pmd.stop_command(pmd.Measurement.GYRO) == h("03 05")
    assert pmd.settings_query_command(pmd.Measurement.ACC) == h("01 02")


def test_start_response_factor_is_applied() -> None:
    # F0 op=02 type=02 status=00 more=00, then FACTOR (05) x1: float32 1000/4096 = 3e7a0000
    response = pmd.parse_control_response(h("f0 02 02 00 00 05 01 00 00 7a 3e"))
    assert response.ok and not response.more
    settings = pmd.apply_start_response(pmd.VERITY_ACC, response)
    assert settings.factor == pytest.approx(0.244140625)


def test_start_refused_names_the_reason() -> None:
    response = pmd.parse_control_response(h("f0 02 02 08"))  # status 8
    assert not response.ok
    with pytest.raises(DecodeError, match="invalid sample rate"):
        pmd.apply_start_response(pmd.VERITY_ACC, response)


def test_settings_response_lists_choices() -> None:
    # rate {52, 104}, resolution {16}, range {2, 8}
    params = h("00 02 34 00 68 00 01 01 10 00 02 02 02 00 08 00")
    settings = pmd.parse_settings(params)
    assert settings[pmd.SettingType.SAMPLE_RATE] == [52, 104]
    assert settings[pmd.SettingType.RANGE] == [2, 8]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (h("f0 02"), "too short"),
        (h("e0 02 02 00"), "expected 0xF0"),
    ],
)
def test_bad_control_responses(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        pmd.parse_control_response(data)


def test_settings_with_unknown_type_or_truncated_value() -> None:
    with pytest.raises(DecodeError, match="unknown setting type 9"):
        pmd.parse_settings(h("09 01 00 00"))
    with pytest.raises(DecodeError, match="too short"):
        pmd.parse_settings(h("00 01 34"))


# ------------------------------------------------------------ raw frames (H10)


def test_h10_raw_int16_frame() -> None:
    # 02 ACC | timestamp | 01 raw type 1 | (0, 0, 1000) (-1000, 500, 1000) mG int16 LE
    frame = h(f"02 {TS} 01 00 00 00 00 e8 03 18 fc f4 01 e8 03")
    out = pmd.decode_frame(frame, pmd.H10_ACC)
    assert out.gyr_dps is None and out.acc_mps2 is not None
    np.testing.assert_allclose(out.acc_mps2, np.array([[0, 0, 1000], [-1000, 500, 1000]]) * G)
    # The PMD timestamp belongs to the LAST sample.
    assert out.stamp_index == 1
    assert out.sensor_time_s == pytest.approx(TS_S, abs=1e-6)
    assert out.rate_hz == 200


def test_raw_int8_and_int24_frames() -> None:
    # type 0: int8 (1, -1, 127); type 2: int24 (-1, 0x010000, 2) = ffffff 000001 020000
    out0 = pmd.decode_frame(h(f"02 {TS} 00 01 ff 7f"), pmd.H10_ACC)
    np.testing.assert_allclose(out0.acc_mps2, np.array([[1, -1, 127]]) * G)
    out2 = pmd.decode_frame(h(f"02 {TS} 02 ff ff ff 00 00 01 02 00 00"), pmd.H10_ACC)
    np.testing.assert_allclose(out2.acc_mps2, np.array([[-1, 65536, 2]]) * G)


# ------------------------------------------------------------ delta frames (Verity)

# Reference (100, -200, 1000) int16 = 64 00 | 38 ff | e8 03.
# Block 1: width 4, count 2, deltas (+1,-1,+7) (-8,0,+2) as 4-bit fields LSB first:
#   f0|f1<<4 = 1|f<<4 = f1, 7|8<<4 = 87, 0|2<<4 = 20          -> 04 02 f1 87 20
# Block 2: width 3, count 1, deltas (+3,-4,-1) = 011 100 111, bit stream LSB first
#   1,1,0,0,0,1,1,1 | 1 -> e3 01                               -> 03 01 e3 01
DELTA_BODY = "64 00 38 ff e8 03 04 02 f1 87 20 03 01 e3 01"
DELTA_SAMPLES = np.array([[100, -200, 1000], [101, -201, 1007], [93, -201, 1009], [96, -205, 1008]])


def test_compressed_acc_type1_with_factor() -> None:
    settings = pmd.PmdSettings(sample_rate_hz=52, factor=0.5)
    out = pmd.decode_frame(h(f"02 {TS} 81 {DELTA_BODY}"), settings)
    np.testing.assert_allclose(out.acc_mps2, DELTA_SAMPLES * 0.5 * G)
    assert out.stamp_index == 3 and out.rate_hz == 52


def test_compressed_acc_without_factor_uses_one_like_the_sdk() -> None:
    out = pmd.decode_frame(h(f"02 {TS} 81 {DELTA_BODY}"), pmd.VERITY_ACC)
    np.testing.assert_allclose(out.acc_mps2, DELTA_SAMPLES * G)


def test_compressed_acc_type0_carries_g() -> None:
    settings = pmd.PmdSettings(sample_rate_hz=52, factor=0.001)  # raw * 0.001 g
    out = pmd.decode_frame(h(f"02 {TS} 80 {DELTA_BODY}"), settings)
    np.testing.assert_allclose(out.acc_mps2, DELTA_SAMPLES * GRAVITY_MPS2 * 0.001)


def test_compressed_gyro_with_factor() -> None:
    # 05 GYRO | ts | 80 | ref (1000,-1000,0) = e8 03 18 fc 00 00 | width 8 count 1: 7f 80 00
    frame = h(f"05 {TS} 80 e8 03 18 fc 00 00 08 01 7f 80 00")
    settings = pmd.PmdSettings(sample_rate_hz=52, range=2000, factor=2000 / 32768)
    out = pmd.decode_frame(frame, settings)
    assert out.acc_mps2 is None
    np.testing.assert_allclose(
        out.gyr_dps,
        np.array([[1000, -1000, 0], [1127, -1128, 0]]) * (2000 / 32768),
    )


def test_decoder_applies_start_response_per_stream() -> None:
    decoder = pmd.PolarPmdDecoder()
    decoder.on_control_response(h("f0 02 02 00 00 05 01 00 00 00 3f"))  # ACC factor 0.5
    (out,) = decoder.feed(h(f"02 {TS} 81 {DELTA_BODY}"))
    np.testing.assert_allclose(out.acc_mps2, DELTA_SAMPLES * 0.5 * G)


# ------------------------------------------------------------ broken frames


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (h("02 da eb c3 9e 98"), "too short"),  # header cut inside the timestamp
        (h(f"02 {TS} 01 00 00 00 00 e8"), "not a whole number"),  # 5 bytes of int16 triplets
        (h(f"02 {TS} 05 00 00 00"), "unknown raw ACC frame type"),
        (h(f"02 {TS} 83 {DELTA_BODY}"), "unknown compressed ACC frame type"),
        (h(f"00 {TS} 00 01 02 03"), "ECG.*not supported"),
        (h(f"05 {TS} 00 01 02 03 04 05 06"), "unsupported"),  # raw gyro frame
        (h(f"02 {TS} 81 64 00 38 ff"), "reference sample.*too short"),
        (h(f"02 {TS} 81 64 00 38 ff e8 03 04 02 f1 87"), "delta block.*too short"),
        (h(f"02 {TS} 81 64 00 38 ff e8 03 04"), "delta block header.*too short"),
        (h(f"02 {TS} 81 64 00 38 ff e8 03 21 01 00"), "corrupt delta block"),  # width 33
        (h(f"02 {TS} 81 64 00 38 ff e8 03 04 00"), "corrupt delta block"),  # count 0
    ],
)
def test_broken_frames_raise_clear_errors(frame: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        pmd.decode_frame(frame, pmd.VERITY_ACC)


def test_frame_for_a_stream_never_started() -> None:
    decoder = pmd.PolarPmdDecoder(settings={pmd.Measurement.ACC: pmd.H10_ACC})
    with pytest.raises(DecodeError, match="no stream started for GYRO"):
        decoder.feed(h(f"05 {TS} 80 e8 03 18 fc 00 00"))


# ------------------------------------------------------------ encoder round trips


@pytest.mark.parametrize("n", [1, 2, 36, 300])
def test_compressed_encoder_round_trip(n: int) -> None:
    rng = np.random.default_rng(n)
    counts = np.cumsum(rng.integers(-300, 300, size=(n, 3)), axis=0)
    frame = pmd.encode_frame(pmd.Measurement.ACC, 123, counts, compressed=True)
    out = pmd.decode_frame(frame, pmd.VERITY_ACC)
    np.testing.assert_allclose(out.acc_mps2, counts * G)


def test_raw_encoder_round_trip_and_matches_hand_vector() -> None:
    counts = np.array([[0, 0, 1000], [-1000, 500, 1000]])
    frame = pmd.encode_frame(pmd.Measurement.ACC, 599616023171427290, counts, compressed=False)
    assert frame == h(f"02 {TS} 01 00 00 00 00 e8 03 18 fc f4 01 e8 03")


def test_start_response_encoder() -> None:
    data = pmd.encode_control_response(2, 2, 0, pmd.factor_parameters(0.5))
    assert data == h("f0 02 02 00 00 05 01 00 00 00 3f")


def test_control_responses_in_the_raw_stream_set_the_factor() -> None:
    # Recordings keep control point responses among the data frames, so replay works.
    decoder = pmd.PolarPmdDecoder()
    assert decoder.feed(h("f0 02 02 00 00 05 01 00 00 00 3f")) == []
    (out,) = decoder.feed(h(f"02 {TS} 81 {DELTA_BODY}"))
    np.testing.assert_allclose(out.acc_mps2, DELTA_SAMPLES * 0.5 * G)
    with pytest.raises(DecodeError, match="start of GYRO refused: invalid range"):
        decoder.feed(h("f0 02 05 09"))
