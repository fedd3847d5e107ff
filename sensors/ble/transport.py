"""BLE transport: scan, connect several sensors, keep them streaming, report status.

The transport knows no device: what to subscribe and write comes from the sensor's
driver (:mod:`sensors.ble.drivers`), the meaning of the bytes from its decoder. It
knows connections:

* Connects are serialised per adapter (BlueZ runs one LE connection attempt at a time
  and answers others with "InProgress"); notifications then flow concurrently.
* After every (re)connect it subscribes again and resends the start commands: a
  sensor forgets both when the link drops.
* A lost link is retried with exponential backoff and full jitter, so several
  sensors that dropped together (runner turned away) do not retry in lock-step.
* Notification callbacks only put ``(arrival time, bytes)`` on an ``asyncio.Queue``;
  one consumer task records, decodes, maps clocks and emits chunks. A slow consumer
  therefore never stalls the Bluetooth stack, and the queue is bounded: overflow is
  counted, not buffered without limit.

bleak is imported only when a real connection is made, so everything else (tests,
replay) runs without it; ``client_factory`` swaps in any bleak-compatible client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sensors.ble.assemble import SensorAssembler
from sensors.ble.drivers import BATTERY_LEVEL_UUID, Driver, make_driver, recognise
from sensors.clock import ClockConfig
from sensors.errors import DecodeError
from sensors.model import Chunk
from sensors.protocols import Decoder
from sensors.protocols.types import DecodedSamples, RscMeasurement

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20.0
START_TIMEOUT_S = 15.0
BATTERY_EVERY_S = 60.0
QUEUE_PACKETS = 20_000  # ~100 s of 3 busy sensors; beyond that the consumer is stuck
#: A link that stayed up this long resets the backoff to its first step.
STABLE_LINK_S = 10.0

BLE_INSTALL_HINT = "BLE needs bleak: pip install 'hipstride[ble]'"


@dataclass(frozen=True)
class SensorSpec:
    """One sensor to collect from."""

    address: str
    protocol: str
    placement: str
    name: str = ""
    model: str = ""  # variant within a protocol, e.g. Polar "h10"
    adapter: str | None = None  # BlueZ adapter, e.g. "hci1"
    options: Mapping[str, str] = field(default_factory=dict)
    rssi_dbm: int | None = None  # from the scan that found it, if any


@dataclass
class SensorStatus:
    """What a runner's screen shows per sensor (and what ``--status`` logs)."""

    address: str
    placement: str
    protocol: str
    connected: bool = False
    rssi_dbm: int | None = None
    battery_pct: int | None = None
    packets: int = 0
    lost_samples: int = 0
    unpaired_samples: int = 0
    dropped_packets: int = 0  # queue overflow: the consumer fell behind
    decode_errors: int = 0
    reconnects: int = 0
    clock_offset_s: float | None = None
    drift_ppm: float = 0.0
    last_error: str = ""


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: ``initial_s * factor**k`` capped at ``max_s``, full jitter."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5  # each delay is drawn from [(1 - jitter) * d, d]

    def delays(self, rng: random.Random) -> Iterator[float]:
        delay = self.initial_s
        while True:
            yield delay * (1.0 - self.jitter * rng.random())
            delay = min(self.max_s, delay * self.factor)


class ClientLike(Protocol):
    """The part of :class:`bleak.BleakClient` the transport uses."""

    @property
    def is_connected(self) -> bool: ...

    @property
    def mtu_size(self) -> int: ...

    async def connect(self) -> Any: ...

    async def disconnect(self) -> Any: ...

    async def start_notify(self, char_specifier: str, callback: Callable[..., Any]) -> None: ...

    async def write_gatt_char(self, char_specifier: str, data: bytes, response: bool) -> None: ...

    async def read_gatt_char(self, char_specifier: str) -> bytearray: ...


ClientFactory = Callable[[SensorSpec, Callable[[Any], None]], ClientLike]


def bleak_client_factory(spec: SensorSpec, on_disconnect: Callable[[Any], None]) -> ClientLike:
    try:
        from bleak import BleakClient
    except ImportError as err:  # pragma: no cover - depends on the install
        raise RuntimeError(BLE_INSTALL_HINT) from err
    kwargs: dict[str, Any] = {}
    if spec.adapter:
        kwargs["bluez"] = {"adapter": spec.adapter}
    return BleakClient(
        spec.address, disconnected_callback=on_disconnect, timeout=CONNECT_TIMEOUT_S, **kwargs
    )


# ---------------------------------------------------------------------- queue items

#: In the raw stream (queue and recordings), an empty packet means "the link came back
#: here": half-received messages are dropped and the gap is counted. No protocol sends
#: empty notifications, so the marker cannot be mistaken for data.
RECONNECTED = b""


@dataclass(slots=True)
class _Packet:
    index: int  # sensor
    arrival_s: float
    data: bytes


class _Link:
    """:class:`GattLink` over a connected client; notifications go to the queue."""

    def __init__(
        self, client: ClientLike, put: Callable[[float, bytes], None], now: Callable[[], float]
    ) -> None:
        self._client = client
        self._put = put
        self._now = now
        self._waiters: dict[str, asyncio.Future[bytes]] = {}

    @property
    def mtu(self) -> int:
        return int(self._client.mtu_size)

    def on_notify(self, sender: Any, data: bytearray) -> None:
        # Runs in the Bluetooth stack's callback: time-stamp and enqueue, nothing more.
        arrival = self._now()
        payload = bytes(data)
        uuid = str(getattr(sender, "uuid", sender)).lower()
        waiter = self._waiters.pop(uuid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(payload)
        self._put(arrival, payload)

    async def subscribe(self, char_uuid: str) -> None:
        await self._client.start_notify(char_uuid, self.on_notify)

    async def write(self, char_uuid: str, data: bytes, response: bool = True) -> None:
        await self._client.write_gatt_char(char_uuid, data, response=response)

    async def request(
        self, write_uuid: str, data: bytes, answer_uuid: str, timeout_s: float
    ) -> bytes:
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters[answer_uuid.lower()] = answer
        try:
            await self.write(write_uuid, data)
            return await asyncio.wait_for(answer, timeout_s)
        finally:
            self._waiters.pop(answer_uuid.lower(), None)


class _Sensor:
    """Per-sensor state owned by the consumer (decoder, clocks) and the link task."""

    def __init__(self, index: int, spec: SensorSpec, clock_config: ClockConfig | None) -> None:
        self.index = index
        self.spec = spec
        self.driver: Driver = make_driver(spec.protocol, spec.model, spec.options)
        self.decoder: Decoder = self.driver.make_decoder()
        self.assembler = SensorAssembler(
            spec.placement,
            spec.name or spec.address,
            separate_streams=self.driver.separate_streams,
            clock_config=clock_config,
        )
        self.status = SensorStatus(
            spec.address, spec.placement, spec.protocol, rssi_dbm=spec.rssi_dbm
        )


class Collector:
    """Collect from several sensors until :meth:`stop`; see the module docstring.

    Callbacks (all run in the consumer task, in arrival order):
    ``on_chunk(chunk)`` for IMU samples, ``on_raw(arrival_s, placement, protocol, data)``
    for every notification (to record it), ``on_rsc(placement, arrival_s, measurement)``
    for foot pods. Session time is ``now() - t0``, ``t0`` taken when :meth:`run` starts.
    """

    def __init__(
        self,
        specs: Sequence[SensorSpec],
        *,
        on_chunk: Callable[[Chunk], None] | None = None,
        on_raw: Callable[[float, str, str, bytes], None] | None = None,
        on_rsc: Callable[[str, float, RscMeasurement], None] | None = None,
        client_factory: ClientFactory = bleak_client_factory,
        now: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        clock_config: ClockConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._sensors = [_Sensor(i, spec, clock_config) for i, spec in enumerate(specs)]
        self._on_chunk = on_chunk
        self._on_raw = on_raw
        self._on_rsc = on_rsc
        self._factory = client_factory
        self._now = now
        self._t0 = 0.0
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._locks: dict[str | None, asyncio.Lock] = {}
        self._queue: asyncio.Queue[_Packet | None] | None = None
        self._stopping: asyncio.Event | None = None
        self._running = False

    @property
    def statuses(self) -> list[SensorStatus]:
        return [s.status for s in self._sensors]

    @property
    def t0(self) -> float:
        """``now()`` at the start of the session: session time = now() - t0."""
        return self._t0

    def session_time(self) -> float:
        return self._now() - self._t0

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Connect everything and stream until :meth:`stop` is called."""
        self._t0 = self._now()
        self._queue = asyncio.Queue(QUEUE_PACKETS)
        self._stopping = asyncio.Event()
        self._running = True
        consumer = asyncio.create_task(self._consume(), name="hipstride-consumer")
        links = [
            asyncio.create_task(self._keep_linked(s), name=f"hipstride-link-{s.spec.address}")
            for s in self._sensors
        ]
        try:
            await self._stopping.wait()
        finally:
            await asyncio.gather(*links, return_exceptions=True)
            await self._queue.put(None)
            await consumer
            self._running = False

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def wait_connected(self, timeout_s: float) -> bool:
        """True once every sensor is connected and started (for tests and the CLI)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(s.status.connected for s in self._sensors):
                return True
            await asyncio.sleep(0.01)
        return False

    # ------------------------------------------------------------------ links

    def _lock(self, adapter: str | None) -> asyncio.Lock:
        return self._locks.setdefault(adapter, asyncio.Lock())

    async def _keep_linked(self, sensor: _Sensor) -> None:
        assert self._stopping is not None
        delays = self._backoff.delays(self._rng)
        first = True
        while not self._stopping.is_set():
            if not first:
                sensor.status.reconnects += 1
                self._enqueue(sensor, RECONNECTED)
            first = False
            started = time.monotonic()
            try:
                await self._session(sensor)
            except Exception as err:  # any failure of one link must not end the others
                sensor.status.last_error = f"{type(err).__name__}: {err}"
                log.warning("%s (%s): %s", sensor.spec.placement, sensor.spec.address, err)
            if self._stopping.is_set():
                break
            if time.monotonic() - started > STABLE_LINK_S:
                delays = self._backoff.delays(self._rng)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), next(delays))

    async def _session(self, sensor: _Sensor) -> None:
        """One connection: connect, subscribe, start, stream until it drops or we stop."""
        assert self._stopping is not None
        lost = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_disconnect(_client: Any) -> None:
            loop.call_soon_threadsafe(lost.set)

        client = self._factory(sensor.spec, on_disconnect)
        try:
            async with self._lock(sensor.spec.adapter):
                await _within(client.connect(), CONNECT_TIMEOUT_S, "connect")
            link = _Link(client, lambda t, data: self._enqueue(sensor, data, t), self.session_time)
            await _within(sensor.driver.start(link, sensor.decoder), START_TIMEOUT_S, "start")
            sensor.status.connected = True
            sensor.status.last_error = ""
            await self._stream(sensor, client, lost)
        finally:
            sensor.status.connected = False
            await self._close(sensor, client, stopping=self._stopping.is_set())

    async def _stream(self, sensor: _Sensor, client: ClientLike, lost: asyncio.Event) -> None:
        assert self._stopping is not None
        while not lost.is_set() and not self._stopping.is_set() and client.is_connected:
            await self._read_battery(sensor, client)
            waits = [asyncio.ensure_future(e.wait()) for e in (lost, self._stopping)]
            _, pending = await asyncio.wait(
                waits, timeout=BATTERY_EVERY_S, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

    async def _read_battery(self, sensor: _Sensor, client: ClientLike) -> None:
        try:
            value = await asyncio.wait_for(client.read_gatt_char(BATTERY_LEVEL_UUID), 5.0)
        except Exception:  # no Battery Service: nothing to show
            return
        if value:
            sensor.status.battery_pct = int(value[0])

    async def _close(self, sensor: _Sensor, client: ClientLike, *, stopping: bool) -> None:
        if not client.is_connected:
            return
        if stopping:  # be polite: stop the stream so the sensor can sleep
            link = _Link(client, lambda _t, _d: None, self.session_time)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sensor.driver.stop(link), 2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), 5.0)

    def _enqueue(self, sensor: _Sensor, data: bytes, arrival_s: float | None = None) -> None:
        assert self._queue is not None
        arrival = self.session_time() if arrival_s is None else arrival_s
        try:
            self._queue.put_nowait(_Packet(sensor.index, arrival, data))
        except asyncio.QueueFull:
            sensor.status.dropped_packets += 1

    # ------------------------------------------------------------------ consumer

    async def _consume(self) -> None:
        assert self._queue is not None
        while True:
            packet = await self._queue.get()
            if packet is None:
                return
            sensor = self._sensors[packet.index]
            if packet.data == RECONNECTED:
                if self._on_raw is not None:  # recorded too, so replay resets where we did
                    spec = sensor.spec
                    self._on_raw(packet.arrival_s, spec.placement, spec.protocol, RECONNECTED)
                sensor.decoder.reset()
                sensor.assembler.reconnected()
                continue
            self._handle(sensor, packet)

    def _handle(self, sensor: _Sensor, packet: _Packet) -> None:
        spec, status = sensor.spec, sensor.status
        status.packets += 1
        if self._on_raw is not None:
            self._on_raw(packet.arrival_s, spec.placement, spec.protocol, packet.data)
        try:
            results = sensor.decoder.feed(packet.data)
        except DecodeError as err:
            status.decode_errors += 1
            status.last_error = str(err)
            return
        for result in results:
            if isinstance(result, RscMeasurement):
                if self._on_rsc is not None:
                    self._on_rsc(spec.placement, packet.arrival_s, result)
                continue
            self._emit(sensor, result, packet.arrival_s)

    def _emit(self, sensor: _Sensor, result: DecodedSamples, arrival_s: float) -> None:
        chunks = sensor.assembler.push(result, arrival_s)
        status, assembler = sensor.status, sensor.assembler
        status.lost_samples = assembler.lost_samples
        status.unpaired_samples = assembler.unpaired
        clock = assembler.clock
        if clock is not None:
            status.clock_offset_s = clock.offset_s
            status.drift_ppm = clock.drift_ppm
        if self._on_chunk is not None:
            for chunk in chunks:
                self._on_chunk(chunk)


async def _within(step: Any, timeout_s: float, what: str) -> None:
    try:
        await asyncio.wait_for(step, timeout_s)
    except TimeoutError as err:
        if err.args:  # the client's own timeout, with its own message
            raise
        raise TimeoutError(f"{what} took longer than {timeout_s:.0f} s") from None


# ---------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class Found:
    address: str
    name: str
    rssi_dbm: int | None
    protocol: str | None  # None: not a sensor hipstride can read


async def scan(timeout_s: float = 5.0, adapter: str | None = None) -> list[Found]:
    """Advertising devices, strongest first, with the protocol hipstride would use."""
    try:
        from bleak import BleakScanner
    except ImportError as err:  # pragma: no cover - depends on the install
        raise RuntimeError(BLE_INSTALL_HINT) from err
    kwargs: dict[str, Any] = {"bluez": {"adapter": adapter}} if adapter else {}
    seen = await BleakScanner.discover(timeout=timeout_s, return_adv=True, **kwargs)
    found = [
        Found(
            address=device.address,
            name=adv.local_name or device.name or "",
            rssi_dbm=adv.rssi,
            protocol=recognise(adv.local_name or device.name or "", list(adv.service_uuids)),
        )
        for device, adv in seen.values()
    ]
    return sorted(found, key=lambda f: -(f.rssi_dbm if f.rssi_dbm is not None else -999))
