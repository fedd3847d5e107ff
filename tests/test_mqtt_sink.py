"""The MQTT sink against a real Mosquitto: delivery, presence, outages, restarts, auth."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.records import Alert, SensorStatus, StepRecord
from pipeline.sinks.config import MqttSettings, load_settings
from pipeline.sinks.mqtt import MqttSink
from pipeline.sinks.options import make_sinks
from tests.servers import MQTT_USERS, Mosquitto, Subscriber

REPO = Path(__file__).resolve().parents[1]


def steps(first: int, last: int) -> list[dict[str, Any]]:
    """Distinct synthetic step records (the unit a sink sees; no detector needed)."""
    return [
        StepRecord(
            "left" if i % 2 else "right",
            ic_s=0.35 * i,
            to_s=0.35 * i + 0.25,
            contact_ms=250.0 + (i % 17) * 0.5,
            flight_ms=100.0,
            step_ms=350.0,
            cadence_spm=60000.0 / 350.0,
            pelvic_drop_deg=5.0 + (i % 5) * 0.1,
            source="left_foot" if i % 2 else "right_foot",
            index=i,
        ).as_dict()
        for i in range(first, last)
    ]


def settings(port: int, **kw: Any) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=port, reconnect_min_s=1, reconnect_max_s=1, **kw)


def wait_until(cond: Any, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


def indexes(payloads: list[dict[str, Any]]) -> list[int]:
    return [p["index"] for p in payloads]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_every_step_arrives_exactly_once(
    mosquitto: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    sub = Subscriber(mosquitto.port, ["hipstride/anna/#"])
    sink = MqttSink(settings(mosquitto.port, protocol=protocol), "anna", spool_dir=tmp_path / "s")
    records = steps(0, 2000)
    for i in range(0, len(records), 25):
        sink.add(records[i : i + 25])
    sink.close(10.0)
    got = sub.wait_count("/steps", len(records))
    time.sleep(0.3)  # a duplicate would arrive right behind
    got = sub.payloads("/steps")
    assert len(got) == len(records)
    for sent, received in zip(records, got, strict=True):
        assert {k: received[k] for k in sent} == sent
        assert received["schema_version"] == 1
    sub.close()


def test_alerts_summary_and_sensor_status(mosquitto: Mosquitto, tmp_path: Path) -> None:
    sink = MqttSink(settings(mosquitto.port), "anna", spool_dir=tmp_path / "s", session="s1")
    alert = Alert(30.0, "hip_drop_high", "critical", "pelvic_drop_deg", 11.0, 9.0, "Hips!", "left")
    sink.add([alert.as_dict()])
    sink.add([{"kind": "summary", "time_s": 30.0, "steps": 80, "final": False}])
    sink.add([SensorStatus(30.0, "pelvis", True, 6000, 3, 200.0).as_dict()])
    assert wait_until(lambda: sink.status()["sent"] == 3)
    # A subscriber arriving later gets the retained live values and the presence...
    late = Subscriber(mosquitto.port, ["hipstride/anna/#"])
    assert late.wait_for("hipstride/anna/status", b"online", 5)
    assert late.wait_count("/summary", 1, 5)[0]["steps"] == 80
    assert late.wait_count("/sensors/pelvis/status", 1, 5)[0]["samples_lost"] == 3
    assert not late.payloads("/alerts"), "alerts are events: not retained"
    late.close()
    sink.close()


def test_live_values_expire_for_late_subscribers(mosquitto: Mosquitto, tmp_path: Path) -> None:
    sink = MqttSink(settings(mosquitto.port, live_expiry_s=1), "anna", spool_dir=tmp_path / "s")
    sink.add([{"kind": "summary", "time_s": 5.0, "steps": 12}])
    assert wait_until(lambda: sink.status()["sent"] == 1)
    time.sleep(2.2)
    late = Subscriber(mosquitto.port, ["hipstride/anna/#"])
    assert late.wait_for("hipstride/anna/status", b"online", 5)
    time.sleep(0.3)
    assert not late.payloads("/summary"), "an expired summary must not be delivered"
    late.close()
    sink.close()


WILL_SCRIPT = """
import sys, time
from pipeline.sinks.config import MqttSettings
from pipeline.sinks.mqtt import MqttSink
sink = MqttSink(MqttSettings(host="127.0.0.1", port=int(sys.argv[1])), "bob", spool_dir=sys.argv[2])
while not sink.publisher.connected:
    time.sleep(0.01)
print("connected", flush=True)
time.sleep(60)
"""


def test_status_goes_offline_by_last_will_when_killed(mosquitto: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(mosquitto.port, ["hipstride/bob/status"])
    proc = subprocess.Popen(
        [sys.executable, "-c", WILL_SCRIPT, str(mosquitto.port), str(tmp_path / "s")],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"connected"
        assert sub.wait_for("hipstride/bob/status", b"online", 5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        assert sub.wait_for("hipstride/bob/status", b"offline", 10)
        assert sub.messages[-1][1] == b"offline"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sub.close()


def test_clean_close_says_offline_itself(mosquitto: Mosquitto, tmp_path: Path) -> None:
    sub = Subscriber(mosquitto.port, ["hipstride/anna/status"])
    sink = MqttSink(settings(mosquitto.port), "anna", spool_dir=tmp_path / "s")
    assert sub.wait_for("hipstride/anna/status", b"online", 5)
    sink.close()
    assert sub.wait_for("hipstride/anna/status", b"offline", 5)
    sub.close()


def test_broker_outage_loses_no_step_and_keeps_order(
    mosquitto_persistent: Mosquitto, tmp_path: Path
) -> None:
    broker = mosquitto_persistent
    sub = Subscriber(broker.port, ["hipstride/anna/steps"], client_id="archiver", persistent=True)
    sink = MqttSink(settings(broker.port), "anna", spool_dir=tmp_path / "s")
    records = steps(0, 700)
    sink.add(records[:100])
    assert len(sub.wait_count("/steps", 100)) == 100
    broker.stop()
    t_down = time.monotonic()
    fed = 100
    while time.monotonic() - t_down < 10.5:  # ~10 s outage while the run goes on
        sink.add(records[fed : fed + 20])
        fed += 20
        time.sleep(0.5)
    status = sink.status()
    assert status["connected"] is False and status["spooled"] > 0
    assert status["backlog"] == fed - 100
    broker.start()
    sink.add(records[fed:])
    sink.close(30.0)
    assert wait_until(lambda: len(set(indexes(sub.payloads("/steps")))) == len(records), 30)
    got = indexes(sub.payloads("/steps"))
    assert list(dict.fromkeys(got)) == list(range(len(records))), "order of first arrivals"
    # QoS 1 is at-least-once: after its restart the broker redelivers, flagged DUP, what
    # the subscriber had not acknowledged in time. A copy *without* the flag would be
    # the sink publishing twice.
    seen: set[int] = set()
    for index, dup in zip(got, sub.dup, strict=True):
        assert index not in seen or dup, f"step {index} published twice"
        seen.add(index)
    sub.close()


SPOOL_SCRIPT = """
import sys, time
from pipeline.records import StepRecord
from pipeline.sinks.config import MqttSettings
from pipeline.sinks.mqtt import MqttSink
settings = MqttSettings(host="127.0.0.1", port=int(sys.argv[1]))
sink = MqttSink(settings, "anna", spool_dir=sys.argv[2])
sink.add([StepRecord("left", i * 0.35, i * 0.35 + 0.25, 250.0, index=i).as_dict()
          for i in range(50)])
while sink.status()["spooled"] < 50:
    time.sleep(0.01)
print("spooled", flush=True)
time.sleep(60)
"""


def test_spool_survives_a_killed_process(mosquitto: Mosquitto, tmp_path: Path) -> None:
    mosquitto.stop()  # the first process never reaches the broker
    spool = tmp_path / "spool"
    proc = subprocess.Popen(
        [sys.executable, "-c", SPOOL_SCRIPT, str(mosquitto.port), str(spool)],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"spooled"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(spool.glob("seg-*.jsonl"))
    mosquitto.start()
    sub = Subscriber(mosquitto.port, ["hipstride/anna/steps"])
    sink = MqttSink(settings(mosquitto.port), "anna", spool_dir=spool)
    sink.add(steps(50, 60))  # the next run's own steps come after the spooled ones
    sink.close(10.0)
    assert indexes(sub.wait_count("/steps", 60)) == list(range(60))
    assert not list(spool.glob("seg-*.jsonl")), "a delivered spool is removed"
    sub.close()


def test_password_from_env_works_and_never_shows(
    mosquitto_auth: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # paho's packet log included
    password = MQTT_USERS["runner"]
    url = f"mqtt://runner@127.0.0.1:{mosquitto_auth.port}"
    monkeypatch.setenv("HIPSTRIDE_MQTT_PASSWORD", password)
    good = load_settings(mqtt_url=url, athlete="anna", spool_dir=str(tmp_path / "s"))
    sub = Subscriber(
        mosquitto_auth.port, ["hipstride/anna/steps"], auth=("watcher", MQTT_USERS["watcher"])
    )
    [sink] = make_sinks(good)
    sink.add(steps(0, 10))
    assert len(sub.wait_count("/steps", 10)) == 10
    shown = [repr(good), str(good), json.dumps(sink.status())]
    sink.close()
    sub.close()

    wrong = "Wr0ng-" + password
    monkeypatch.setenv("HIPSTRIDE_MQTT_PASSWORD", wrong)
    bad_settings = load_settings(mqtt_url=url, athlete="bob", spool_dir=str(tmp_path / "s"))
    [bad] = make_sinks(bad_settings)
    bad.add(steps(0, 3))
    assert wait_until(lambda: bad.status()["spooled"] == 3)
    status = bad.status()
    assert status["connected"] is False
    assert status["last_error"] == "broker refused the connection: Not authorized"
    shown += [repr(bad_settings), json.dumps(status)]
    bad.close(0.5)
    shown.append(caplog.text)
    assert "PUBLISH" in caplog.text or "CONNECT" in caplog.text, "paho's log was captured"
    for text in shown:
        assert password not in text and wrong not in text


def test_tls_with_a_private_ca(mosquitto_tls: Mosquitto, tmp_path: Path) -> None:
    ca = tmp_path / "tls" / "ca.pem"  # written by the fixture
    url = f"mqtts://127.0.0.1:{mosquitto_tls.port}"
    sub = Subscriber(mosquitto_tls.port, ["hipstride/anna/steps"], ca_file=ca)
    good = load_settings(mqtt_url=f"{url}?ca_file={ca}", spool_dir=str(tmp_path / "s"), env={})
    [sink] = make_sinks(good, athlete="anna")
    sink.add(steps(0, 5))
    assert indexes(sub.wait_count("/steps", 5)) == list(range(5))
    sink.close()
    sub.close()
    # Without our CA the server's certificate is not trusted: no connection, data spooled.
    untrusted = load_settings(mqtt_url=url, spool_dir=str(tmp_path / "s"), env={})
    [sink] = make_sinks(untrusted, athlete="ben")
    sink.add(steps(0, 2))
    assert wait_until(lambda: sink.status()["spooled"] == 2)
    assert sink.status()["connected"] is False
    sink.close(0.2)
