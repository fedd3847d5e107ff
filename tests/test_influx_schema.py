"""The InfluxDB schema and line protocol (pure functions, no server)."""

from __future__ import annotations

import dataclasses

from pipeline.records import Alert, SensorStatus, StepRecord
from pipeline.sinks.influx import line
from pipeline.sinks.influx_schema import (
    COMMON_TAGS,
    MEASUREMENTS,
    Point,
    flatten,
    to_point,
)
from pipeline.summary import RunSummary

START = 1_700_000_000.0


def point(record: dict, session: str | None = "s1") -> Point:  # type: ignore[type-arg]
    p = to_point(record, athlete="anna", session=session, start_unix_s=START)
    assert p is not None
    return p


def summary_record() -> dict:  # type: ignore[type-arg]
    s = RunSummary()
    for i in range(6):
        side = "left" if i % 2 else "right"
        s.add_step(StepRecord(side, i * 0.35, i * 0.35 + 0.25, 250.0 + i, step_ms=350.0))
    s.add_alert(Alert(1.0, "hip_drop_high", "warning", "pelvic_drop_deg", 9.0, 8.0, "x"))
    # the shape pipeline.driver gives the final summary
    return dict(s.to_dict({}, 2.0), final=True, time_s=2.0, interrupted=False)


def test_step_point_time_tags_and_fields() -> None:
    step = StepRecord("left", 12.5, 12.75, 250.0, cadence_spm=171.0, source="left_foot", index=41)
    p = point(step.as_dict())
    assert p.measurement == "hipstride_steps"
    assert p.time_ns == round((START + 12.5) * 1e6) * 1000, "time = session start + ic_s"
    assert p.tags == {
        "athlete": "anna",
        "session": "s1",
        "side": "left",
        "gait": "run",
        "source": "left_foot",
    }
    assert p.fields["index"] == 41 and "index" not in p.tags, "per-step ids are never tags"
    assert p.fields["contact_ms"] == 250.0 and "flight_ms" not in p.fields  # None: left out


def test_summary_is_flattened() -> None:
    p = point(summary_record())
    assert p.measurement == "hipstride_summary"
    assert p.fields["contact_ms_median_left"] == 253.0  # left: 251, 253, 255
    assert p.fields["steps_left"] == 3 and p.fields["steps"] == 6
    assert p.fields["alerts_total"] == 1 and p.fields["final"] is True
    assert "gct_balance_left_pct" in p.fields
    assert p.time_ns == round((START + 2.0) * 1e6) * 1000


def test_alert_and_sensor_status() -> None:
    alert = Alert(30.0, "hip_drop_high", "critical", "pelvic_drop_deg", 11.0, 9.0, 'a "b"', "left")
    p = point(alert.as_dict())
    assert p.measurement == "hipstride_alerts"
    assert p.tags["rule"] == "hip_drop_high" and p.tags["level"] == "critical"
    assert p.fields == {"time_s": 30.0, "value": 11.0, "threshold": 9.0, "message": 'a "b"'}
    st = point(SensorStatus(5.0, "pelvis", True, 1000, 2, 200.0).as_dict())
    assert st.measurement == "hipstride_sensor_status" and st.tags["placement"] == "pelvis"
    assert st.fields["connected"] is True and st.fields["samples_lost"] == 2


def test_field_types_never_change() -> None:
    """InfluxDB refuses an int where a float was written: values are cast."""
    p = point({"kind": "step", "side": "left", "ic_s": 1, "contact_ms": 250, "index": 3.0})
    assert isinstance(p.fields["contact_ms"], float) and isinstance(p.fields["index"], int)


def test_unknown_kind_still_written_and_records_without_time_skipped() -> None:
    p = point({"kind": "fatigue", "time_s": 3.0, "fatigue_pct": 12, "note": "x", "ok": True})
    assert p.measurement == "hipstride_fatigue"
    assert p.fields == {"fatigue_pct": 12.0, "note": "x", "ok": True}
    assert to_point({"kind": "fatigue", "x": 1}, athlete="a", session=None, start_unix_s=0) is None


def test_every_record_value_has_a_place_in_the_schema() -> None:
    """A metric added to a record must be added to the schema too (one source of truth)."""
    samples = {
        "step": StepRecord("left", 1.0, 1.25, 250.0).as_dict(),
        "alert": Alert(1.0, "r", "warning", "m", 1.0, 1.0, "x", "left").as_dict(),
        "status": SensorStatus(1.0, "pelvis", True, 1, 0).as_dict(),
        "summary": flatten(summary_record()),
    }
    for kind, record in samples.items():
        m = MEASUREMENTS[kind]
        placed = set(m.fields) | set(m.tags) | {"kind", "schema_version", "time_s"}
        scalar = {k for k, v in record.items() if not isinstance(v, dict)}
        assert scalar <= placed, f"{kind}: not in the schema: {sorted(scalar - placed)}"
    step_fields = {f.name for f in dataclasses.fields(StepRecord)}
    assert set(MEASUREMENTS["step"].fields) <= step_fields


def test_tags_are_bounded_values_only() -> None:
    bounded = {"side", "gait", "source", "placement", "rule", "level", "metric"}
    for m in MEASUREMENTS.values():
        assert set(m.tags) <= bounded, m.name
        assert not set(m.tags) & set(m.fields)
    assert COMMON_TAGS == ("athlete", "session")


def test_line_protocol_escaping() -> None:
    p = Point(
        "hipstride steps",
        {"athlete": "a b,c=d", "session": "s"},
        {"x": 1.5, "n": 3, "ok": False, "msg": 'say "hi"\\ now'},
        123,
    )
    assert line(p) == (
        "hipstride\\ steps,athlete=a\\ b\\,c\\=d,session=s "
        'x=1.5,n=3i,ok=false,msg="say \\"hi\\"\\\\ now" 123'
    )


def test_floats_keep_full_precision() -> None:
    p = Point("m", {}, {"x": 0.1 + 0.2, "y": 1e-7}, 1)
    assert line(p) == "m x=0.30000000000000004,y=1e-07 1"
