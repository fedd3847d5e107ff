"""Transport rules at the bleak API boundary, with a scripted fake BleakClient.

The end-to-end behaviour is tested over bumble's virtual radio (test_ble_virtual.py);
these cover what is awkward to provoke there: connects overlapping on one adapter,
sensors that are unreachable for a while, backoff timing, queue overflow.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

from sensors.ble.transport import Backoff, Collector, SensorSpec
from sensors.protocols import hipstride_profile as hp


class FakeClient:
    """Enough of BleakClient for the transport; behaviour scripted per address."""

    # Shared by every fake of one test run (reset by run_collector).
    active_connects: ClassVar[dict[str | None, int]] = {}
    max_parallel: ClassVar[dict[str | None, int]] = {}
    attempts: ClassVar[dict[str, int]] = {}

    def __init__(
        self, spec: SensorSpec, on_disconnect: Callable[[Any], None], fail_first: int
    ) -> None:
        self.spec = spec
        self.on_disconnect = on_disconnect
        self.fail_first = fail_first
        self.connected = False
        self.writes: list[tuple[str, bytes]] = []
        self.callbacks: dict[str, Callable[..., Any]] = {}

    @property
    def is_connected(self) -> bool:
        return self.connected

    @property
    def mtu_size(self) -> int:
        return 247

    async def connect(self) -> None:
        adapter = self.spec.adapter
        FakeClient.active_connects[adapter] = FakeClient.active_connects.get(adapter, 0) + 1
        FakeClient.max_parallel[adapter] = max(
            FakeClient.max_parallel.get(adapter, 0), FakeClient.active_connects[adapter]
        )
        try:
            await asyncio.sleep(0.01)  # a connect takes time: overlaps would show
            n = FakeClient.attempts[self.spec.address] = (
                FakeClient.attempts.get(self.spec.address, 0) + 1
            )
            if n <= self.fail_first:
                raise TimeoutError("device not found")
            self.connected = True
        finally:
            FakeClient.active_connects[adapter] -= 1

    async def disconnect(self) -> None:
        self.connected = False

    async def start_notify(self, char: str, callback: Callable[..., Any]) -> None:
        self.callbacks[char] = callback

    async def write_gatt_char(self, char: str, data: bytes, response: bool) -> None:
        self.writes.append((char, bytes(data)))

    async def read_gatt_char(self, char: str) -> bytearray:
        return bytearray([55])

    def lose_link(self) -> None:
        self.connected = False
        self.on_disconnect(self)


def run_collector(
    specs: list[SensorSpec], fail_first: int, script: Callable[[Collector, list[FakeClient]], Any]
) -> tuple[Collector, list[FakeClient]]:
    FakeClient.active_connects, FakeClient.max_parallel, FakeClient.attempts = {}, {}, {}
    clients: list[FakeClient] = []

    def factory(spec: SensorSpec, on_disconnect: Callable[[Any], None]) -> FakeClient:
        client = FakeClient(spec, on_disconnect, fail_first)
        clients.append(client)
        return client

    collector = Collector(
        specs,
        client_factory=factory,
        backoff=Backoff(initial_s=0.01, max_s=0.05),
        rng=random.Random(1),
    )

    async def main() -> None:
        task = asyncio.create_task(collector.run())
        await script(collector, clients)
        collector.stop()
        await task

    asyncio.run(main())
    return collector, clients


def specs(n: int, adapters: tuple[str | None, ...] = (None,)) -> list[SensorSpec]:
    return [
        SensorSpec(
            f"AA:00:00:00:00:0{i}", "hipstride", "pelvis", adapter=adapters[i % len(adapters)]
        )
        for i in range(n)
    ]


def test_connects_are_serialised_per_adapter_only() -> None:
    async def script(collector: Collector, _clients: list[FakeClient]) -> None:
        assert await collector.wait_connected(5.0)

    run_collector(specs(4, adapters=("hci0", "hci1")), 0, script)
    assert FakeClient.max_parallel == {"hci0": 1, "hci1": 1}


def test_unreachable_sensor_is_retried_with_backoff_and_reports_why() -> None:
    seen_error: list[str] = []

    async def script(collector: Collector, _clients: list[FakeClient]) -> None:
        while FakeClient.attempts.get("AA:00:00:00:00:00", 0) < 2:
            await asyncio.sleep(0.001)
        seen_error.append(collector.statuses[0].last_error)
        assert await collector.wait_connected(5.0)

    collector, _ = run_collector(specs(1), 3, script)
    assert FakeClient.attempts["AA:00:00:00:00:00"] == 4
    assert seen_error == ["TimeoutError: device not found"]
    assert collector.statuses[0].reconnects == 3
    assert collector.statuses[0].last_error == ""  # cleared once connected


def test_after_link_loss_it_subscribes_and_starts_again() -> None:
    async def script(collector: Collector, clients: list[FakeClient]) -> None:
        assert await collector.wait_connected(5.0)
        clients[0].lose_link()
        while len(clients) < 2 or not collector.statuses[0].connected:
            await asyncio.sleep(0.001)

    collector, clients = run_collector(specs(1), 0, script)
    start = (hp.CONTROL_UUID, hp.start_command(hp.StreamConfig()))
    assert clients[0].writes == [start]
    assert clients[1].writes[0] == start
    assert hp.DATA_UUID in clients[1].callbacks
    assert collector.statuses[0].reconnects == 1
    assert collector.statuses[0].battery_pct == 55
    assert clients[1].writes[-1] == (hp.CONTROL_UUID, hp.stop_command())  # polite stop


def test_backoff_grows_caps_and_jitters() -> None:
    delays = Backoff(initial_s=1.0, max_s=8.0, factor=2.0, jitter=0.5).delays(random.Random(0))
    got = [next(delays) for _ in range(8)]
    caps = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(cap / 2 <= d <= cap for d, cap in zip(got, caps, strict=True))
    assert len(set(got)) == len(got)  # jittered: sensors that dropped together spread out


class Char:
    """What bleak passes as a notification's sender."""

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid


def test_decode_errors_are_counted_not_fatal() -> None:
    async def script(collector: Collector, clients: list[FakeClient]) -> None:
        assert await collector.wait_connected(5.0)
        notify = clients[0].callbacks[hp.DATA_UUID]
        counts = np.zeros((2, 3), dtype=np.int16)
        notify(Char(hp.DATA_UUID), bytearray(b"\x01garbage"))
        notify(
            Char(hp.DATA_UUID), bytearray(hp.pack_packet(hp.StreamConfig(), 0, 0, counts, counts))
        )
        while collector.statuses[0].packets < 2:
            await asyncio.sleep(0.001)

    collector, _ = run_collector(specs(1), 0, script)
    status = collector.statuses[0]
    assert status.packets == 2 and status.decode_errors == 1
    assert status.last_error == "hipstride packet: packet too short: need 16 bytes, got 8"
    assert status.clock_offset_s is not None  # the good packet went through


@pytest.mark.parametrize("protocol", ["polar-pmd", "movesense", "witmotion", "rsc", "hipstride"])
def test_every_protocol_has_a_driver(protocol: str) -> None:
    from sensors.ble.drivers import make_driver

    driver = make_driver(protocol)
    assert driver.protocol == protocol
    assert driver.make_decoder().name == protocol
