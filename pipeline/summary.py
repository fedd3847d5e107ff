"""The whole-run summary (``summary.json``): medians per side, totals, asymmetry,
data quality. Built incrementally with bounded memory.

``asymmetry`` keeps flat scalars (sinks such as InfluxDB map each key to a field);
``asymmetry_detail`` holds the rest: impact SI, the GCT balance zone and the
per-window figures (``pipeline.asymmetry.WindowedAsymmetry``)."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from pipeline.asymmetry import (
    WindowedAsymmetry,
    gct_balance_left_pct,
    gct_balance_zone,
    symmetry_index_pct,
)
from pipeline.records import SCHEMA_VERSION, SIDES, Alert, Side, StepRecord
from pipeline.stats import StreamingMedian

__all__ = ["METRICS", "RunSummary", "symmetry_index_pct"]

#: per-step metrics summarised per side, with the resolution of their histograms
METRICS: dict[str, float] = {
    "contact_ms": 0.1,
    "flight_ms": 0.1,
    "step_ms": 0.1,
    "stride_ms": 0.1,
    "cadence_spm": 0.01,
    "duty_factor": 0.0001,
    "pelvic_drop_deg": 0.01,
    "pelvic_obliquity_range_deg": 0.01,
    "pelvic_tilt_range_deg": 0.01,
    "pelvic_tilt_change_deg": 0.01,
    "pelvic_rotation_range_deg": 0.01,
    "impact_peak_g": 0.01,
    "speed_mps": 0.001,
}


class RunSummary:
    def __init__(self, window_s: float = 60.0, max_windows: int = 240) -> None:
        self.steps = {side: 0 for side in SIDES}
        self.walking_steps = 0
        self.stats = {
            side: {name: StreamingMedian(res) for name, res in METRICS.items()} for side in SIDES
        }
        self.first_ic_s: float | None = None
        self.last_to_s: float | None = None
        self.alerts: dict[str, int] = {}
        self.contact_total_ms = {side: 0.0 for side in SIDES}
        self.windows = WindowedAsymmetry(window_s, max_windows)
        self._stride_sum_m = 0.0
        self._stride_steps = 0
        self._impact_sum_g = 0.0
        self._impact_steps = 0
        self._get = attrgetter(*METRICS)
        self._lists = {side: tuple(self.stats[side].values()) for side in SIDES}

    def add_step(self, step: StepRecord) -> None:
        self.steps[step.side] += 1
        if step.gait == "walk":
            self.walking_steps += 1
        if self.first_ic_s is None:
            self.first_ic_s = step.ic_s
        self.last_to_s = step.to_s
        self.contact_total_ms[step.side] += step.contact_ms
        for stat, value in zip(self._lists[step.side], self._get(step), strict=True):
            if value is not None:
                stat.add(value)
        if step.stride_length_m is not None:
            self._stride_sum_m += step.stride_length_m
            self._stride_steps += 1
        if step.impact_peak_g is not None:
            self._impact_sum_g += step.impact_peak_g
            self._impact_steps += 1
        if step.gait == "run":  # walking breaks would blur running asymmetry
            self.windows.add(step)

    def add_alert(self, alert: Alert) -> None:
        self.alerts[alert.rule] = self.alerts.get(alert.rule, 0) + 1

    def medians(self) -> dict[str, dict[str, float | None]]:
        return {
            side: {name: _round(stat.median) for name, stat in self.stats[side].items()}
            for side in SIDES
        }

    def to_dict(self, sensors: dict[str, Any], duration_s: float | None) -> dict[str, Any]:
        med = self.medians()
        asym = {
            f"{name}_si_pct": _round(symmetry_index_pct(med["left"][name], med["right"][name]))
            for name in ("contact_ms", "step_ms", "pelvic_drop_deg")
        }
        balance = gct_balance_left_pct(med["left"]["contact_ms"], med["right"]["contact_ms"])
        asym["gct_balance_left_pct"] = _round(balance)
        zone = gct_balance_zone(balance)
        detail = {
            "impact_peak_g_si_pct": _round(
                symmetry_index_pct(med["left"]["impact_peak_g"], med["right"]["impact_peak_g"])
            ),
            "gct_balance_zone": zone[0] if zone else None,
            "gct_balance_longer_side": zone[1] if zone else None,
            "window_s": self.windows.window_s,
            "windows": self.windows.windows(),
        }
        total_steps = sum(self.steps.values())
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "summary",
            "duration_s": _round(duration_s),
            "running_s": _round(
                self.last_to_s - self.first_ic_s
                if self.first_ic_s is not None and self.last_to_s is not None
                else None
            ),
            "steps": total_steps,
            "steps_per_side": dict(self.steps),
            "walking_steps": self.walking_steps,
            "medians": med,
            "asymmetry": asym,
            "asymmetry_detail": detail,
            "totals": {
                "distance_m": _round(
                    run_distance_m(self._stride_sum_m, self._stride_steps, total_steps)
                ),
                "impact_load_g": _round(self._impact_sum_g) if self._impact_steps else None,
            },
            "alerts": dict(self.alerts),
            "sensors": sensors,
        }

    def contact_ms_median(self, side: Side) -> float | None:
        return self.stats[side]["contact_ms"].median


def run_distance_m(stride_sum_m: float, stride_steps: int, steps: int) -> float | None:
    """Distance from the steps' stride lengths; None when too few steps have one.

    Each step's ``stride_length_m`` spans two steps (this one and the one before), so a
    step covers half a stride. Steps without a stride length (the first ones, while a
    foot filter settles; after a pause) count at the mean stride of the others: summing
    only the known ones would shorten the run by every such step.
    """
    if stride_steps == 0 or stride_steps < 0.5 * steps:
        return None
    return steps * (stride_sum_m / stride_steps) / 2.0


def _round(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)
