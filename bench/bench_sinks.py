"""Publishing sinks against real local servers: throughput and added latency.

    .venv/bin/python bench/bench_sinks.py [--steps 20000] [--points 50000] [--live-s 10]

Starts Mosquitto and VictoriaMetrics (Debian packages ``mosquitto``,
``victoria-metrics``) on free 127.0.0.1 ports, like the tests do, and measures:

* MQTT sink throughput: step records added as fast as the caller can, until the last
  one reached a subscriber (QoS 1, every PUBACK awaited): steps/s.
* InfluxDB sink throughput (v2 API into VictoriaMetrics): records until ``close()``
  returns with an empty backlog (every batch acknowledged by the server): points/s.
* Raw-chunk publisher: 200-sample IMU chunks (acc + gyro, float64) to the broker.
* Added latency at a live-like rate (``--rate`` steps/s for ``--live-s``): from the
  record's creation to its arrival at an MQTT subscriber, and to the InfluxDB server's
  acknowledgement of the batch holding it (that one is dominated by the batching age,
  ``flush_interval_s``). Same process, one monotonic clock: median and p99.

A live run makes ~3 steps/s per athlete and a summary every 5 s, so the figures are
headroom, not a target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.mqtt_raw import RawChunkPublisher
from pipeline.records import StepRecord
from pipeline.sinks.config import InfluxSettings, MqttSettings
from pipeline.sinks.influx import InfluxSink, make_writer
from pipeline.sinks.mqtt import MqttSink
from sensors.model import Chunk
from tests.servers import Mosquitto, Subscriber, VictoriaMetrics, find_binary


def steps(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        StepRecord(
            "left" if i % 2 else "right",
            ic_s=0.35 * i,
            to_s=0.35 * i + 0.25,
            contact_ms=250.0,
            step_ms=350.0,
            cadence_spm=171.4,
            pelvic_drop_deg=5.2,
            index=i,
        ).as_dict()
        for i in range(start, start + n)
    ]


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def mqtt_throughput(broker: Mosquitto, tmp: Path, n: int) -> float:
    sub = Subscriber(broker.port, ["hipstride/bench/steps"])
    sink = MqttSink(MqttSettings(host="127.0.0.1", port=broker.port), "bench", spool_dir=tmp / "m")
    records = steps(n)
    t0 = time.perf_counter()
    for i in range(0, n, 10):
        sink.add(records[i : i + 10])
    sub.wait_count("/steps", n, 120)
    elapsed = time.perf_counter() - t0
    sink.close()
    sub.close()
    return n / elapsed


def influx_throughput(vm: VictoriaMetrics, tmp: Path, n: int) -> float:
    settings = InfluxSettings(url=vm.base, bucket="b", batch_size=5000, flush_interval_s=0.2)
    sink = InfluxSink(settings, "bench", spool_dir=tmp / "i", start_unix_s=1.7e9)
    records = steps(n)
    t0 = time.perf_counter()
    for i in range(0, n, 10):
        sink.add(records[i : i + 10])
    sink.close(120.0)
    elapsed = time.perf_counter() - t0
    assert sink.status()["backlog"] == 0 and sink.status()["sent"] == n
    return n / elapsed


def raw_throughput(broker: Mosquitto, tmp: Path, seconds: float) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    n = 200
    chunks = [
        Chunk("pelvis", k + np.arange(n) / n, rng.normal(size=(n, 3)), rng.normal(size=(n, 3)))
        for k in range(int(seconds * 400))
    ]
    sub = Subscriber(broker.port, ["hipstride/bench/raw/#"])
    pub = RawChunkPublisher(
        MqttSettings(host="127.0.0.1", port=broker.port), "bench", spool_dir=tmp / "r"
    )
    t0 = time.perf_counter()
    for c in chunks:
        pub.publish(c)
    with sub.cond:
        while len(sub.messages) < len(chunks):
            sub.cond.wait(1.0)
    elapsed = time.perf_counter() - t0
    pub.close()
    sub.close()
    return len(chunks) / elapsed, len(chunks) * n / elapsed


class TimedWriter:
    """Wraps the real writer: notes when each line's batch was acknowledged."""

    def __init__(self, inner: Any, created: dict[str, int], latencies: list[float]) -> None:
        self.inner, self.created, self.latencies = inner, created, latencies

    def write(self, lines: Sequence[str]) -> None:
        self.inner.write(lines)
        now = time.perf_counter_ns()
        for line in lines:
            t = self.created.pop(line.rsplit(" ", 1)[1], None)
            if t is not None:
                self.latencies.append((now - t) / 1e6)

    def close(self) -> None:
        self.inner.close()


def live_latency(
    broker: Mosquitto, vm: VictoriaMetrics, tmp: Path, rate: float, seconds: float, flush_s: float
) -> tuple[list[float], list[float]]:
    sub = Subscriber(broker.port, ["hipstride/live/steps"])
    mqtt = MqttSink(MqttSettings(host="127.0.0.1", port=broker.port), "live", spool_dir=tmp / "lm")
    created: dict[str, int] = {}
    influx_ms: list[float] = []
    settings = InfluxSettings(url=vm.base, bucket="b", flush_interval_s=flush_s)
    writer = TimedWriter(make_writer(settings), created, influx_ms)
    influx = InfluxSink(settings, "live", spool_dir=tmp / "li", start_unix_s=1.7e9, writer=writer)
    n = int(rate * seconds)
    t0 = time.perf_counter()
    for i, record in enumerate(steps(n)):
        due = t0 + i / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        now = time.perf_counter_ns()
        record["bench_created_ns"] = now
        created[str(round((1.7e9 + record["ic_s"]) * 1e6) * 1000)] = now
        mqtt.add([record])
        influx.add([record])
    mqtt.close()
    influx.close()
    sub.wait_count("/steps", n)
    sub.close()
    mqtt_ms = [
        (arrived - json.loads(payload)["bench_created_ns"]) / 1e6
        for (_, payload, _), arrived in zip(sub.messages, sub.arrived_ns, strict=True)
    ]
    return mqtt_ms, influx_ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20_000, help="MQTT throughput run")
    ap.add_argument("--points", type=int, default=50_000, help="InfluxDB throughput run")
    ap.add_argument("--raw-s", type=float, default=5.0, help="seconds of 400 chunks/s raw data")
    ap.add_argument("--rate", type=float, default=50.0, help="live latency: steps/s")
    ap.add_argument("--live-s", type=float, default=10.0, help="live latency: duration")
    ap.add_argument("--flush-s", type=float, default=1.0, help="InfluxDB batching age")
    args = ap.parse_args()
    try:
        mosq_bin = find_binary("mosquitto", "mosquitto")
        vm_bin = find_binary("victoria-metrics", "victoria-metrics")
    except BaseException as err:  # pytest.skip outside pytest
        print(f"cannot run: {err}")
        return 2
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker, vm = Mosquitto(mosq_bin, tmp / "mosq"), VictoriaMetrics(vm_bin, tmp / "vm")
        broker.start()
        vm.start()
        try:
            steps_s = mqtt_throughput(broker, tmp, args.steps)
            print(f"MQTT sink, QoS 1:        {steps_s:10,.0f} steps/s")
            points_s = influx_throughput(vm, tmp, args.points)
            print(f"InfluxDB sink, v2 (VM):  {points_s:10,.0f} points/s")
            chunks_s, samples_s = raw_throughput(broker, tmp, args.raw_s)
            print(
                f"raw chunks (200 x acc+gyr, float64): {chunks_s:,.0f} chunks/s"
                f" = {samples_s:,.0f} samples/s"
            )
            mqtt_ms, influx_ms = live_latency(broker, vm, tmp, args.rate, args.live_s, args.flush_s)
            for name, values in (("MQTT subscriber", mqtt_ms), ("InfluxDB ack", influx_ms)):
                print(
                    f"latency to {name} at {args.rate:.0f} steps/s (n={len(values)}): "
                    f"median {statistics.median(values):.2f} ms, p99 {pct(values, 99):.2f} ms"
                )
        finally:
            broker.stop()
            vm.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
