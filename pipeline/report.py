"""The post-run report: one self-contained HTML page from a run directory.

Inputs are the files ``replay`` writes (``steps.csv``, ``alerts.jsonl``,
``summary.json``, and ``session.json`` when the run was recorded in the history)
plus, optionally, the athlete's sessions from the history store. Everything is inline
(CSS, SVG): the page opens offline, from an e-mail or a USB stick, and names no
external address.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from pipeline.asymmetry import (
    GCT_BALANCED_MAX_PCT,
    GCT_NOTABLE_ABOVE_PCT,
    RollingSides,
    gct_balance_left_pct,
    gct_balance_zone,
    symmetry_index_pct,
)
from pipeline.history import Session
from pipeline.records import SIDES, StepRecord
from pipeline.stages.alerts import AlertConfig
from pipeline.svgplot import Band, Chart, Marker, Series, render
from pipeline.training import build_context, fmt_load

SIDE_COLOR = {"left": "#2b6cb0", "right": "#b83280"}
SIDE_LIGHT = {"left": "#90cdf4", "right": "#fbb6ce"}
LEVEL_COLOR = {"warning": "#dd6b20", "critical": "#c53030"}
#: at most this many points per side and chart (the rolling medians carry the detail)
MAX_POINTS = 2500


class ReportError(Exception):
    """The run directory cannot be read (missing or damaged files)."""


@dataclass(slots=True)
class RunData:
    directory: Path
    steps: list[StepRecord]
    alerts: list[dict[str, Any]]
    summary: dict[str, Any]
    session: dict[str, Any] | None = None
    history: list[Session] = field(default_factory=list)


def load_run(directory: Path) -> RunData:
    """Read a run directory; raises :class:`ReportError` naming the missing/bad file."""
    steps_path, summary_path = directory / "steps.csv", directory / "summary.json"
    for p in (steps_path, summary_path):
        if not p.is_file():
            raise ReportError(f"{p} not found: is {directory} a run directory from 'replay'?")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        steps = _read_steps(steps_path)
        alerts_path = directory / "alerts.jsonl"
        alerts = (
            [json.loads(line) for line in alerts_path.read_text().splitlines() if line.strip()]
            if alerts_path.is_file()
            else []
        )
        session_path = directory / "session.json"
        session = json.loads(session_path.read_text()) if session_path.is_file() else None
    except (OSError, ValueError, KeyError) as err:
        raise ReportError(f"cannot read run directory {directory}: {err}") from None
    return RunData(directory, steps, alerts, summary, session)


def _read_steps(path: Path) -> list[StepRecord]:
    with open(path, newline="", encoding="utf-8") as fh:
        out = []
        for i, row in enumerate(csv.DictReader(fh)):
            try:
                out.append(StepRecord.from_csv_row(row))
            except ValueError as err:
                raise ValueError(f"{path} line {i + 2}: {err}") from None
    return out


# ---------------------------------------------------------------------------------
# Figures derived from the steps
# ---------------------------------------------------------------------------------
def _minutes(t_s: float) -> float:
    return t_s / 60.0


def _thin(
    xs: Sequence[float], ys: Sequence[float | None]
) -> tuple[list[float], list[float | None]]:
    k = max(1, -(-len(xs) // MAX_POINTS))
    return list(xs[::k]), list(ys[::k])


def per_side_series(
    steps: Sequence[StepRecord], metric: str, window: int
) -> dict[str, tuple[list[float], list[float | None], list[float | None]]]:
    """Per side: times (min), per-step values and their rolling medians."""
    rolling = RollingSides(window, (metric,))
    out: dict[str, tuple[list[float], list[float | None], list[float | None]]] = {
        s: ([], [], []) for s in SIDES
    }
    for st in steps:
        if st.gait != "run":
            continue
        rolling.add(st)
        xs, ys, med = out[st.side]
        xs.append(_minutes(st.ic_s))
        ys.append(getattr(st, metric))
        med.append(rolling.median(st.side, metric) if getattr(st, metric) is not None else None)
    return out


def asymmetry_series(steps: Sequence[StepRecord], window: int) -> dict[str, list[Any]]:
    """GCT balance and SIs after every running step, over ``window`` steps per side."""
    rolling = RollingSides(window)
    series: dict[str, list[Any]] = {
        k: [] for k in ("t", "gct", "pelvic_drop_deg", "impact_peak_g", "step_ms")
    }
    for st in steps:
        if st.gait != "run":
            continue
        rolling.add(st)
        if not rolling.full("contact_ms"):
            continue
        series["t"].append(_minutes(st.ic_s))
        series["gct"].append(
            gct_balance_left_pct(
                rolling.median("left", "contact_ms"), rolling.median("right", "contact_ms")
            )
        )
        for m in ("pelvic_drop_deg", "impact_peak_g", "step_ms"):
            si = (
                symmetry_index_pct(rolling.median("left", m), rolling.median("right", m))
                if rolling.full(m)
                else None
            )
            series[m].append(si)
    return series


# ---------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------
def build_report(run: RunData, config: AlertConfig | None = None) -> str:
    cfg = config or AlertConfig()
    window = cfg.asymmetry.window_steps
    steps = run.steps
    t_end = max((s.to_s for s in steps), default=1.0)
    t_start = min((s.ic_s for s in steps), default=0.0)
    # from 0 unless the recording starts late: the axis is the recording's own clock
    x0 = 0.0 if t_start < 120.0 else _minutes(t_start)
    x_range = (x0, max(_minutes(t_end), x0 + 0.1))
    markers = [
        Marker(
            _minutes(float(a["time_s"])),
            LEVEL_COLOR.get(a.get("level", ""), "#718096"),
            f"{_clock(float(a['time_s']))} {a.get('level', '')}: {a.get('message', '')}",
        )
        for a in run.alerts
    ]
    charts = [
        _side_chart(
            steps,
            "contact_ms",
            "Ground contact time per step",
            "contact (ms)",
            window,
            x_range,
            markers,
        ),
        _side_chart(
            steps,
            "pelvic_drop_deg",
            "Hip drop per step (contralateral pelvic drop in stance)",
            "hip drop (deg)",
            window,
            x_range,
            markers,
            hlines=[
                (cfg.hip_drop.levels.warning, LEVEL_COLOR["warning"], "alert threshold"),
            ],
        ),
        _balance_chart(steps, window, x_range, markers),
        _si_chart(steps, window, x_range, markers, cfg.asymmetry.si_pct.warning),
    ]
    body = [
        _header(run),
        _cards(run.summary),
        '<section><h2>Over the run</h2><p class="note">Dots: single steps; lines: median'
        f" of the last {window} steps of each side. Dashed vertical lines: alerts"
        " (hover for the message).</p>",
        *[c for c in charts if c],
        "</section>",
        _alerts_section(run.alerts),
        _history_section(run, cfg.overload.single_run_warning_pct),
        _footer(),
    ]
    return _PAGE.format(title=escape(_title(run)), css=_CSS, body="\n".join(body))


def _side_chart(
    steps: Sequence[StepRecord],
    metric: str,
    title: str,
    y_label: str,
    window: int,
    x_range: tuple[float, float],
    markers: list[Marker],
    hlines: list[tuple[float, str, str]] | None = None,
) -> str:
    data = per_side_series(steps, metric, window)
    series: list[Series] = []
    for side in SIDES:
        xs, ys, _ = data[side]
        tx, ty = _thin(xs, ys)
        series.append(Series(f"{side} steps", tx, ty, SIDE_LIGHT[side], kind="points", radius=1.7))
    for side in SIDES:
        xs, _, med = data[side]
        series.append(Series(f"{side} median", xs, med, SIDE_COLOR[side], width=2.2))
    values = [v for side in SIDES for v in data[side][1] if v is not None]
    if not values:
        return f'<p class="note">{escape(title)}: not measured by the worn sensors.</p>'
    lo, hi = _robust_range(values)
    return render(
        Chart(
            title,
            series,
            x_label="time (min)",
            y_label=y_label,
            y_range=(lo, hi),
            x_range=x_range,
            markers=markers,
            hlines=hlines or [],
        )
    )


def _balance_chart(
    steps: Sequence[StepRecord], window: int, x_range: tuple[float, float], markers: list[Marker]
) -> str:
    a = asymmetry_series(steps, window)
    if not a["t"]:
        return ""
    values = [v for v in a["gct"] if v is not None]
    spread = max([abs(v - 50.0) for v in values] + [GCT_NOTABLE_ABOVE_PCT - 50.0 + 1.5])
    lo, hi = 50.0 - spread - 0.5, 50.0 + spread + 0.5
    green, amber, red = "#c6f6d5", "#feebc8", "#fed7d7"
    b_lo, b_hi = 100.0 - GCT_BALANCED_MAX_PCT, GCT_BALANCED_MAX_PCT
    n_lo, n_hi = 100.0 - GCT_NOTABLE_ABOVE_PCT, GCT_NOTABLE_ABOVE_PCT
    bands = [
        Band(lo, n_lo, red, "notable: right foot longer on the ground"),
        Band(n_lo, b_lo, amber, "moderate (right)"),
        Band(b_lo, b_hi, green, "balanced"),
        Band(b_hi, n_hi, amber, "moderate (left)"),
        Band(n_hi, hi, red, "notable: left foot longer on the ground"),
    ]
    return render(
        Chart(
            "GCT balance: left foot's share of ground contact time (above 50%: left longer)",
            [Series("GCT balance (left %)", a["t"], a["gct"], "#2d3748", width=2.2)],
            x_label="time (min)",
            y_label="left share (%)",
            y_range=(lo, hi),
            x_range=x_range,
            bands=bands,
            markers=markers,
            hlines=[(50.0, "#718096", "50% = even")],
        )
    )


def _si_chart(
    steps: Sequence[StepRecord],
    window: int,
    x_range: tuple[float, float],
    markers: list[Marker],
    si_warning: float,
) -> str:
    a = asymmetry_series(steps, window)
    names = {
        "pelvic_drop_deg": ("hip drop", "#805ad5"),
        "impact_peak_g": ("impact", "#d69e2e"),
        "step_ms": ("step time", "#319795"),
    }
    series = [
        Series(label, a["t"], a[key], color, width=2.0)
        for key, (label, color) in names.items()
        if any(v is not None for v in a[key])
    ]
    if not series:
        return ""
    values = [abs(v) for s in series for v in s.ys if v is not None]
    top = max(max(values, default=0.0) * 1.1, si_warning * 2.0)
    return render(
        Chart(
            "Symmetry index, 100 (L - R) / mean (above 0: left larger)",
            series,
            x_label="time (min)",
            y_label="SI (%)",
            y_range=(-top, top),
            x_range=x_range,
            bands=[Band(-si_warning, si_warning, "#f0fff4", "within the alert threshold")],
            markers=markers,
            hlines=[(0.0, "#718096", "")],
        )
    )


def _robust_range(values: list[float]) -> tuple[float, float]:
    """The 0.5-99.5 % range plus a margin: one misdetected step must not squash the plot."""
    v = sorted(values)
    lo, hi = v[int(0.005 * (len(v) - 1))], v[int(0.995 * (len(v) - 1))]
    span = max(hi - lo, 1e-6)
    return lo - 0.15 * span, hi + 0.15 * span


def _clock(t_s: float) -> str:
    m, s = divmod(round(t_s), 60)
    return f"{m:d}:{s:02d}"


def _title(run: RunData) -> str:
    if run.session:
        start = run.session.get("start", "")[:16].replace("T", " ")
        return f"hipstride report: {run.session.get('athlete', '')}, {start}"
    return f"hipstride report: {run.directory.name}"


def _header(run: RunData) -> str:
    s = run.summary
    sub = f"{run.directory}"
    if run.session:
        sub = f"{escape(str(run.session.get('athlete', '')))} · " + escape(
            str(run.session.get("start", ""))
        )
    running = s.get("running_s")
    steps = s.get("steps", 0)
    dist = (s.get("totals") or {}).get("distance_m")
    facts = [
        f"{fmt_load(float(running), 'time')} running" if running else None,
        f"{steps} steps",
        f"{dist / 1000:.2f} km" if dist else None,
    ]
    return (
        f"<header><h1>{escape(_title(run))}</h1><p>{sub}</p>"
        f"<p class='facts'>{' · '.join(f for f in facts if f)}</p></header>"
    )


def _cards(summary: dict[str, Any]) -> str:
    med = summary.get("medians") or {}
    asym = summary.get("asymmetry") or {}
    left, right = med.get("left") or {}, med.get("right") or {}

    def pair(metric: str, fmt: str, unit: str) -> str:
        cells = [
            format(v, fmt) if v is not None else "-" for v in (left.get(metric), right.get(metric))
        ]
        return f"{cells[0]} / {cells[1]} {unit}"

    balance = asym.get("gct_balance_left_pct")
    zone = gct_balance_zone(balance)
    zone_text = ""
    if zone is not None:  # a longer side is only news outside the balanced zone
        zone_text = zone[0] + (f", {zone[1]} longer" if zone[1] and zone[0] != "balanced" else "")
    cadences = [v for v in (left.get("cadence_spm"), right.get("cadence_spm")) if v is not None]
    alerts = sum((summary.get("alerts") or {}).values())
    cards = [
        ("Contact time L / R", pair("contact_ms", ".0f", "ms"), ""),
        ("Hip drop L / R", pair("pelvic_drop_deg", ".1f", "deg"), ""),
        (
            "GCT balance",
            "-" if balance is None else f"{balance:.1f}% left",
            zone_text,
        ),
        (
            "Cadence",
            f"{sum(cadences) / len(cadences):.0f} steps/min" if cadences else "-",
            "",
        ),
        ("Alerts", str(alerts), "none" if not alerts else "see the timeline"),
    ]
    zone_class = {"balanced": "ok", "moderate": "warn", "notable": "bad"}
    out = ['<section class="cards">']
    for label, value, note in cards:
        cls = zone_class.get(zone[0], "") if zone and label == "GCT balance" else ""
        out.append(
            f'<div class="card {cls}"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(value)}</div><div class="sub">{escape(note)}</div></div>'
        )
    out.append("</section>")
    return "".join(out)


def _alerts_section(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return "<section><h2>Alerts</h2><p>No alerts in this run.</p></section>"
    rows = "".join(
        f'<tr class="{escape(str(a.get("level", "")))}"><td>{_clock(float(a["time_s"]))}</td>'
        f'<td><span class="pill">{escape(str(a.get("level", "")))}</span></td>'
        f"<td>{escape(str(a.get('rule', '')))}</td>"
        f"<td>{escape(str(a.get('message', '')))}</td></tr>"
        for a in alerts
    )
    return (
        "<section><h2>Alerts</h2><table class='alerts'><thead><tr><th>time</th><th>level</th>"
        f"<th>rule</th><th>message</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _history_section(run: RunData, spike_pct: float) -> str:
    if not run.history:
        hint = (
            "Record runs with <code>hipstride replay FILE --athlete NAME --start"
            " ISO-8601</code> to see the trend here."
        )
        return f"<section><h2>Training history</h2><p class='note'>{hint}</p></section>"
    sessions = run.history
    current = (run.session or {}).get("start")
    xs = list(range(len(sessions)))
    step = max(1, len(sessions) // 12)
    ticks = [(float(i), _date_label(s.start_iso)) for i, s in enumerate(sessions) if i % step == 0]
    minutes = [s.running_s / 60.0 for s in sessions]
    is_current = [s.start_iso == current for s in sessions]
    bars = [
        Series(
            "run length",
            [float(x) for x, c in zip(xs, is_current, strict=True) if not c],
            [m for m, c in zip(minutes, is_current, strict=True) if not c],
            "#a0aec0",
            kind="bars",
        ),
        Series(
            "this run",
            [float(x) for x, c in zip(xs, is_current, strict=True) if c],
            [m for m, c in zip(minutes, is_current, strict=True) if c],
            "#2b6cb0",
            kind="bars",
        ),
    ]
    # the single-run limit each session had: 10 % over the longest of its 30 days before
    limits: list[float | None] = []
    for i, s in enumerate(sessions):
        ctx = build_context(s.athlete, s.start_epoch_s, [x.past() for x in sessions[:i]])
        longest = ctx.longest_30d.running_s
        limits.append(longest / 60.0 * (1 + spike_pct / 100.0) if longest > 0 else None)
    bars.append(
        Series(
            f"limit: longest of 30 days +{spike_pct:g}%",
            [float(x) for x in xs],
            limits,
            LEVEL_COLOR["warning"],
            kind="steps",
            width=2.0,
            dash="6 4",
        )
    )
    pad = (-0.6, len(sessions) - 0.4)
    length = render(
        Chart(
            "Run length per session",
            [b for b in bars if b.xs],
            y_label="minutes",
            y_range=(0.0, max([*minutes, *(v for v in limits if v)]) * 1.15 or 1.0),
            x_range=pad,
            x_ticks=ticks,
            height=240,
        )
    )
    form_series = []
    for side in SIDES:
        values = [getattr(s, f"pelvic_drop_deg_{side}") for s in sessions]
        form_series.append(
            Series(f"hip drop {side}", [float(x) for x in xs], values, SIDE_COLOR[side], width=2.2)
        )
        form_series.append(
            Series(
                "",
                [float(x) for x in xs],
                values,
                SIDE_COLOR[side],
                kind="points",
                radius=4.0,
                legend=False,
            )
        )
    form = render(
        Chart(
            "Median hip drop per session",
            form_series,
            y_label="hip drop (deg)",
            x_range=pad,
            x_ticks=ticks,
            height=240,
        )
    )
    balance = render(
        Chart(
            "GCT balance per session",
            [
                Series(
                    "GCT balance (left %)",
                    [float(x) for x in xs],
                    [s.gct_balance_left_pct for s in sessions],
                    "#2d3748",
                    width=2.2,
                ),
                Series(
                    "",
                    [float(x) for x in xs],
                    [s.gct_balance_left_pct for s in sessions],
                    "#2d3748",
                    kind="points",
                    radius=4.0,
                    legend=False,
                ),
            ],
            y_label="left share (%)",
            y_range=(44.0, 56.0),
            x_range=pad,
            x_ticks=ticks,
            bands=[
                Band(100 - GCT_BALANCED_MAX_PCT, GCT_BALANCED_MAX_PCT, "#c6f6d5", "balanced"),
            ],
            height=240,
        )
    )
    return (
        f"<section><h2>Training history ({len(sessions)} sessions)</h2>"
        f"{length}{form}{balance}</section>"
    )


def _date_label(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%d %b")
    except ValueError:
        return iso[:10]


def _footer() -> str:
    return (
        "<footer>Thresholds and their sources: docs/alerts.md. GCT balance zones as"
        " running watches show them (balanced up to 50.7%, notable above 52.2%)."
        " Not medical advice.</footer>"
    )


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0;
  background: #f7fafc; color: #1a202c; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 20px 40px; }
header h1 { font-size: 24px; margin: 0 0 4px; }
header p { margin: 2px 0; color: #4a5568; }
header .facts { font-size: 16px; color: #2d3748; }
h2 { font-size: 18px; margin: 28px 0 8px; }
section { background: #fff; border-radius: 10px; padding: 12px 18px 16px; margin-top: 18px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
section.cards { display: flex; flex-wrap: wrap; gap: 12px; background: none; box-shadow: none;
  padding: 0; }
.card { flex: 1 1 170px; background: #fff; border-radius: 10px; padding: 12px 14px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); border-top: 4px solid #cbd5e0; }
.card.ok { border-top-color: #38a169; } .card.warn { border-top-color: #dd6b20; }
.card.bad { border-top-color: #c53030; }
.card .label { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #718096; }
.card .value { font-size: 22px; font-weight: 600; margin-top: 4px; }
.card .sub { font-size: 13px; color: #4a5568; min-height: 1em; }
svg.chart { display: block; margin: 10px 0 6px; }
.note { color: #4a5568; font-size: 14px; }
table.alerts { border-collapse: collapse; width: 100%; font-size: 14px; }
table.alerts th, table.alerts td { text-align: left; padding: 6px 8px;
  border-bottom: 1px solid #e2e8f0; vertical-align: top; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
  font-size: 12px; background: #718096; }
tr.warning .pill { background: #dd6b20; } tr.critical .pill { background: #c53030; }
footer { margin-top: 24px; font-size: 13px; color: #718096; }
code { background: #edf2f7; padding: 1px 4px; border-radius: 4px; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body><main>
{body}
</main></body>
</html>
"""
