"""Run a :class:`Collector` in a background thread and hand chunks to synchronous code.

The pipeline driver (``pipeline.driver.drive``) iterates chunks synchronously; BLE is
asyncio. The collector runs in its own thread and event loop; chunks cross over a
bounded ``queue.Queue``. Recording happens on the collector's thread, in arrival order:
raw packets (so a decoder fix mends the recording on replay) and the decoded chunks (so
``hipstride replay`` reads it directly).

``virtual=True`` collects from virtual sensors over bumble's simulated radio instead of
real ones (a demo, and the command's own test); it needs the ``bumble`` package.
``virtual_link_drops`` maps a sensor address to ``(at_s, outage_s)``: that virtual
sensor loses its link at session time ``at_s`` for ``outage_s`` (a test of the
collector's reconnection); ``virtual_sensors`` then holds the sensors and what they sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sensors.ble.transport import Collector, SensorSpec, SensorStatus, bleak_client_factory
from sensors.errors import RecordingError
from sensors.model import Chunk
from sensors.recording import RecordingWriter

#: Chunks waiting for the pipeline; a pipeline this far behind is stuck, not slow.
MAX_WAITING_CHUNKS = 10_000
_END = object()


class LiveSession:
    def __init__(
        self,
        specs: Sequence[SensorSpec],
        *,
        writer: RecordingWriter | None = None,
        virtual: bool = False,
        virtual_speed: float = 1.0,
        virtual_link_drops: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.specs = list(specs)
        self.writer = writer
        self.virtual = virtual
        self.virtual_speed = virtual_speed
        self.virtual_link_drops = dict(virtual_link_drops or {})
        self.virtual_sensors: list[Any] = []
        self.error: BaseException | None = None
        self.dropped_chunks = 0
        self._queue: queue.Queue[Any] = queue.Queue(MAX_WAITING_CHUNKS)
        self._collector: Collector | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def statuses(self) -> list[SensorStatus]:
        collector = self._collector
        return [] if collector is None else [dataclasses.replace(s) for s in collector.statuses]

    def chunks(self, duration_s: float | None = None) -> Iterator[Chunk]:
        """Chunks as they arrive, until ``duration_s`` of session time or Ctrl-C."""
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(duration_s),), name="hipstride-ble", daemon=True
        )
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    break
                yield item
        finally:
            self.stop()
            self._thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop.set)

    # ------------------------------------------------------------------ collector thread

    async def _main(self, duration_s: float | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        air = None
        try:
            factory: Callable[..., Any] = bleak_client_factory
            now: Callable[[], float] = time.monotonic
            if self.virtual:
                air, now = await self._virtual_air()
                factory = air.client_factory()
            collector = Collector(
                self.specs,
                on_chunk=self._on_chunk,
                on_raw=self._on_raw,
                client_factory=factory,
                now=now,
            )
            self._collector = collector
            task = asyncio.create_task(collector.run())
            drops = [
                asyncio.create_task(self._drop_later(sensor, collector, *drop))
                for sensor in self.virtual_sensors
                if (drop := self.virtual_link_drops.get(sensor.address)) is not None
            ]
            while not self._stop.is_set() and not task.done():
                if duration_s is not None and collector.session_time() >= duration_s:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 0.05)
            collector.stop()
            for drop_task in drops:
                drop_task.cancel()
            await task
        except BaseException as err:  # reported in the caller's thread
            self.error = err
        finally:
            if air is not None:
                await air.close()
            self._queue.put(_END)

    async def _virtual_air(self) -> tuple[Any, Callable[[], float]]:
        from sensors.ble.virtual import VIRTUAL_SENSORS, SimClock, VirtualAir

        clock = SimClock(self.virtual_speed)
        air = VirtualAir(clock)
        for spec in self.specs:
            kwargs: dict[str, Any] = {"placement": spec.placement}
            if "rate_hz" in spec.options:  # its simulated signal is made before connecting
                kwargs["rate_hz"] = float(spec.options["rate_hz"])
            sensor = VIRTUAL_SENSORS[spec.protocol](spec.address, clock, **kwargs)
            await air.add(sensor)
            self.virtual_sensors.append(sensor)
        return air, clock.now

    @staticmethod
    async def _drop_later(sensor: Any, collector: Collector, at_s: float, outage_s: float) -> None:
        await sensor.clock.sleep_until(collector.t0 + at_s)
        await sensor.drop_link(outage_s)

    def _on_chunk(self, chunk: Chunk) -> None:
        if self.writer is not None:
            self._record(self.writer.write, chunk)
        try:
            self._queue.put_nowait(chunk)
        except queue.Full:
            self.dropped_chunks += 1

    def _on_raw(self, arrival_s: float, placement: str, protocol: str, data: bytes) -> None:
        if self.writer is not None:
            self._record(self.writer.write_raw, arrival_s, placement, protocol, data)

    def _record(self, write: Callable[..., None], *args: Any) -> None:
        try:
            write(*args)
        except RecordingError as err:  # disk full, ...: stop rather than lose silently
            self.error = err
            self.stop()
