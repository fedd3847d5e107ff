"""Movesense GATT SensorData Protocol (GSP v1) with the ``gatt_sensordata_app`` firmware.

Sources (facts only): movesense.com/docs/esw/gatt_sensordata_protocol (GD-77 "GATT
SensorData Protocol specification" 1.0) and the Python client shipped with the
Movesense ``gatt_sensordata_app`` sample (command bytes, DATA/DATA_PART2 handling,
IMU payload layout); ``meas/imu.yaml`` of the Movesense device API for units.

Service ``34802252-7185-4d5d-b431-630e7050e8f0``; the client writes commands to
``34800001-...`` and the sensor notifies on ``34800002-...``::

    command:      [op u8][reference u8][resource path, ASCII]
                  op 0 = HELLO, 1 = SUBSCRIBE, 2 = UNSUBSCRIBE (no path)
    notification: [kind u8][reference u8][payload]
                  kind 1 = command result (payload: status u16, HTTP style)
                       2 = DATA, 3 = DATA_PART2 (rest of a DATA that did not fit
                       one notification; append its payload to the DATA payload)

``/Meas/IMU6/<rate>`` payload: ``uint32`` sensor time in ms of the FIRST sample, then
n x (x, y, z) float32 acceleration in m/s² (gravity included), then n x (x, y, z)
float32 angular rate in deg/s. ``/Meas/IMU9`` appends n magnetometer triplets (µT),
which hipstride ignores; ``/Meas/Acc`` carries acceleration only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from sensors.errors import DecodeError
from sensors.protocols import binary
from sensors.protocols.types import Decoded, DecodedSamples

NAME = "movesense"

SERVICE_UUID = "34802252-7185-4d5d-b431-630e7050e8f0"
COMMAND_UUID = "34800001-7185-4d5d-b431-630e7050e8f0"
DATA_UUID = "34800002-7185-4d5d-b431-630e7050e8f0"

OP_HELLO = 0
OP_SUBSCRIBE = 1
OP_UNSUBSCRIBE = 2

KIND_RESULT = 1
KIND_DATA = 2
KIND_DATA_PART2 = 3

#: Movesense IMU rates (Hz) the firmware accepts.
RATES_HZ = (13, 26, 52, 104, 208, 416, 833, 1666)
#: Reference number hipstride uses for its one subscription (any 1-255 works).
DEFAULT_REFERENCE = 99
DEFAULT_PATH = "/Meas/IMU6/104"

_MS = 1e-3
_WRAP_S = 2**32 * _MS
_PATH_RE = re.compile(r"^/?Meas/(IMU6|IMU9|Acc)/(\d+)$")
#: (triplet blocks per sample, blocks that are acc / gyro) by resource.
_LAYOUT = {"IMU6": (2, True), "IMU9": (3, True), "Acc": (1, False)}


def subscribe_command(path: str = DEFAULT_PATH, reference: int = DEFAULT_REFERENCE) -> bytes:
    """``[1][ref]/Meas/IMU6/104``: subscribe ``path`` under ``reference``."""
    parse_path(path)
    return bytes([OP_SUBSCRIBE, _ref(reference)]) + path.encode("ascii")


def unsubscribe_command(reference: int = DEFAULT_REFERENCE) -> bytes:
    return bytes([OP_UNSUBSCRIBE, _ref(reference)])


def hello_command(reference: int = 1) -> bytes:
    return bytes([OP_HELLO, _ref(reference)])


def _ref(reference: int) -> int:
    if not 0 < reference < 256:
        raise ValueError(f"GSP reference must be 1..255, got {reference}")
    return reference


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str  # IMU6, IMU9 or Acc
    rate_hz: int

    @property
    def blocks(self) -> int:
        return _LAYOUT[self.kind][0]

    @property
    def has_gyro(self) -> bool:
        return _LAYOUT[self.kind][1]

    @property
    def sample_bytes(self) -> int:
        return 12 * self.blocks


def parse_path(path: str) -> Resource:
    match = _PATH_RE.match(path)
    if match is None:
        raise DecodeError(f"movesense: unsupported resource {path!r}; use /Meas/IMU6/<rate>")
    rate = int(match.group(2))
    if rate not in RATES_HZ:
        raise DecodeError(f"movesense: rate {rate} Hz not one of {RATES_HZ}")
    return Resource(match.group(1), rate)


def decode_payload(payload: bytes, resource: Resource) -> DecodedSamples:
    """A complete (reassembled) data payload: timestamp + sample blocks."""
    what = f"movesense {resource.kind} data"
    binary.require(payload, 4 + resource.sample_bytes, what)
    body = len(payload) - 4
    if body % resource.sample_bytes:
        raise DecodeError(
            f"{what}: {body} sample bytes is not a whole number of "
            f"{resource.sample_bytes}-byte samples (DATA_PART2 missing?)"
        )
    n = body // resource.sample_bytes
    values = binary.float32_array(payload, 4, n * 3 * resource.blocks, what)
    blocks = values.reshape(resource.blocks, n, 3)
    return DecodedSamples(
        acc_mps2=blocks[0].copy(),
        gyr_dps=blocks[1].copy() if resource.has_gyro else None,
        sensor_time_s=binary.uint(payload, 0, 4, what) * _MS,
        stamp_index=0,  # Movesense stamps the FIRST sample of a notification
        time_wrap_s=_WRAP_S,
        rate_hz=float(resource.rate_hz),
    )


def encode_data(
    reference: int,
    timestamp_ms: int,
    acc_mps2: np.ndarray,
    gyr_dps: np.ndarray | None,
    max_payload_bytes: int = 244,
) -> list[bytes]:
    """The sensor's notifications for one message: DATA, plus DATA_PART2 if it is long."""
    blocks = [np.asarray(acc_mps2)] + ([] if gyr_dps is None else [np.asarray(gyr_dps)])
    payload = (timestamp_ms % 2**32).to_bytes(4, "little") + b"".join(
        b.astype("<f4").tobytes() for b in blocks
    )
    room = max_payload_bytes - 2
    if len(payload) <= room:
        return [bytes([KIND_DATA, reference]) + payload]
    if len(payload) > 2 * room:
        raise ValueError("message needs more than DATA + DATA_PART2: send fewer samples")
    return [
        bytes([KIND_DATA, reference]) + payload[:room],
        bytes([KIND_DATA_PART2, reference]) + payload[room:],
    ]


@dataclass(frozen=True, slots=True)
class CommandResult:
    reference: int
    status: int


@dataclass
class MovesenseDecoder:
    """Reassembles DATA + DATA_PART2 and decodes the subscribed resource.

    A DATA notification whose payload is a whole number of samples is complete. One
    that is not waits for its DATA_PART2 if it filled a notification
    (``max_payload_bytes``, ATT MTU - 3, when the transport knows it; always, when
    not). A new DATA in place of the awaited DATA_PART2 means the part was lost.
    """

    resource: Resource = field(default_factory=lambda: parse_path(DEFAULT_PATH))
    reference: int = DEFAULT_REFERENCE
    max_payload_bytes: int | None = None
    name: str = NAME
    last_result: CommandResult | None = None
    dropped_messages: int = 0
    _pending: bytes | None = None

    def feed(self, packet: bytes) -> list[Decoded]:
        binary.require(packet, 2, "movesense notification")
        kind, ref = packet[0], packet[1]
        if kind == KIND_RESULT:
            status = binary.uint(packet, 2, 2, "movesense command result")
            self.last_result = CommandResult(ref, status)
            return []
        if kind not in (KIND_DATA, KIND_DATA_PART2):
            raise DecodeError(f"movesense: unknown notification kind {kind}")
        if ref != self.reference:
            raise DecodeError(
                f"movesense: data for reference {ref}, subscribed as {self.reference}"
            )
        if kind == KIND_DATA_PART2:
            if self._pending is None:
                self.dropped_messages += 1
                raise DecodeError("movesense: DATA_PART2 without its DATA (first part lost)")
            payload, self._pending = self._pending + packet[2:], None
            return [decode_payload(payload, self.resource)]
        out: list[Decoded] = []
        if self._pending is not None:  # the DATA_PART2 we waited for never came
            self._pending = None
            self.dropped_messages += 1
        payload = packet[2:]
        if self._expects_part2(packet):
            self._pending = payload
            return out
        out.append(decode_payload(payload, self.resource))
        return out

    def _expects_part2(self, packet: bytes) -> bool:
        if (len(packet) - 6) % self.resource.sample_bytes == 0:
            return False  # whole samples: complete (a host may under-report the MTU)
        # Not whole: the rest follows in a DATA_PART2 if this one filled a notification;
        # a shorter one is a truncated message and is reported as such.
        return self.max_payload_bytes is None or len(packet) >= self.max_payload_bytes

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def reset(self) -> None:
        """Drop a half message: after a reconnect its DATA_PART2 will never come."""
        if self._pending is not None:
            self.dropped_messages += 1
        self._pending = None


def make_decoder(options: Mapping[str, str] | None = None) -> MovesenseDecoder:
    """Options: ``path`` (default /Meas/IMU6/104), ``reference`` (99), ``mtu``."""
    opts = dict(options or {})
    known = {"path", "reference", "mtu"}
    unknown = set(opts) - known
    if unknown:
        raise DecodeError(f"movesense: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
    mtu = opts.get("mtu")
    return MovesenseDecoder(
        resource=parse_path(opts.get("path", DEFAULT_PATH)),
        reference=int(opts.get("reference", DEFAULT_REFERENCE)),
        max_payload_bytes=int(mtu) - 3 if mtu else None,
    )
