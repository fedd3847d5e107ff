"""The whole-run summary (``summary.json``): medians per side, totals, asymmetry,
data quality. Built incrementally with bounded memory."""

from __future__ import annotations

from typing import Any

from pipeline.records import SIDES, SCHEMA_VERSION, Alert, StepRecord
from pipeline.stats import StreamingMedian

#: per-step metrics summarised per side, with the resolution of their histograms
METRICS: dict[str, float] = {
    "contact_ms": 0.1,
    "flight_ms": 0.1,
    "step_ms": 0.1,
    "stride_ms": 0.1,
    "cadence_spm": 0.01,
    "duty_factor": 0.0001,
    "pelvic_drop_deg": 0.01,
}


def symmetry_index_pct(left: float | None, right: float | None) -> float | None:
    """Robinson et al. (1987) symmetry index: 100 * (L - R) / ((L + R) / 2); 0 = symmetric."""
    if left is None or right is None or left + right == 0:
        return None
    return 100.0 * (left - right) / ((left + right) / 2.0)


class RunSummary:
    def __init__(self) -> None:
        self.steps = {side: 0 for side in SIDES}
        self.walking_steps = 0
        self.stats = {
            side: {name: StreamingMedian(res) for name, res in METRICS.items()} for side in SIDES
        }
        self.first_ic_s: float | None = None
        self.last_to_s: float | None = None
        self.alerts: dict[str, int] = {}
        self.contact_total_ms = {side: 0.0 for side in SIDES}

    def add_step(self, step: StepRecord) -> None:
        self.steps[step.side] += 1
        if step.gait == "walk":
            self.walking_steps += 1
        if self.first_ic_s is None:
            self.first_ic_s = step.ic_s
        self.last_to_s = step.to_s
        self.contact_total_ms[step.side] += step.contact_ms
        for name, stat in self.stats[step.side].items():
            stat.add(getattr(step, name))

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
        left, right = self.contact_ms_median("left"), self.contact_ms_median("right")
        asym["gct_balance_left_pct"] = (
            _round(100.0 * left / (left + right)) if left and right else None
        )
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
            "alerts": dict(self.alerts),
            "sensors": sensors,
        }

    def contact_ms_median(self, side: str) -> float | None:
        return self.stats[side]["contact_ms"].median


def _round(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)
