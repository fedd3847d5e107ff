"""One driver per wire protocol: which characteristics to subscribe, what to write.

A driver knows a device family's UUIDs, start/stop commands and decoder; it talks to
the device only through :class:`GattLink`, so it never sees bleak and the transport
never sees a device. Every notification of every subscribed characteristic goes, in
arrival order, into the driver's one decoder (and into the raw recording).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sensors.errors import DecodeError
from sensors.protocols import Decoder, hipstride_profile, make_decoder, movesense, rsc
from sensors.protocols import polar_pmd as pmd
from sensors.protocols import witmotion as wit

BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

#: How long to wait for a control point answer before giving up on a start.
RESPONSE_TIMEOUT_S = 5.0


class GattLink(Protocol):
    """What a driver may do with a connected device (the transport implements it)."""

    @property
    def mtu(self) -> int: ...

    async def subscribe(self, char_uuid: str) -> None: ...

    async def write(self, char_uuid: str, data: bytes, response: bool = True) -> None: ...

    async def request(
        self, write_uuid: str, data: bytes, answer_uuid: str, timeout_s: float
    ) -> bytes:
        """Write ``data`` and return the next notification on ``answer_uuid``.

        The wait starts before the write, so an answer that overtakes the write's own
        acknowledgement is not missed.
        """
        ...


class Driver(Protocol):
    @property
    def protocol(self) -> str: ...

    @property
    def service_uuid(self) -> str: ...

    @property
    def has_gyro(self) -> bool: ...

    @property
    def separate_streams(self) -> bool:
        """acc and gyro arrive as separate streams to be paired (Polar Verity Sense)."""
        ...

    def make_decoder(self) -> Decoder: ...

    def matches(self, name: str, service_uuids: list[str]) -> bool: ...

    async def start(self, link: GattLink, decoder: Decoder) -> None: ...

    async def stop(self, link: GattLink) -> None: ...


@dataclass
class PolarDriver:
    """Verity Sense (acc + gyro, 52 Hz) or H10 (acc only, chest)."""

    streams: dict[pmd.Measurement, pmd.PmdSettings] = field(
        default_factory=lambda: {
            pmd.Measurement.ACC: pmd.VERITY_ACC,
            pmd.Measurement.GYRO: pmd.VERITY_GYRO,
        }
    )
    protocol: str = pmd.NAME
    service_uuid: str = pmd.SERVICE_UUID

    @property
    def has_gyro(self) -> bool:
        return pmd.Measurement.GYRO in self.streams

    @property
    def separate_streams(self) -> bool:
        return self.has_gyro

    def make_decoder(self) -> Decoder:
        return pmd.PolarPmdDecoder(settings={int(k): v for k, v in self.streams.items()})

    def matches(self, name: str, service_uuids: list[str]) -> bool:
        return name.startswith("Polar ") or self.service_uuid in service_uuids

    async def start(self, link: GattLink, decoder: Decoder) -> None:
        await link.subscribe(pmd.CONTROL_POINT_UUID)
        await link.subscribe(pmd.DATA_UUID)
        # One command at a time: the sensor answers each on the control point before it
        # accepts the next (the Polar SDK serialises them the same way).
        for measurement, settings in self.streams.items():
            command = pmd.start_command(measurement, settings)
            answer = await link.request(
                pmd.CONTROL_POINT_UUID, command, pmd.CONTROL_POINT_UUID, RESPONSE_TIMEOUT_S
            )
            response = pmd.parse_control_response(answer)
            if not response.ok and response.status != 6:  # 6: already started: fine
                raise DecodeError(
                    f"Polar refused to start {measurement.name}: {response.status_text}"
                )

    async def stop(self, link: GattLink) -> None:
        for measurement in self.streams:
            await link.write(pmd.CONTROL_POINT_UUID, pmd.stop_command(measurement))


def h10_driver() -> PolarDriver:
    return PolarDriver(streams={pmd.Measurement.ACC: pmd.H10_ACC})


@dataclass
class MovesenseDriver:
    path: str = "/Meas/IMU6/208"
    reference: int = movesense.DEFAULT_REFERENCE
    protocol: str = movesense.NAME
    service_uuid: str = movesense.SERVICE_UUID
    has_gyro: bool = True
    separate_streams: bool = False

    def make_decoder(self) -> Decoder:
        return movesense.MovesenseDecoder(
            resource=movesense.parse_path(self.path), reference=self.reference
        )

    def matches(self, name: str, service_uuids: list[str]) -> bool:
        return name.startswith("Movesense") or self.service_uuid in service_uuids

    async def start(self, link: GattLink, decoder: Decoder) -> None:
        if isinstance(decoder, movesense.MovesenseDecoder) and link.mtu > 23:
            # The sensor splits a message only when it does not fit one notification.
            # (23 is also what some BlueZ versions report when they do not know.)
            decoder.max_payload_bytes = link.mtu - 3
        await link.subscribe(movesense.DATA_UUID)
        await link.write(
            movesense.COMMAND_UUID, movesense.subscribe_command(self.path, self.reference)
        )

    async def stop(self, link: GattLink) -> None:
        await link.write(movesense.COMMAND_UUID, movesense.unsubscribe_command(self.reference))


@dataclass
class WitMotionDriver:
    rate_hz: int = 100
    protocol: str = wit.NAME
    service_uuid: str = wit.SERVICE_UUID
    has_gyro: bool = True
    separate_streams: bool = False

    def make_decoder(self) -> Decoder:
        return wit.WitMotionDecoder(rate_hz=float(self.rate_hz))

    def matches(self, name: str, service_uuids: list[str]) -> bool:
        return name.startswith("WT") or self.service_uuid in service_uuids

    async def start(self, link: GattLink, decoder: Decoder) -> None:
        # Unlock, then set the output rate, on every connect rather than saving it: a
        # save writes flash, and reconnects are frequent. The sensor ignores writes that
        # follow each other too closely. Subscribe only afterwards: samples at the old
        # rate would be timed as if at the new one.
        for command in (wit.UNLOCK_COMMAND, wit.rate_command(self.rate_hz)):
            await link.write(wit.WRITE_UUID, command, response=False)
            await asyncio.sleep(0.1)
        await link.subscribe(wit.NOTIFY_UUID)

    async def stop(self, link: GattLink) -> None:
        """Nothing to stop: the sensor streams whenever notifications are on."""


@dataclass
class RscDriver:
    protocol: str = rsc.NAME
    service_uuid: str = rsc.SERVICE_UUID
    has_gyro: bool = False
    separate_streams: bool = False

    def make_decoder(self) -> Decoder:
        return rsc.RscDecoder()

    def matches(self, name: str, service_uuids: list[str]) -> bool:
        return self.service_uuid in service_uuids

    async def start(self, link: GattLink, decoder: Decoder) -> None:
        await link.subscribe(rsc.MEASUREMENT_UUID)

    async def stop(self, link: GattLink) -> None:
        """Notifications stop with the connection."""


@dataclass
class HipstrideDriver:
    config: hipstride_profile.StreamConfig = field(default_factory=hipstride_profile.StreamConfig)
    protocol: str = hipstride_profile.NAME
    service_uuid: str = hipstride_profile.SERVICE_UUID
    separate_streams: bool = False

    @property
    def has_gyro(self) -> bool:
        return bool(self.config.gyr_range_dps)

    def make_decoder(self) -> Decoder:
        return make_decoder(self.protocol)

    def matches(self, name: str, service_uuids: list[str]) -> bool:
        return self.service_uuid in service_uuids

    async def start(self, link: GattLink, decoder: Decoder) -> None:
        await link.subscribe(hipstride_profile.DATA_UUID)
        await link.write(
            hipstride_profile.CONTROL_UUID, hipstride_profile.start_command(self.config)
        )

    async def stop(self, link: GattLink) -> None:
        await link.write(hipstride_profile.CONTROL_UUID, hipstride_profile.stop_command())


def make_driver(protocol: str, model: str = "", options: Mapping[str, str] | None = None) -> Driver:
    """The driver for a protocol; ``model`` picks a variant (Polar ``h10`` / ``verity``)."""
    opts = dict(options or {})
    if protocol == pmd.NAME:
        driver = h10_driver() if model.lower() == "h10" else PolarDriver()
        if "rate_hz" in opts:  # one rate for all the sensor's streams, e.g. "208"
            rate = int(opts["rate_hz"])
            driver.streams = {
                m: dataclasses.replace(s, sample_rate_hz=rate) for m, s in driver.streams.items()
            }
        return driver
    if protocol == movesense.NAME:
        return MovesenseDriver(path=opts.get("path", "/Meas/IMU6/208"))
    if protocol == wit.NAME:
        return WitMotionDriver(rate_hz=int(opts.get("rate_hz", 100)))
    if protocol == rsc.NAME:
        return RscDriver()
    if protocol == hipstride_profile.NAME:
        return HipstrideDriver(
            hipstride_profile.StreamConfig(
                rate_hz=int(opts.get("rate_hz", 208)),
                acc_range_g=int(opts.get("acc_range_g", 16)),
                gyr_range_dps=int(opts.get("gyr_range_dps", 2000)),
            )
        )
    raise ValueError(f"no BLE driver for protocol {protocol!r}")


#: Drivers tried in this order when a scan result must be recognised.
SCAN_ORDER: tuple[Driver, ...] = (
    HipstrideDriver(),
    PolarDriver(),
    MovesenseDriver(),
    WitMotionDriver(),
    RscDriver(),
)


def recognise(name: str, service_uuids: list[str]) -> str | None:
    """Protocol name for an advertisement, or ``None`` if hipstride cannot read it."""
    uuids = [u.lower() for u in service_uuids]
    for driver in SCAN_ORDER:
        if driver.matches(name or "", uuids):
            return driver.protocol
    return None
