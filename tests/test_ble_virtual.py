"""End to end over a virtual radio: five virtual sensors, the real bleak API, our code.

Virtual sensors (bumble GATT servers, each in its device's own wire format) stream a
simulated run; the collector connects to them through ``bleak.BleakClient`` with our
bumble backend, subscribes, starts them, decodes, maps clocks and emits chunks. Midway
two sensors lose their link for a second; the collector must reconnect, re-subscribe,
resend the start commands and count the missing samples, never invent any.

Every received sample is checked against the simulator's value for the sample it
claims to be, and its session time against the time that sample was really taken.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import numpy as np
import pytest

pytest.importorskip("bumble")

from sensors.ble.transport import Backoff, Collector, SensorSpec
from sensors.ble.virtual import (
    SimClock,
    VirtualAir,
    VirtualHipstride,
    VirtualMovesense,
    VirtualPolarVerity,
    VirtualRscPod,
    VirtualSensor,
    VirtualWitMotion,
)
from sensors.model import Chunk
from sensors.protocols.types import RscMeasurement

SPEED = 2.0  # simulated seconds per wall second (host stalls count x SPEED)
OUTAGE_S = 1.0


class Run:
    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.raw: list[tuple[float, str, str, bytes]] = []
        self.rsc: list[RscMeasurement] = []


async def scenario() -> tuple[Collector, list[VirtualSensor], Run]:
    clock = SimClock(speed=SPEED)
    air = VirtualAir(clock)
    sensors: list[VirtualSensor] = [
        VirtualPolarVerity("C0:FF:EE:00:00:01", clock, placement="pelvis", drift_ppm=40),
        VirtualMovesense("C0:FF:EE:00:00:02", clock, placement="left_foot", drift_ppm=-25),
        VirtualHipstride("C0:FF:EE:00:00:03", clock, placement="right_foot"),
        VirtualWitMotion("C0:FF:EE:00:00:04", clock, placement="chest"),
        VirtualRscPod("C0:FF:EE:00:00:05", clock),
    ]
    for sensor in sensors:
        await air.add(sensor)
    specs = [SensorSpec(s.address, s.protocol, s.placement, options=_options(s)) for s in sensors]
    run = Run()
    collector = Collector(
        specs,
        on_chunk=run.chunks.append,
        on_raw=lambda *packet: run.raw.append(packet),
        on_rsc=lambda _placement, _t, m: run.rsc.append(m),
        client_factory=air.client_factory(),
        now=clock.now,
        backoff=Backoff(initial_s=0.2, max_s=1.0),
    )
    task = asyncio.create_task(collector.run())
    assert await collector.wait_connected(20.0), [s.last_error for s in collector.statuses]
    await clock.sleep_until(clock.now() + 3.0)
    await asyncio.gather(sensors[1].drop_link(OUTAGE_S), sensors[2].drop_link(OUTAGE_S))
    assert await collector.wait_connected(20.0), [s.last_error for s in collector.statuses]
    await clock.sleep_until(clock.now() + 3.0)
    collector.stop()
    await task
    await air.close()
    return collector, sensors, run


def _options(sensor: VirtualSensor) -> dict[str, str]:
    return {"rate_hz": "50"} if sensor.protocol == "witmotion" else {}


@pytest.fixture(scope="module")
def outcome() -> tuple[Collector, list[VirtualSensor], Run]:
    return asyncio.run(scenario())


def test_every_sensor_was_started_again_after_its_link_came_back(outcome) -> None:
    collector, sensors, _ = outcome
    polar, movesense, diy, wit, _pod = sensors
    assert [len(s.start_commands) for s in (polar, movesense, diy, wit)] == [2, 2, 2, 1]
    assert movesense.start_commands[0] == movesense.start_commands[1]  # same subscription
    assert [s.connections for s in sensors] == [1, 2, 2, 1, 1]
    status = {s.address: s for s in collector.statuses}
    assert [status[s.address].reconnects for s in sensors] == [0, 1, 1, 0, 0]
    assert all(s.battery_pct == 87 for s in collector.statuses)
    assert all(s.decode_errors == 0 and s.dropped_packets == 0 for s in collector.statuses)
    assert not any(s.connected for s in collector.statuses)  # stopped cleanly


def test_raw_packets_are_all_handed_to_the_recorder(outcome) -> None:
    collector, _, run = outcome
    by_protocol: dict[str, int] = defaultdict(int)
    markers: dict[str, int] = defaultdict(int)
    for _t, _placement, protocol, data in run.raw:
        if data:
            by_protocol[protocol] += 1
        else:  # where a link came back, so a replay resets where the live run did
            markers[protocol] += 1
    assert {s.protocol: s.packets for s in collector.statuses} == by_protocol
    assert {s.protocol: s.reconnects for s in collector.statuses if s.reconnects} == markers
    arrivals = [t for t, *_ in run.raw]
    assert arrivals == sorted(arrivals)


def test_foot_pod_measurements(outcome) -> None:
    _, _, run = outcome
    assert len(run.rsc) >= 5
    assert all(m.speed_mps == pytest.approx(3.3, abs=1 / 256) for m in run.rsc)


def _matched(
    sensor: VirtualSensor, chunks: list[Chunk], t0: float
) -> tuple[np.ndarray, np.ndarray]:
    """For every received sample: which sensor sample it is, and its time error (s)."""
    t = np.concatenate([c.t_s for c in chunks])
    acc = np.concatenate([c.acc_mps2 for c in chunks])
    gyr = np.concatenate([c.gyr_dps for c in chunks if c.gyr_dps is not None])
    assert np.all(np.diff(t) > 0), "session times must strictly increase"
    tol_acc = 16 * 9.80665 / 32768  # coarsest quantisation in play (±16 g int16)
    tol_gyr = 2000 / 32768
    ks, errors = [], []
    for ti, a, g in zip(t, acc, gyr, strict=True):
        guess = round(sensor.sensor_time(ti + t0) * sensor.rate_hz)
        # Nearest first: before the clock fit has settled (first second) the time can be
        # off by the first packets' latency, tens of ms.
        window = int(0.5 * sensor.rate_hz)
        for k in sorted(range(guess - window, guess + window + 1), key=lambda k: abs(k - guess)):
            true_acc, true_gyr = sensor.signals(k, 1)
            if np.allclose(a, true_acc[0], atol=tol_acc) and np.allclose(
                g, true_gyr[0], atol=tol_gyr
            ):
                ks.append(k)
                errors.append(ti + t0 - sensor.sample_time(k))
                break
        else:
            raise AssertionError(f"{sensor.protocol}: sample at {ti:.3f} s matches no sent sample")
    return np.array(ks), np.array(errors)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_samples_are_the_sent_ones_at_the_right_time(outcome, index: int) -> None:
    collector, sensors, run = outcome
    sensor = sensors[index]
    chunks = [c for c in run.chunks if c.placement == sensor.placement]
    ks, errors = _matched(sensor, chunks, collector.t0)
    steps = np.diff(ks)
    assert np.all(steps >= 1), "no sample twice, none out of order"
    status = next(s for s in collector.statuses if s.address == sensor.address)
    if status.reconnects:
        # The outage shows as one gap, counted exactly, not filled in.
        assert steps.max() > sensor.rate_hz * OUTAGE_S * 0.9
        assert status.lost_samples == int((steps - 1).sum())
    else:
        assert np.all(steps == 1) and status.lost_samples == 0
    # Within a few ms after the first second: bumble's in-process latency and event
    # loop stalls, x SPEED (typically 2-5 ms; the bound leaves room for a busy host).
    assert np.abs(errors[ks >= ks[0] + sensor.rate_hz]).max() < 0.03
