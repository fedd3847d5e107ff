"""Topic routing and JSON payloads of the MQTT sink (pure functions, no broker)."""

from __future__ import annotations

import json

import numpy as np

from pipeline.records import SCHEMA_VERSION, Alert, SensorStatus, StepRecord
from pipeline.sinks.mqtt import Message, record_message


def msg(record: dict, **kw: object) -> Message:  # type: ignore[type-arg]
    args: dict = {"prefix": "hipstride", "athlete": "anna", "session": "s1", "live_expiry_s": 60}  # type: ignore[type-arg]
    args.update(kw)
    return record_message(record, now_unix_s=1000.0, **args)


def test_step_goes_to_steps_qos1_not_retained_with_units_and_version() -> None:
    step = StepRecord("left", 1.25, 1.5, 250.0, cadence_spm=170.0, index=3)
    m = msg(step.as_dict())
    assert (m.topic, m.qos, m.retain, m.expiry_s) == ("hipstride/anna/steps", 1, False, None)
    body = json.loads(m.payload)
    assert body["schema_version"] == SCHEMA_VERSION
    assert body["athlete"] == "anna" and body["session"] == "s1"
    assert {k: body[k] for k in step.as_dict()} == step.as_dict()


def test_alert_goes_to_alerts_qos1() -> None:
    alert = Alert(12.0, "hip_drop_high", "warning", "pelvic_drop_deg", 9.1, 8.0, "Hips dropping")
    m = msg(alert.as_dict())
    assert (m.topic, m.qos, m.retain) == ("hipstride/anna/alerts", 1, False)
    assert json.loads(m.payload)["message"] == "Hips dropping"


def test_live_metrics_are_retained_and_expire() -> None:
    summary = msg({"kind": "summary", "time_s": 5.0, "medians": {"left": {"contact_ms": 250.0}}})
    assert (summary.topic, summary.retain, summary.expiry_s) == (
        "hipstride/anna/summary",
        True,
        60,
    )
    assert json.loads(summary.payload)["medians"]["left"]["contact_ms"] == 250.0
    status = msg(SensorStatus(5.0, "left_foot", True, 1000, 2, 200.0).as_dict())
    assert (status.topic, status.retain, status.expiry_s) == (
        "hipstride/anna/sensors/left_foot/status",
        True,
        60,
    )


def test_a_kind_added_later_needs_no_sink_change() -> None:
    m = msg({"kind": "fatigue", "time_s": 3.0, "fatigue_index_pct": 12.5}, prefix="team/a")
    assert m.topic == "team/a/anna/fatigue"
    assert m.qos == 1 and not m.retain
    assert json.loads(m.payload)["fatigue_index_pct"] == 12.5


def test_values_json_cannot_hold_become_null_or_plain() -> None:
    m = msg(
        {
            "kind": "step",
            "flight_ms": float("nan"),
            "x": float("inf"),
            "n": np.int64(4),
            "v": np.float32(0.5),
            "arr": np.array([1, 2]),
        }
    )
    body = json.loads(m.payload)  # strict JSON: NaN would not parse in most languages
    assert body["flight_ms"] is None and body["x"] is None
    assert body["n"] == 4 and body["v"] == 0.5 and body["arr"] == [1, 2]


def test_unsafe_topic_characters_in_values_are_replaced() -> None:
    m = msg({"kind": "status", "placement": "a/b+#"})
    assert m.topic == "hipstride/anna/sensors/a_b__/status"


def test_spool_form_round_trips_text_and_binary() -> None:
    text = Message("a/b", b'{"x":1}', 1, True, 60, 123.5)
    assert text.to_json()["p"] == '{"x":1}'  # readable in the spool file
    assert Message.from_json(json.loads(json.dumps(text.to_json()))) == text
    binary = Message("a/raw/pelvis", bytes(range(256)))
    assert "b64" in binary.to_json()
    assert Message.from_json(json.loads(json.dumps(binary.to_json()))) == binary
