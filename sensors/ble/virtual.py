"""Virtual sensors: bumble GATT servers that behave like the real devices.

Each one runs the device's own GATT layout and wire format (Polar PMD control point
and compressed frames, Movesense GSP with DATA/DATA_PART2 split at the negotiated MTU,
WitMotion 0x55 0x61 packets, RSC measurements, the hipstride profile), fed with the
simulated runner of :mod:`sensors.simulator`, sampled on the sensor's own drifting
clock. They advertise, accept connections over bumble's virtual radio, answer start
commands, stop streaming when the link drops and can be made to lose their link
(:meth:`VirtualSensor.drop_link`: out of range for a while, then advertising again so
the collector can reconnect).

Each sensor counts what it really notified per stream (``sent_by_stream``, samples
handed to a live connection) and the samples its clock measured while no stream was
running between two runs of a stream (``skipped_by_stream``: what a link drop costs),
and which sample indices it sent (``sent_ranges``).
A collector that loses nothing that arrived receives exactly the sent samples and
counts exactly the skipped ones as lost.

Time is a :class:`SimClock`, which may run faster than the wall clock: the collector
gets the same clock as ``now`` so its clock fits see a consistent world.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bleak import BleakClient
from bumble.controller import Controller
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from sensors.ble.bumble_backend import BumbleClient
from sensors.ble.transport import ClientLike, SensorSpec
from sensors.model import GRAVITY_MPS2, FloatArray
from sensors.protocols import hipstride_profile as hp
from sensors.protocols import movesense as ms
from sensors.protocols import polar_pmd as pmd
from sensors.protocols import rsc
from sensors.protocols import witmotion as wit
from sensors.protocols.types import RscMeasurement
from sensors.simulator import SimConfig, simulate

log = logging.getLogger(__name__)

BATTERY_SERVICE = "180F"
BATTERY_LEVEL = "2A19"
POLAR_ACC_FACTOR = 0.244140625  # milli-g per count at ±8 g (8000 / 32768)
POLAR_GYR_FACTOR = 2000 / 32768  # deg/s per count at ±2000 deg/s
#: 2000-01-01 in the sensor's ns clock; any large value shows the wrap-free 64-bit path.
POLAR_EPOCH_S = 7.0e8


class SimClock:
    """Session time that may run ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    async def sleep_until(self, t: float) -> None:
        delay = (t - self.now()) / self.speed
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualAir:
    """The virtual radio: bumble's LocalLink, the central (adapter) and the sensors."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.link = LocalLink()
        self.sensors: dict[str, VirtualSensor] = {}
        self._central: Device | None = None

    async def central_for(self, address: str) -> Device:
        if self._central is None:
            address_text = "C0:00:00:00:00:01"
            controller = Controller("central", link=self.link, public_address=address_text)
            device = Device(
                address=Address(address_text), host=Host(controller, AsyncPipeSink(controller))
            )
            await device.power_on()
            self._central = device
        return self._central

    async def add(self, sensor: VirtualSensor) -> None:
        self.sensors[sensor.address] = sensor
        await sensor.power_on(self.link)

    def client_factory(self) -> Callable[[SensorSpec, Callable[[Any], None]], ClientLike]:
        """For :class:`Collector`: real :class:`bleak.BleakClient` objects on bumble."""

        def factory(spec: SensorSpec, on_disconnect: Callable[[Any], None]) -> ClientLike:
            return BleakClient(
                spec.address, on_disconnect, timeout=5.0, backend=BumbleClient, air=self
            )

        return factory

    async def close(self) -> None:
        for sensor in self.sensors.values():
            await sensor.close()


class VirtualSensor:
    """Common behaviour; subclasses define the GATT layout and the wire format."""

    protocol = ""
    samples_per_packet = 8

    def __init__(
        self,
        address: str,
        clock: SimClock,
        *,
        placement: str = "pelvis",
        rate_hz: float = 104.0,
        clock_offset_s: float = 1000.0,
        drift_ppm: float = 30.0,
        battery_pct: int = 87,
        seed: int = 0,
    ) -> None:
        self.address = address
        self.clock = clock
        self.placement = placement
        self.rate_hz = rate_hz
        self.clock_offset_s = clock_offset_s
        self.drift = drift_ppm * 1e-6
        self.battery_pct = battery_pct
        self.device: Device | None = None
        self.start_commands: list[bytes] = []  # every start command received, in order
        self.connections = 0
        self.sent_samples = 0
        self.sent_by_stream: dict[Any, int] = {}
        self.skipped_by_stream: dict[Any, int] = {}
        #: per stream, the sample indices sent as ``[first, end)`` runs
        self.sent_ranges: dict[Any, list[tuple[int, int]]] = {}
        self._next_k: dict[Any, int] = {}  # per stream: the sample after the last one sent
        self._streams: dict[Any, asyncio.Task[None]] = {}
        self._seed = seed
        self._signals: tuple[FloatArray, FloatArray] | None = None
        self._signals_rate = rate_hz

    # ------------------------------------------------------------------ the sensor's clock

    def sensor_time(self, t: float) -> float:
        return self.clock_offset_s + t * (1.0 + self.drift)

    def sample_time(self, k: int) -> float:
        """Session (sim) time at which sample ``k`` is measured."""
        return (k / self.rate_hz - self.clock_offset_s) / (1.0 + self.drift)

    def first_sample_after(self, t: float) -> int:
        return math.ceil(self.sensor_time(t) * self.rate_hz)

    def signals(self, k: int, n: int) -> tuple[FloatArray, FloatArray]:
        """Samples ``k..k+n-1`` of the simulated run at the current rate."""
        if self._signals is None or self._signals_rate != self.rate_hz:
            # Generating takes a while and blocks the event loop: power_on does it early.
            self._signals = _signals(self.placement, self.rate_hz, self._seed)
            self._signals_rate = self.rate_hz
        acc, gyr = self._signals
        index = np.arange(k, k + n) % len(acc)
        return acc[index], gyr[index]

    # ------------------------------------------------------------------ GATT and radio

    def services(self) -> list[Service]:
        raise NotImplementedError

    def name(self) -> str:
        return f"{self.protocol}-{self.placement}"

    async def power_on(self, link: LocalLink) -> None:
        if self.rate_hz >= 20:
            self.signals(0, 1)
        controller = Controller(self.address, link=link, public_address=self.address)
        device = Device(
            address=Address(self.address), host=Host(controller, AsyncPipeSink(controller))
        )
        battery = _char(
            BATTERY_LEVEL,
            Characteristic.Properties.READ,
            read=lambda _c: bytes([self.battery_pct]),
        )
        for service in [*self.services(), Service(BATTERY_SERVICE, [battery])]:
            device.add_service(service)
        device.on(device.EVENT_CONNECTION, self._on_connection)
        await device.power_on()
        self.device = device
        await device.start_advertising(auto_restart=True, advertising_interval_min=20)

    def _on_connection(self, connection: Connection) -> None:
        self.connections += 1
        connection.on(connection.EVENT_DISCONNECTION, lambda _reason: self.stop_all())

    async def drop_link(self, outage_s: float) -> None:
        """Lose the link (runner turned away) and stay out of range for ``outage_s``."""
        assert self.device is not None
        await self.device.stop_advertising()
        for connection in list(self.device.connections.values()):
            await connection.disconnect()
        self.stop_all()
        await self.clock.sleep_until(self.clock.now() + outage_s)
        await self.device.start_advertising(auto_restart=True, advertising_interval_min=20)

    async def close(self) -> None:
        self.stop_all()
        if self.device is not None:
            with contextlib.suppress(Exception):
                await self.device.stop_advertising()

    # ------------------------------------------------------------------ streaming

    def start_stream(self, key: Any, send: Callable[[int, int], Any], samples: int) -> None:
        """Stream packets of ``samples`` from now on; ``send(k, n)`` notifies one."""
        if key in self._streams and not self._streams[key].done():
            self._streams[key].cancel()
        task = asyncio.create_task(self._stream(key, send, samples))
        task.add_done_callback(self._stream_ended)
        self._streams[key] = task

    def _stream_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: stream died: %r", self.name(), task.exception())

    def stop_all(self) -> None:
        for task in self._streams.values():
            task.cancel()
        self._streams.clear()

    async def _stream(self, key: Any, send: Callable[[int, int], Any], samples: int) -> None:
        k = self.first_sample_after(self.clock.now())
        previous = self._next_k.get(key)
        if previous is not None and k > previous:
            self.skipped_by_stream[key] = self.skipped_by_stream.get(key, 0) + k - previous
        while True:
            # A packet leaves once its last sample has been measured.
            await self.clock.sleep_until(self.sample_time(k + samples - 1))
            assert self.device is not None
            if self.device.connections:  # to a subscriber, not into the void
                # Counted before the await: a disconnect cancels this task once the
                # notification is out, before the await returns.
                self.sent_samples += samples
                self.sent_by_stream[key] = self.sent_by_stream.get(key, 0) + samples
                ranges = self.sent_ranges.setdefault(key, [])
                if ranges and ranges[-1][1] == k:
                    ranges[-1] = (ranges[-1][0], k + samples)
                else:
                    ranges.append((k, k + samples))
            self._next_k[key] = k + samples
            await send(k, samples)
            k += samples

    async def notify(self, characteristic: Characteristic, value: bytes) -> None:
        assert self.device is not None
        await self.device.notify_subscribers(characteristic, value)

    def mtu(self) -> int:
        assert self.device is not None
        connections = list(self.device.connections.values())
        return connections[0].att_mtu if connections else 23


def _signals(placement: str, rate_hz: float, seed: int) -> tuple[FloatArray, FloatArray]:
    """20 s of simulated running for one placement, repeated as long as needed."""
    sim = simulate(
        SimConfig(
            duration_s=20.0, fs_hz=rate_hz, sensors=(placement,), seed=seed, mounting="aligned"
        )
    )
    chunks = list(sim.chunks())
    acc = np.concatenate([c.acc_mps2 for c in chunks])
    gyr = np.concatenate(
        [c.gyr_dps if c.gyr_dps is not None else np.zeros_like(c.acc_mps2) for c in chunks]
    )
    return acc, gyr


def _char(
    uuid: str,
    props: Characteristic.Properties,
    *,
    read: Callable[[Connection], bytes] | None = None,
    write: Callable[[Connection, bytes], None] | None = None,
) -> Characteristic[bytes]:
    """A characteristic with a static empty value or read/write callbacks."""
    perms = Characteristic.Permissions(0)
    if props & Characteristic.Properties.READ or props & Characteristic.Properties.NOTIFY:
        perms |= Characteristic.READABLE
    if write is not None:
        perms |= Characteristic.WRITEABLE
    value: Any = CharacteristicValue(read=read, write=write) if read or write else b""
    return Characteristic(uuid, props, perms, value)


# ====================================================================== devices


class VirtualPolarVerity(VirtualSensor):
    """Verity Sense: PMD control point (write + indicate), compressed ACC/GYRO frames."""

    protocol = pmd.NAME
    samples_per_packet = 9

    def __init__(self, address: str, clock: SimClock, **kwargs: Any) -> None:
        kwargs.setdefault("rate_hz", 52.0)
        kwargs.setdefault("clock_offset_s", POLAR_EPOCH_S)
        super().__init__(address, clock, **kwargs)

    def services(self) -> list[Service]:
        self._cp = _char(
            pmd.CONTROL_POINT_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            write=self._on_control,
        )
        self._data = _char(pmd.DATA_UUID, Characteristic.Properties.NOTIFY)
        return [Service(pmd.SERVICE_UUID, [self._cp, self._data])]

    def _on_control(self, _connection: Connection, value: bytes) -> None:
        asyncio.get_running_loop().create_task(self._answer(bytes(value)))

    async def _answer(self, command: bytes) -> None:
        assert self.device is not None
        op, measurement = command[0], command[1]
        if op == pmd.Op.START:
            self.start_commands.append(command)
            rate = pmd.parse_settings(command[2:]).get(pmd.SettingType.SAMPLE_RATE)
            if rate:  # both streams share the sensor's one rate
                self.rate_hz = float(rate[0])
            factor = POLAR_ACC_FACTOR if measurement == pmd.Measurement.ACC else POLAR_GYR_FACTOR
            response = pmd.encode_control_response(
                op, measurement, 0, pmd.factor_parameters(factor)
            )
            await self.device.indicate_subscribers(self._cp, response)
            self.start_stream(measurement, self._sender(measurement), self.samples_per_packet)
        elif op == pmd.Op.STOP:
            task = self._streams.pop(measurement, None)
            if task is not None:
                task.cancel()
            await self.device.indicate_subscribers(
                self._cp, pmd.encode_control_response(op, measurement)
            )

    def _sender(self, measurement: int) -> Callable[[int, int], Any]:
        async def send(k: int, n: int) -> None:
            acc, gyr = self.signals(k, n)
            if measurement == pmd.Measurement.ACC:
                counts = np.rint(acc / GRAVITY_MPS2 * 1000.0 / POLAR_ACC_FACTOR)
                kind, frame_type = pmd.Measurement.ACC, 1
            else:
                counts = np.rint(gyr / POLAR_GYR_FACTOR)
                kind, frame_type = pmd.Measurement.GYRO, 0
            # ns since 2000 of the LAST sample in the frame, as the real sensor stamps it.
            stamp_ns = round((k + n - 1) / self.rate_hz * 1e9)
            frame = pmd.encode_frame(
                kind, stamp_ns, counts.astype(np.int64), compressed=True, frame_type=frame_type
            )
            await self.notify(self._data, frame)

        return send


class VirtualMovesense(VirtualSensor):
    """Movesense with gatt_sensordata_app: GSP commands, IMU6 messages split at the MTU."""

    protocol = ms.NAME
    samples_per_packet = 8

    def __init__(self, address: str, clock: SimClock, **kwargs: Any) -> None:
        kwargs.setdefault("rate_hz", 208.0)  # what MovesenseDriver subscribes to
        super().__init__(address, clock, **kwargs)

    def services(self) -> list[Service]:
        self._command = _char(
            ms.COMMAND_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            write=self._on_command,
        )
        self._data = _char(ms.DATA_UUID, Characteristic.Properties.NOTIFY)
        return [Service(ms.SERVICE_UUID, [self._command, self._data])]

    def _on_command(self, _connection: Connection, value: bytes) -> None:
        command = bytes(value)
        if command[0] == ms.OP_SUBSCRIBE:
            self.start_commands.append(command)
            reference = command[1]
            resource = ms.parse_path(command[2:].decode("ascii"))
            self.rate_hz = float(resource.rate_hz)
            asyncio.get_running_loop().create_task(
                self.notify(self._data, bytes([ms.KIND_RESULT, reference, 200, 0]))
            )
            self.start_stream(reference, self._sender(reference), self.samples_per_packet)
        elif command[0] == ms.OP_UNSUBSCRIBE:
            self.stop_all()

    def _sender(self, reference: int) -> Callable[[int, int], Any]:
        async def send(k: int, n: int) -> None:
            acc, gyr = self.signals(k, n)
            stamp_ms = round(k / self.rate_hz * 1000.0)  # FIRST sample, uint32 ms
            for part in ms.encode_data(reference, stamp_ms, acc, gyr, self.mtu() - 3):
                await self.notify(self._data, part)

        return send


class VirtualWitMotion(VirtualSensor):
    """BWT901BLE: streams 0x55 0x61 packets while connected; rate set by command."""

    protocol = wit.NAME
    samples_per_packet = 1

    def __init__(self, address: str, clock: SimClock, **kwargs: Any) -> None:
        kwargs.setdefault("rate_hz", 50.0)
        super().__init__(address, clock, **kwargs)
        self.commands: list[bytes] = []

    def services(self) -> list[Service]:
        self._notify = _char(wit.NOTIFY_UUID, Characteristic.Properties.NOTIFY)
        self._write = _char(
            wit.WRITE_UUID,
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE | Characteristic.Properties.WRITE,
            write=self._on_write,
        )
        return [Service(wit.SERVICE_UUID, [self._notify, self._write])]

    def _on_connection(self, connection: Connection) -> None:
        super()._on_connection(connection)
        self.start_stream("imu", self._send, 1)  # streams as soon as someone listens

    def _on_write(self, _connection: Connection, value: bytes) -> None:
        command = bytes(value)
        self.commands.append(command)
        if command[:3] == bytes([0xFF, 0xAA, 0x03]):
            self.start_commands.append(command)
            rates = {code: rate for rate, code in wit.RATE_CODES.items()}
            self.rate_hz = float(rates[command[3]])
            self.start_stream("imu", self._send, 1)  # output timing restarts at the new rate

    async def _send(self, k: int, n: int) -> None:
        acc, gyr = self.signals(k, n)
        await self.notify(self._notify, wit.encode_packet(acc[0], gyr[0]))


class VirtualRscPod(VirtualSensor):
    """A foot pod: one RSC measurement per second."""

    protocol = rsc.NAME

    def __init__(self, address: str, clock: SimClock, **kwargs: Any) -> None:
        kwargs.setdefault("rate_hz", 1.0)
        kwargs.setdefault("placement", "left_foot")
        super().__init__(address, clock, **kwargs)

    def services(self) -> list[Service]:
        self._measurement = _char(rsc.MEASUREMENT_UUID, Characteristic.Properties.NOTIFY)
        return [Service(rsc.SERVICE_UUID, [self._measurement])]

    def _on_connection(self, connection: Connection) -> None:
        super()._on_connection(connection)
        self.start_stream("rsc", self._send, 1)

    async def _send(self, k: int, n: int) -> None:
        m = RscMeasurement(3.3, 170, 1.16, round(k * 3.3, 1), running=True)
        await self.notify(self._measurement, rsc.encode_measurement(m))


class VirtualHipstride(VirtualSensor):
    """A DIY sensor speaking the hipstride profile (what firmware_stubs/ describes)."""

    protocol = hp.NAME

    def __init__(self, address: str, clock: SimClock, **kwargs: Any) -> None:
        kwargs.setdefault("rate_hz", 208.0)
        kwargs.setdefault("clock_offset_s", 3000.0)  # wraps the µs clock after ~20 min
        super().__init__(address, clock, **kwargs)
        self.config = hp.StreamConfig()

    def services(self) -> list[Service]:
        self._data = _char(hp.DATA_UUID, Characteristic.Properties.NOTIFY)
        self._control = _char(
            hp.CONTROL_UUID, Characteristic.Properties.WRITE, write=self._on_control
        )
        return [Service(hp.SERVICE_UUID, [self._data, self._control])]

    def _on_control(self, _connection: Connection, value: bytes) -> None:
        config = hp.parse_command(bytes(value))
        if config is None:
            self.stop_all()
            return
        self.start_commands.append(bytes(value))
        self.config = config
        self.rate_hz = float(config.rate_hz)
        per_packet = min(8, hp.MAX_SAMPLES)
        self.start_stream("imu", self._send, per_packet)

    async def _send(self, k: int, n: int) -> None:
        acc, gyr = self.signals(k, n)
        timestamp_us = round(k / self.rate_hz * 1e6)
        packet = hp.pack_packet(
            self.config,
            counter=k,
            timestamp_us=timestamp_us,
            acc_counts=hp.quantize(acc / GRAVITY_MPS2, self.config.acc_range_g),
            gyr_counts=hp.quantize(gyr, self.config.gyr_range_dps),
        )
        await self.notify(self._data, packet)


#: Virtual device per protocol, for ``hipstride collect --virtual``.
VIRTUAL_SENSORS: dict[str, type[VirtualSensor]] = {
    pmd.NAME: VirtualPolarVerity,
    ms.NAME: VirtualMovesense,
    wit.NAME: VirtualWitMotion,
    rsc.NAME: VirtualRscPod,
    hp.NAME: VirtualHipstride,
}
