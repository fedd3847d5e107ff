"""The InfluxDB sink against real servers: VictoriaMetrics (v2 API) and InfluxDB 1.x (v1)."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipeline.records import Alert, SensorStatus
from pipeline.sinks.config import InfluxSettings, load_settings
from pipeline.sinks.influx import InfluxSink
from pipeline.sinks.influx_schema import MEASUREMENTS
from pipeline.sinks.options import make_sinks
from tests.servers import Influxd, VictoriaMetrics
from tests.test_mqtt_sink import steps, wait_until

START = 1_750_000_000.0  # session start epoch: points land at START + sample time


def ms(t_s: float) -> int:
    """The millisecond VictoriaMetrics stores for sample time ``t_s`` (it truncates ns)."""
    return (round((START + t_s) * 1e6) * 1000) // 1_000_000


def v2(vm: VictoriaMetrics, **kw: Any) -> InfluxSettings:
    return InfluxSettings(url=vm.base, bucket="hipstride", org="test", **kw)


def test_v2_every_point_is_read_back(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    sink = InfluxSink(
        v2(victoria, batch_size=300, flush_interval_s=0.2),
        "anna",
        spool_dir=tmp_path / "s",
        session="s1",
        start_unix_s=START,
    )
    records = steps(0, 1000)
    for i in range(0, len(records), 50):
        sink.add(records[i : i + 50])
    sink.add([Alert(12.0, "hip_drop_high", "warning", "pelvic_drop_deg", 9.5, 8.0, "x").as_dict()])
    sink.add([SensorStatus(5.0, "pelvis", True, 1000, 2, 200.0).as_dict()])
    sink.add(
        [
            {
                "kind": "summary",
                "time_s": 5.0,
                "steps": 14,
                "medians": {"left": {"contact_ms": 251.0}},
            }
        ]
    )
    sink.close(10.0)
    assert sink.status()["sent"] == 1003 and sink.status()["backlog"] == 0

    series = victoria.wait_samples("hipstride_steps_contact_ms", 1000)
    got = sorted(
        (t, v, s["metric"]["side"])
        for s in series
        for t, v in zip(s["timestamps"], s["values"], strict=True)
    )
    want = sorted((ms(r["ic_s"]), r["contact_ms"], r["side"]) for r in records)
    assert got == want
    labels = series[0]["metric"]
    assert labels["athlete"] == "anna" and labels["session"] == "s1"
    assert "index" not in labels
    [summary] = victoria.export('{__name__="hipstride_summary_contact_ms_median_left"}')
    assert summary["values"] == [251.0] and summary["timestamps"] == [ms(5.0)]
    [alert] = victoria.export('{__name__="hipstride_alerts_value"}')
    assert alert["metric"]["rule"] == "hip_drop_high" and alert["values"] == [9.5]
    [status] = victoria.export('{__name__="hipstride_sensor_status_samples_lost"}')
    assert status["metric"]["placement"] == "pelvis" and status["values"] == [2]


def test_v2_outage_loses_no_point(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    sink = InfluxSink(
        v2(victoria, batch_size=100, flush_interval_s=0.1, timeout_s=2.0),
        "anna",
        spool_dir=tmp_path / "s",
        start_unix_s=START,
    )
    records = steps(0, 600)
    sink.add(records[:100])
    assert wait_until(lambda: sink.status()["sent"] == 100)
    victoria.stop()
    t_down, fed = time.monotonic(), 100
    while time.monotonic() - t_down < 10.5:
        sink.add(records[fed : fed + 20])
        fed += 20
        time.sleep(0.5)
    status = sink.status()
    assert status["connected"] is False and status["spooled"] == fed - 100
    victoria.start()
    sink.add(records[fed:])
    sink.close(30.0)
    assert sink.status()["backlog"] == 0

    def stored() -> list[float]:
        series = victoria.export('{__name__="hipstride_steps_index"}')
        return [v for s in series for v in s["values"]]

    assert wait_until(lambda: len(set(stored())) == len(records), 15)
    got = stored()
    assert sorted(set(got)) == list(range(len(records)))
    # HTTP writes are at-least-once too: a batch whose reply was lost in the shutdown
    # may be stored twice, never more than that one batch.
    assert len(got) - len(set(got)) <= 100


def test_v1_session_written_and_queried_with_influxql(influxd: Influxd, tmp_path: Path) -> None:
    settings = InfluxSettings(url=influxd.base, api="v1", database="runs", flush_interval_s=0.1)
    sink = InfluxSink(
        settings, "anna", spool_dir=tmp_path / "s", session="track", start_unix_s=START
    )
    # The database does not exist yet: nothing is lost, it waits in the spool...
    sink.add(steps(0, 200))
    assert wait_until(lambda: "404" in str(sink.status()["last_error"]))
    assert sink.status()["backlog"] == 200
    influxd.query("CREATE DATABASE runs")  # ...and goes in once it does.
    sink.add(
        [
            Alert(
                40.0,
                "contact_asymmetry",
                "critical",
                "contact_ms_si_pct",
                9.0,
                6.0,
                'Left "heavy"',
                "left",
            ).as_dict()
        ]
    )
    sink.add(
        [
            {
                "kind": "summary",
                "time_s": 70.0,
                "steps": 200,
                "final": True,
                "medians": {"left": {"contact_ms": 250.5}},
            }
        ]
    )
    sink.close(15.0)
    assert sink.status()["backlog"] == 0

    [count] = influxd.rows(
        "SELECT count(contact_ms) FROM hipstride_steps WHERE athlete='anna'", "runs"
    )
    assert count["count"] == 200
    first = influxd.rows("SELECT * FROM hipstride_steps ORDER BY time LIMIT 1", "runs")[0]
    assert first["index"] == 0 and first["session"] == "track"
    assert first["time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START))
    per_side = influxd.rows("SELECT count(ic_s) FROM hipstride_steps GROUP BY side", "runs")
    assert {r["side"]: r["count"] for r in per_side} == {"left": 100, "right": 100}
    [alert] = influxd.rows(
        "SELECT message, value FROM hipstride_alerts WHERE level='critical'", "runs"
    )
    assert alert["message"] == 'Left "heavy"' and alert["value"] == 9.0
    [summary] = influxd.rows("SELECT contact_ms_median_left, final FROM hipstride_summary", "runs")
    assert summary["contact_ms_median_left"] == 250.5 and summary["final"] is True

    # What the server stored matches the schema in code (tags, field names, field types).
    influx_type = {"float": "float", "int": "integer", "bool": "boolean", "string": "string"}
    for m in MEASUREMENTS.values():
        fields = influxd.rows(f"SHOW FIELD KEYS FROM {m.name}", "runs")
        for f in fields:
            assert influx_type[m.fields[f["fieldKey"]]] == f["fieldType"], (m.name, f)
        tags = {r["tagKey"] for r in influxd.rows(f"SHOW TAG KEYS FROM {m.name}", "runs")}
        assert tags <= {"athlete", "session", *m.tags}


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Recorder.requests.append((self.path, dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_credentials_are_sent_and_never_shown(
    recorder: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token, password = "tok-3f9a8b7c6d5e4f", "pw-Zx81-secret"
    monkeypatch.setenv("HIPSTRIDE_INFLUX_TOKEN", token)
    monkeypatch.setenv("HIPSTRIDE_INFLUX_PASSWORD", password)
    shown: list[str] = []
    for url in (f"{recorder}?bucket=b&org=o", f"{recorder}?db=d"):
        settings = load_settings(influx_url=url, athlete="anna", spool_dir=str(tmp_path))
        if "db=" in url:
            settings = load_settings(
                influx_url=url.replace("http://", "http://coach@"), spool_dir=str(tmp_path)
            )
        [sink] = make_sinks(settings, session_start_unix_s=START)
        sink.add(steps(0, 3))
        sink.close(5.0)
        shown += [repr(settings), json.dumps(sink.status())]
    (v2_path, v2_headers, v2_body), (v1_path, v1_headers, _) = _Recorder.requests
    assert v2_path.startswith("/api/v2/write?") and "bucket=b" in v2_path
    assert v2_headers["Authorization"] == f"Token {token}"
    assert v2_body.count(b"\n") == 2 and v2_body.startswith(b"hipstride_steps,")
    assert v1_path.startswith("/write?db=d")
    assert password not in v1_path, "no password in the URL: URLs get logged"
    import base64

    assert (
        v1_headers["Authorization"]
        == "Basic " + base64.b64encode(f"coach:{password}".encode()).decode()
    )
    shown.append(caplog.text)
    for text in shown:
        assert token not in text and password not in text
