"""A simulated run through pipeline.driver.drive into the MQTT and InfluxDB sinks at once."""

from __future__ import annotations

import itertools
from pathlib import Path

from pipeline.driver import drive
from pipeline.engine import Pipeline, run_all
from pipeline.sinks.config import InfluxSettings, MqttSettings
from pipeline.sinks.influx import InfluxSink
from pipeline.sinks.mqtt import MqttSink
from sensors.simulator import SimConfig, simulate
from tests.servers import Mosquitto, Subscriber, VictoriaMetrics

START = 1_760_000_000.0


def test_drive_publishes_every_step_to_mqtt_and_influx(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    sim = simulate(SimConfig(duration_s=30, seed=4))
    expected = [r.as_dict() for r in run_all(Pipeline(sim.config.sensors), sim.chunks())]
    expected_steps = [r for r in expected if r["kind"] == "step"]
    assert len(expected_steps) > 60

    sub = Subscriber(mosquitto.port, ["hipstride/anna/#"])
    sinks = [
        MqttSink(
            MqttSettings(host="127.0.0.1", port=mosquitto.port),
            "anna",
            spool_dir=tmp_path / "mqtt",
            session="e2e",
        ),
        InfluxSink(
            InfluxSettings(url=victoria.base, bucket="b", flush_interval_s=0.2),
            "anna",
            spool_dir=tmp_path / "influx",
            session="e2e",
            start_unix_s=START,
        ),
    ]
    result = drive(sim.chunks(), Pipeline(sim.config.sensors), sinks)  # closes the sinks
    assert result.steps == len(expected_steps)

    got = sub.wait_count("/steps", len(expected_steps))
    assert [
        {k: g[k] for k in e} for g, e in zip(got, expected_steps, strict=True)
    ] == expected_steps
    summaries = sub.wait_count("/summary", 6)
    rolling = [s["time_s"] for s in summaries if not s["final"]]
    assert len(rolling) == 5 and all(4.9 < b - a < 5.1 for a, b in itertools.pairwise(rolling))
    assert summaries[-1]["final"] is True and summaries[-1]["steps"] == len(expected_steps)
    for placement in sim.config.sensors:
        assert sub.payloads(f"/sensors/{placement}/status"), f"no status for {placement}"

    series = victoria.wait_samples("hipstride_steps_contact_ms", len(expected_steps))
    stored = sorted(t for s in series for t in s["timestamps"])
    # VictoriaMetrics keeps milliseconds, truncating the nanoseconds it was sent
    ns = [round((START + s["ic_s"]) * 1e6) * 1000 for s in expected_steps]
    assert stored == sorted(t // 1_000_000 for t in ns)
    sub.close()
