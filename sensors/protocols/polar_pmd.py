"""Polar Measurement Data (PMD) service: Verity Sense acc + gyro, H10 acc.

Sources (facts only, no code taken): Polar BLE SDK, ``technical_documentation/
Polar_Measurement_Data_Specification.pdf`` and ``TimeSystemExplained.md``, and the
SDK's Android parser (``BlePMDClient.kt``, ``PmdSetting.kt``, ``AccData.kt``,
``GyrData.kt``), github.com/polarofficial/polar-ble-sdk.

Wire format of a data notification (PMD Data characteristic, notify)::

    byte 0      measurement type (low 6 bits): 2 = ACC, 5 = GYRO
    bytes 1-8   uint64 timestamp, ns since 2000-01-01T00:00:00Z, of the LAST sample
    byte 9      frame type: bit 7 = delta compressed, bits 0-6 = type number
    bytes 10-   samples

Raw ACC frames (H10): type 0/1/2 = int8/int16/int24 x, y, z per sample, in milli-g.
Compressed frames (Verity Sense): one reference sample (``resolution`` bits per channel,
rounded up to whole bytes), then blocks of ``[delta_bits u8][count u8][count * channels
* delta_bits bits, LSB first]``; each delta adds to the previous sample. The raw values
are multiplied by the FACTOR the sensor returns in its start response (milli-g for ACC
type 1, g for ACC type 0, deg/s for GYRO type 0).

Control point (write, responses by indication)::

    request:  [op][type][setting_type][count=1][value LE]...
              op 1 = get settings, 2 = start, 3 = stop
              setting 0 = sample rate (u16), 1 = resolution (u16), 2 = range (u16),
                      3 = range milli-unit (u32), 4 = channels (u8), 5 = factor (f32)
    response: [0xF0][op][type][status][more][parameters...]
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np

from sensors.errors import DecodeError
from sensors.model import GRAVITY_MPS2
from sensors.protocols import binary
from sensors.protocols.types import Decoded, DecodedSamples, xyz

NAME = "polar-pmd"

SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

HEADER_BYTES = 10
RESPONSE_CODE = 0xF0
_MEASUREMENT_MASK = 0x3F
_COMPRESSED_BIT = 0x80
_SECONDS_PER_NS = 1e-9
_MPS2_PER_MILLI_G = GRAVITY_MPS2 / 1000.0


class Measurement(IntEnum):
    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAG = 6


class Op(IntEnum):
    GET_SETTINGS = 1
    START = 2
    STOP = 3


class SettingType(IntEnum):
    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5


#: Bytes per value of each setting type (``PmdSetting.typeToFieldSize``).
_SETTING_SIZE = {
    SettingType.SAMPLE_RATE: 2,
    SettingType.RESOLUTION: 2,
    SettingType.RANGE: 2,
    SettingType.RANGE_MILLIUNIT: 4,
    SettingType.CHANNELS: 1,
    SettingType.FACTOR: 4,
}

#: Control point status codes, for error messages a user can act on.
STATUS_TEXT = {
    0: "success",
    1: "invalid op code",
    2: "invalid measurement type",
    3: "not supported",
    4: "invalid length",
    5: "invalid parameter",
    6: "already in state",
    7: "invalid resolution",
    8: "invalid sample rate",
    9: "invalid range",
    10: "invalid MTU",
    11: "invalid number of channels",
    12: "invalid state",
    13: "device in charger",
    14: "disk full",
}


@dataclass(frozen=True, slots=True)
class PmdSettings:
    """What was asked of one stream, plus the FACTOR the sensor answered with.

    ``range`` is in g for ACC and deg/s for GYRO. ``factor`` is ``None`` until the start
    response arrived; compressed frames then fall back to 1.0 as the Polar SDK does.
    """

    sample_rate_hz: int
    resolution_bits: int = 16
    range: int = 8
    factor: float | None = None


#: Settings we ask for: Verity Sense runs ACC/GYRO at 52 Hz; H10 ACC goes to 200 Hz.
VERITY_ACC = PmdSettings(sample_rate_hz=52, resolution_bits=16, range=8)
VERITY_GYRO = PmdSettings(sample_rate_hz=52, resolution_bits=16, range=2000)
H10_ACC = PmdSettings(sample_rate_hz=200, resolution_bits=16, range=8)


# ---------------------------------------------------------------- control point


def start_command(measurement: Measurement, settings: PmdSettings) -> bytes:
    """Control point bytes that start ``measurement`` with ``settings``.

    Order sample rate, resolution, range, as the SDK serialises them; e.g. H10 ACC at
    200 Hz, 16 bit, 8 g is ``02 02 00 01 c8 00 01 01 10 00 02 01 08 00``.
    """
    out = bytearray([Op.START, measurement])
    for kind, value in (
        (SettingType.SAMPLE_RATE, settings.sample_rate_hz),
        (SettingType.RESOLUTION, settings.resolution_bits),
        (SettingType.RANGE, settings.range),
    ):
        out += bytes([kind, 1]) + value.to_bytes(_SETTING_SIZE[kind], "little")
    return bytes(out)


def stop_command(measurement: Measurement) -> bytes:
    return bytes([Op.STOP, measurement])


def settings_query_command(measurement: Measurement) -> bytes:
    return bytes([Op.GET_SETTINGS, measurement])


@dataclass(frozen=True, slots=True)
class ControlResponse:
    op: int
    measurement: int
    status: int
    more: bool
    parameters: bytes

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def status_text(self) -> str:
        return STATUS_TEXT.get(self.status, f"unknown status {self.status}")


def parse_control_response(data: bytes) -> ControlResponse:
    """Parse a control point indication ``F0 op type status [more] [params]``."""
    binary.require(data, 4, "PMD control response")
    if data[0] != RESPONSE_CODE:
        raise DecodeError(f"PMD control response: expected 0xF0, got 0x{data[0]:02x}")
    status = data[3]
    ok = status == 0
    return ControlResponse(
        op=data[1],
        measurement=data[2] & _MEASUREMENT_MASK,
        status=status,
        more=ok and len(data) > 4 and data[4] != 0,
        parameters=bytes(data[5:]) if ok else b"",
    )


def parse_settings(parameters: bytes) -> dict[SettingType, list[float]]:
    """Settings TLVs ``[type][count][values]...`` (start/settings response parameters)."""
    out: dict[SettingType, list[float]] = {}
    offset = 0
    while offset < len(parameters):
        code = parameters[offset]
        try:
            kind = SettingType(code)
        except ValueError:
            raise DecodeError(f"PMD settings: unknown setting type {code}") from None
        count = binary.uint(parameters, offset + 1, 1, "PMD settings")
        offset += 2
        size = _SETTING_SIZE[kind]
        values: list[float] = []
        for _ in range(count):
            binary.require(parameters, size, f"PMD setting {kind.name}", offset=offset)
            chunk = parameters[offset : offset + size]
            if kind is SettingType.FACTOR:
                values.append(struct.unpack("<f", chunk)[0])
            else:
                values.append(int.from_bytes(chunk, "little"))
            offset += size
        out[kind] = values
    return out


def apply_start_response(settings: PmdSettings, response: ControlResponse) -> PmdSettings:
    """Settings with the FACTOR from a successful start response (if it carried one)."""
    if not response.ok:
        raise DecodeError(f"PMD start refused: {response.status_text}")
    factor = parse_settings(response.parameters).get(SettingType.FACTOR)
    return replace(settings, factor=factor[0]) if factor else settings


# ---------------------------------------------------------------- data frames


@dataclass(frozen=True, slots=True)
class FrameHeader:
    measurement: int
    timestamp_ns: int
    frame_type: int
    compressed: bool


def parse_header(data: bytes) -> FrameHeader:
    binary.require(data, HEADER_BYTES + 1, "PMD data frame")
    frame_byte = data[9]
    return FrameHeader(
        measurement=data[0] & _MEASUREMENT_MASK,
        timestamp_ns=binary.uint(data, 1, 8, "PMD timestamp"),
        frame_type=frame_byte & 0x7F,
        compressed=bool(frame_byte & _COMPRESSED_BIT),
    )


def decode_frame(data: bytes, settings: PmdSettings) -> DecodedSamples:
    """Decode one ACC or GYRO data notification with the stream's settings."""
    head = parse_header(data)
    body = data[HEADER_BYTES:]
    what = f"PMD {_measurement_name(head.measurement)} frame type 0x{data[9]:02x}"
    if head.measurement == Measurement.ACC:
        values = _acc_milli_g(head, body, settings, what) * _MPS2_PER_MILLI_G
    elif head.measurement == Measurement.GYRO:
        if not (head.compressed and head.frame_type == 0):
            raise DecodeError(f"{what}: unsupported (GYRO comes as compressed type 0)")
        values = _delta_frame(body, settings, what) * _factor(settings)
    else:
        raise DecodeError(f"{what}: measurement type not supported by hipstride")
    is_acc = head.measurement == Measurement.ACC
    return DecodedSamples(
        acc_mps2=values if is_acc else None,
        gyr_dps=None if is_acc else values,
        # The PMD timestamp stamps the LAST sample of the frame.
        sensor_time_s=head.timestamp_ns * _SECONDS_PER_NS,
        stamp_index=len(values) - 1,
        rate_hz=float(settings.sample_rate_hz),
    )


def _acc_milli_g(head: FrameHeader, body: bytes, settings: PmdSettings, what: str) -> np.ndarray:
    if not head.compressed:
        size = {0: 1, 1: 2, 2: 3}.get(head.frame_type)
        if size is None:
            raise DecodeError(f"{what}: unknown raw ACC frame type")
        if not body or len(body) % (3 * size):
            raise DecodeError(
                f"{what}: {len(body)} data bytes is not a whole number of {3 * size}-byte samples"
            )
        return xyz(binary.int_array(body, 0, len(body) // size, size, what), 1.0)
    if head.frame_type == 1:
        return _delta_frame(body, settings, what) * _factor(settings)
    if head.frame_type == 0:
        # Type 0 compressed ACC carries g, not milli-g (SDK: "special Wolfi type").
        return _delta_frame(body, settings, what) * (_factor(settings) * 1000.0)
    raise DecodeError(f"{what}: unknown compressed ACC frame type")


def _factor(settings: PmdSettings) -> float:
    return 1.0 if settings.factor is None else settings.factor


def _delta_frame(body: bytes, settings: PmdSettings, what: str, channels: int = 3) -> np.ndarray:
    """Reference sample + delta blocks -> (n, channels) integers (before FACTOR)."""
    ref_size = math.ceil(settings.resolution_bits / 8)
    reference = binary.int_array(body, 0, channels, ref_size, f"{what} reference sample")
    offset = channels * ref_size
    pieces = [reference.reshape(1, channels)]
    while offset < len(body):
        binary.require(body, 2, f"{what} delta block header", offset=offset)
        width, count = body[offset], body[offset + 1]
        offset += 2
        if width > 32 or count == 0:
            raise DecodeError(f"{what}: corrupt delta block (width {width}, count {count})")
        nbytes = math.ceil(width * count * channels / 8)
        binary.require(body, nbytes, f"{what} delta block", offset=offset)
        deltas = binary.signed_bits(body[offset : offset + nbytes], count * channels, width)
        pieces.append(deltas.reshape(count, channels))
        offset += nbytes
    return np.cumsum(np.concatenate(pieces), axis=0).astype(np.float64)


def _measurement_name(code: int) -> str:
    try:
        return Measurement(code).name
    except ValueError:
        return f"type {code}"


# ---------------------------------------------------------------- encoders
# The sensor's side of the protocol, for virtual sensors, round-trip tests and benches.


def encode_frame(
    measurement: Measurement,
    timestamp_ns: int,
    counts: np.ndarray,
    *,
    compressed: bool,
    frame_type: int = 1,
    resolution_bits: int = 16,
) -> bytes:
    """A data notification holding ``counts`` ((n, 3) integers, before FACTOR)."""
    values = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
    head = bytes([measurement]) + timestamp_ns.to_bytes(8, "little")
    if not compressed:
        size = {0: 1, 1: 2, 2: 3}[frame_type]
        raw = b"".join(int(v).to_bytes(size, "little", signed=True) for v in values.ravel())
        return head + bytes([frame_type]) + raw
    ref_size = math.ceil(resolution_bits / 8)
    body = bytearray(b"".join(int(v).to_bytes(ref_size, "little", signed=True) for v in values[0]))
    deltas = np.diff(values, axis=0)
    for start in range(0, len(deltas), 255):  # a block counts at most 255 samples
        block = deltas[start : start + 255]
        width = binary.bits_needed(block.ravel())
        body += bytes([width, len(block)]) + binary.pack_signed_bits(block.ravel(), width)
    return head + bytes([_COMPRESSED_BIT | frame_type]) + bytes(body)


def encode_control_response(
    op: int, measurement: int, status: int = 0, parameters: bytes = b""
) -> bytes:
    return bytes([RESPONSE_CODE, op, measurement, status, 0]) + parameters


def factor_parameters(factor: float) -> bytes:
    """Start-response parameters announcing ``factor`` (setting type 5, one float32)."""
    return bytes([SettingType.FACTOR, 1]) + struct.pack("<f", factor)


# ---------------------------------------------------------------- stateful wrapper


@dataclass
class PolarPmdDecoder:
    """Decodes PMD Data notifications; knows each stream's settings and factor."""

    settings: dict[int, PmdSettings] = field(
        default_factory=lambda: {Measurement.ACC: VERITY_ACC, Measurement.GYRO: VERITY_GYRO}
    )
    name: str = NAME

    def feed(self, packet: bytes) -> list[Decoded]:
        # Control point responses are recorded in the same raw stream as data frames
        # (the FACTOR they carry is needed to decode compressed frames on replay).
        # 0xF0 is never a data frame's first byte: measurement types stop at 0x3F.
        if packet[:1] == bytes([RESPONSE_CODE]):
            response = self.on_control_response(packet)
            if response.op == Op.START and not response.ok:
                raise DecodeError(
                    f"PMD start of {_measurement_name(response.measurement)} refused: "
                    f"{response.status_text}"
                )
            return []
        head = parse_header(packet)
        settings = self.settings.get(head.measurement)
        if settings is None:
            raise DecodeError(
                f"PMD data frame: no stream started for {_measurement_name(head.measurement)}"
            )
        return [decode_frame(packet, settings)]

    def on_control_response(self, data: bytes) -> ControlResponse:
        """Feed a control point indication; a start response updates the FACTOR."""
        response = parse_control_response(data)
        if response.op == Op.START and response.ok and response.measurement in self.settings:
            self.settings[response.measurement] = apply_start_response(
                self.settings[response.measurement], response
            )
        return response

    def reset(self) -> None:
        """Nothing spans notifications in PMD; settings survive a reconnect."""


def make_decoder(options: Mapping[str, str] | None = None) -> PolarPmdDecoder:
    """Decoder from ``hipstride decode --set`` style options.

    ``rate_hz`` (default 52), ``factor`` (compressed frames), ``gyro_factor``,
    ``resolution_bits`` (16). Unknown keys are an error so typos do not pass silently.
    """
    opts = dict(options or {})
    known = {"rate_hz", "factor", "gyro_factor", "resolution_bits"}
    unknown = set(opts) - known
    if unknown:
        raise DecodeError(f"polar-pmd: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
    rate = int(opts.get("rate_hz", VERITY_ACC.sample_rate_hz))
    res = int(opts.get("resolution_bits", 16))
    acc_factor = float(opts["factor"]) if "factor" in opts else None
    gyr_factor = float(opts["gyro_factor"]) if "gyro_factor" in opts else None
    return PolarPmdDecoder(
        settings={
            Measurement.ACC: replace(
                VERITY_ACC, sample_rate_hz=rate, resolution_bits=res, factor=acc_factor
            ),
            Measurement.GYRO: replace(
                VERITY_GYRO, sample_rate_hz=rate, resolution_bits=res, factor=gyr_factor
            ),
        }
    )
