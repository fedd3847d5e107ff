"""What the pipeline emits: gait events, step records, alerts and sensor status.

Every record turns into a flat dict (``as_dict``) whose keys carry their units, so
sinks (CSV, JSON lines, MQTT, InfluxDB) serialise any record without knowing its
fields: a metric added later needs no change to any sink.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

SCHEMA_VERSION = 1

Side = Literal["left", "right"]
SIDES: tuple[Side, Side] = ("left", "right")


def other_side(side: str) -> Side:
    return "right" if side == "left" else "left"


@dataclass(frozen=True, slots=True)
class GaitEvent:
    """An initial contact (``ic``) or toe-off (``to``) of one foot."""

    kind: Literal["ic", "to"]
    side: Side
    t_s: float
    source: str  # placement whose signal gave the event
    confidence: float = 1.0


@dataclass(slots=True)
class StepRecord:
    """One stance phase and the metrics measured over it.

    ``None`` means "the worn sensors cannot give this value" and becomes an empty CSV
    cell. ``step_ms`` is from the previous (contralateral) initial contact to this one;
    ``flight_ms`` from the previous toe-off to this initial contact.
    """

    side: Side
    ic_s: float
    to_s: float
    contact_ms: float
    flight_ms: float | None = None
    step_ms: float | None = None
    stride_ms: float | None = None
    cadence_spm: float | None = None
    duty_factor: float | None = None
    pelvic_drop_deg: float | None = None
    pelvic_obliquity_range_deg: float | None = None
    pelvic_tilt_range_deg: float | None = None
    pelvic_tilt_change_deg: float | None = None
    pelvic_rotation_range_deg: float | None = None
    vertical_oscillation_cm: float | None = None
    impact_peak_g: float | None = None
    loading_rate_g_per_s: float | None = None
    stride_length_m: float | None = None
    speed_mps: float | None = None
    gait: Literal["run", "walk"] = "run"
    source: str = ""
    confidence: float = 1.0
    index: int = 0

    kind: str = field(default="step", init=False)

    #: Columns of ``steps.csv``, in order (the issue fixes the first eight).
    CSV_COLUMNS = (
        "side",
        "ic_s",
        "to_s",
        "contact_ms",
        "flight_ms",
        "step_ms",
        "cadence_spm",
        "pelvic_drop_deg",
        "stride_ms",
        "duty_factor",
        "pelvic_obliquity_range_deg",
        "pelvic_tilt_range_deg",
        "pelvic_tilt_change_deg",
        "pelvic_rotation_range_deg",
        "vertical_oscillation_cm",
        "impact_peak_g",
        "loading_rate_g_per_s",
        "stride_length_m",
        "speed_mps",
        "gait",
        "source",
        "confidence",
        "index",
    )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_csv_row(cls, row: Mapping[str, str | None]) -> StepRecord:
        """A ``steps.csv`` row back as a record (the inverse of the CSV sink).

        Raises ``ValueError`` naming the column when a cell is not what it should be.
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            cell = row.get(f.name)
            if not f.init or cell is None:
                continue
            try:
                if f.name in _TEXT_FIELDS:
                    values[f.name] = cell
                elif f.name == "index":
                    values[f.name] = int(cell)
                else:
                    values[f.name] = float(cell) if cell != "" else None
            except ValueError:
                raise ValueError(f"column '{f.name}': not a number: {cell!r}") from None
        if values.get("side") not in SIDES:
            raise ValueError(f"column 'side': expected left or right, got {row.get('side')!r}")
        for name in ("ic_s", "to_s", "contact_ms"):
            if values.get(name) is None:
                raise ValueError(f"column '{name}' is empty")
        if values.get("gait") not in (None, "run", "walk"):
            raise ValueError(f"column 'gait': expected run or walk, got {values['gait']!r}")
        return cls(**values)

    @property
    def time_s(self) -> float:
        return self.to_s


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a runner should hear about now."""

    time_s: float
    rule: str
    level: Literal["warning", "critical"]
    metric: str
    value: float
    threshold: float
    message: str
    side: str | None = None
    kind: str = field(default="alert", init=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """Health of one sensor stream, on the recording's time axis."""

    time_s: float
    placement: str
    connected: bool
    samples: int
    samples_lost: int
    fs_hz: float | None = None
    battery_pct: float | None = None
    clock_offset_ms: float | None = None
    kind: str = field(default="status", init=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_TEXT_FIELDS = frozenset({"side", "gait", "source"})


def fmt_cell(value: Any) -> str:
    """A CSV cell: empty for missing, 4 decimals for floats (0.1 ms resolution)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4f}"
    return str(value)
