"""The state and text table behind ``hipstride watch`` (pure: no MQTT, no clock).

Values come from the latest steps (median of the last few per side, so the table
follows the runner now, not the whole-run median); until steps arrive, from the
retained rolling summary, so a watcher that starts mid-run shows numbers at once.
"""

from __future__ import annotations

import json
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.records import SIDES

COLUMNS = ("ATHLETE", "STATE", "STEPS", "CADENCE spm", "CONTACT L/R ms", "HIP DROP L/R deg")


@dataclass
class AthleteView:
    state: str = "?"
    steps_seen: int = 0
    recent: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    alert: dict[str, Any] | None = None

    def metric(self, name: str, side: str) -> float | None:
        values = [s[name] for s in self.recent.get(side, ()) if s.get(name) is not None]
        if values:
            return float(statistics.median(values))
        medians = (self.summary or {}).get("medians", {}).get(side, {})
        value = medians.get(name)
        return None if value is None else float(value)

    def cadence(self) -> float | None:
        per_side = [c for side in SIDES if (c := self.metric("cadence_spm", side)) is not None]
        return sum(per_side) / len(per_side) if per_side else None

    def steps(self) -> int:
        from_summary = int((self.summary or {}).get("steps") or 0)
        return max(from_summary, self.steps_seen)


class WatchState:
    def __init__(self, prefix: str = "hipstride", window_steps: int = 8) -> None:
        self.prefix = prefix.rstrip("/") + "/"
        self.window_steps = window_steps
        self.athletes: dict[str, AthleteView] = {}

    def on_message(self, topic: str, payload: bytes) -> None:
        if not topic.startswith(self.prefix):
            return
        levels = topic[len(self.prefix) :].split("/")
        if len(levels) != 2:
            return  # raw chunks, sensor status: not in this table
        athlete, leaf = levels
        view = self.athletes.setdefault(athlete, AthleteView())
        if leaf == "status":
            view.state = payload.decode("utf-8", "replace").strip() or "?"
            return
        try:
            record = json.loads(payload)
        except ValueError:
            return
        if not isinstance(record, dict):
            return
        if leaf == "steps":
            side = str(record.get("side"))
            view.recent.setdefault(side, deque(maxlen=self.window_steps)).append(record)
            view.steps_seen += 1
        elif leaf == "summary":
            view.summary = record
        elif leaf == "alerts":
            view.alert = record


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pair(view: AthleteView, name: str, digits: int) -> str:
    return "/".join(_num(view.metric(name, side), digits) for side in SIDES)


def _alert(view: AthleteView) -> str:
    a = view.alert
    if not a:
        return ""
    return f"[{a.get('level', '?')}] {a.get('message') or a.get('rule', '')}"


def render(state: WatchState) -> str:
    rows: list[tuple[str, ...]] = [(*COLUMNS, "LATEST ALERT")]
    for athlete in sorted(state.athletes):
        v = state.athletes[athlete]
        rows.append(
            (
                athlete,
                v.state,
                str(v.steps()),
                _num(v.cadence(), 0),
                _pair(v, "contact_ms", 0),
                _pair(v, "pelvic_drop_deg", 1),
                _alert(v),
            )
        )
    if len(rows) == 1:
        return "no athletes on the broker yet\n"
    return _table(rows)


def _table(rows: Iterable[tuple[str, ...]]) -> str:
    rows = list(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"
