"""The InfluxDB schema, defined once: measurements, tags and typed fields per record kind.

``docs/influx-schema.md`` describes it for people; dashboards and their tests check
their queries against :data:`MEASUREMENTS`. Rules:

* Tags only for bounded values (athlete, session, side, placement, rule, level, ...),
  never per-step values such as the step index (one series per step would explode
  the index).
* Each field has one type for ever (InfluxDB refuses a float where an int was
  written), so values are cast to the declared type.
* Time is the record's own sample time on the recording axis (``ic_s`` for steps,
  ``time_s`` otherwise) plus the session's start epoch, never the host clock: a replay
  of last week's run lands on last week's timeline.
* Nested summary values are flattened: ``medians.left.contact_ms`` ->
  ``contact_ms_median_left``, ``asymmetry.contact_ms_si_pct`` -> ``contact_ms_si_pct``,
  ``steps_per_side.left`` -> ``steps_left``.

A record kind without an entry here is still written, to ``hipstride_<kind>`` with its
scalar values as fields (numbers as float), so nothing is dropped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.records import SIDES, Alert, SensorStatus, StepRecord
from pipeline.summary import METRICS

FieldType = Literal["float", "int", "bool", "string"]

#: tags every point carries (``session`` is left out when no session is set)
COMMON_TAGS = ("athlete", "session")


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    kind: str
    #: record key holding the sample time in seconds on the recording axis
    time_key: str
    #: record keys written as tags, besides :data:`COMMON_TAGS`
    tags: tuple[str, ...]
    fields: Mapping[str, FieldType]


def _summary_fields() -> dict[str, FieldType]:
    fields: dict[str, FieldType] = {
        "duration_s": "float",
        "running_s": "float",
        "steps": "int",
        "steps_left": "int",
        "steps_right": "int",
        "walking_steps": "int",
        "alerts_total": "int",
        "final": "bool",
        "interrupted": "bool",
    }
    for metric in METRICS:
        for side in SIDES:
            fields[f"{metric}_median_{side}"] = "float"
    for name in ("contact_ms_si_pct", "step_ms_si_pct", "pelvic_drop_deg_si_pct"):
        fields[name] = "float"
    fields["gct_balance_left_pct"] = "float"
    return fields


def _record_fields(cls: type, tags: tuple[str, ...]) -> dict[str, FieldType]:
    """Fields of a record dataclass, typed from its annotations: a metric added to the
    record is in the schema at once, with the type it will always have."""
    out: dict[str, FieldType] = {}
    for f in dataclasses.fields(cls):
        if f.name in tags or f.name == "kind":
            continue
        annotation = str(f.type).replace(" | None", "")
        out[f.name] = _TYPES.get(annotation, "string")
    return out


_TYPES: dict[str, FieldType] = {"float": "float", "int": "int", "bool": "bool", "str": "string"}

_STEP_TAGS = ("side", "gait", "source")
STEPS = Measurement(
    name="hipstride_steps",
    kind="step",
    time_key="ic_s",
    tags=_STEP_TAGS,
    fields=_record_fields(StepRecord, _STEP_TAGS),
)

SUMMARY = Measurement(
    name="hipstride_summary",
    kind="summary",
    time_key="time_s",
    tags=(),
    fields=_summary_fields(),
)

_ALERT_TAGS = ("rule", "level", "metric", "side")
ALERTS = Measurement(
    name="hipstride_alerts",
    kind="alert",
    time_key="time_s",
    tags=_ALERT_TAGS,
    fields=_record_fields(Alert, _ALERT_TAGS),
)

_STATUS_TAGS = ("placement",)
SENSOR_STATUS = Measurement(
    name="hipstride_sensor_status",
    kind="status",
    time_key="time_s",
    tags=_STATUS_TAGS,
    fields=_record_fields(SensorStatus, _STATUS_TAGS),
)

#: record kind -> measurement
MEASUREMENTS: dict[str, Measurement] = {m.kind: m for m in (STEPS, SUMMARY, ALERTS, SENSOR_STATUS)}


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | bool | str]
    time_ns: int


def to_point(
    record: Mapping[str, Any], *, athlete: str, session: str | None, start_unix_s: float
) -> Point | None:
    """The point for one record, or None when it has no time or no field to write."""
    kind = str(record.get("kind", ""))
    m = MEASUREMENTS.get(kind)
    flat = flatten(record)
    if m is None:
        m = _generic(kind, flat)
    t = flat.get(m.time_key)
    if not isinstance(t, int | float) or not math.isfinite(t):
        return None
    tags = {"athlete": athlete}
    if session:
        tags["session"] = session
    for key in m.tags:
        value = flat.get(key)
        if value is not None and value != "":
            tags[key] = str(value)
    fields: dict[str, float | int | bool | str] = {}
    for key, ftype in m.fields.items():
        value = _cast(flat.get(key), ftype)
        if value is not None:
            fields[key] = value
    if not fields:
        return None
    # Integer nanoseconds from integer microseconds: float seconds since 1970 only
    # resolve ~0.2 us, so rounding there keeps equal inputs on equal timestamps.
    time_ns = round((start_unix_s + float(t)) * 1e6) * 1000
    return Point(m.name, tags, fields, time_ns)


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """One level of keys, named as in the schema (see the module docstring)."""
    flat = {k: v for k, v in record.items() if not isinstance(v, dict)}
    if record.get("kind") != "summary":
        return flat
    for side, metrics in dict(record.get("medians") or {}).items():
        for metric, value in dict(metrics or {}).items():
            flat[f"{metric}_median_{side}"] = value
    flat.update(dict(record.get("asymmetry") or {}))
    for side, count in dict(record.get("steps_per_side") or {}).items():
        flat[f"steps_{side}"] = count
    flat["alerts_total"] = sum(dict(record.get("alerts") or {}).values())
    return flat


def _generic(kind: str, flat: Mapping[str, Any]) -> Measurement:
    fields: dict[str, FieldType] = {}
    for key, value in flat.items():
        if key in ("kind", "time_s", "schema_version"):
            continue
        if isinstance(value, bool):
            fields[key] = "bool"
        elif isinstance(value, int | float):
            fields[key] = "float"
        elif isinstance(value, str):
            fields[key] = "string"
    return Measurement(f"hipstride_{kind}", kind, "time_s", (), fields)


def _cast(value: Any, ftype: FieldType) -> float | int | bool | str | None:
    if value is None:
        return None
    try:
        if ftype == "float":
            x = float(value)
            return x if math.isfinite(x) else None
        if ftype == "int":
            return int(value)
        if ftype == "bool":
            return bool(value)
        return str(value)
    except (TypeError, ValueError, OverflowError):
        return None
