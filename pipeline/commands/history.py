"""``hipstride history --athlete NAME [--db PATH]``: an athlete's sessions as a table."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipeline.history import History, HistoryError, Session, athlete_name, resolve_db_path
from pipeline.training import Unit, acwr, build_context, pct_over


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "history",
        help="print an athlete's recorded sessions (training history)",
        description=(
            "Print the sessions recorded for an athlete (by 'replay --athlete --start'),"
            " with load figures. The store is --db, else $HIPSTRIDE_DB, else the user's"
            " data directory."
        ),
    )
    p.add_argument("--athlete", required=True, help="athlete name (case-insensitive)")
    p.add_argument(
        "--db", default=None, help="history database (default: $HIPSTRIDE_DB or data dir)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per session instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.cli import UsageError

    try:
        name = athlete_name(args.athlete)
        with History(resolve_db_path(args.db), create=False) as store:
            sessions = store.sessions(name)
    except HistoryError as err:
        raise UsageError(str(err)) from None
    rows = [row_figures(sessions, i) for i in range(len(sessions))]
    if args.json:
        for r in rows:
            print(json.dumps(r, sort_keys=True))
        return 0
    # the name as first recorded (lookups ignore case)
    print(render_table(sessions[0].athlete if sessions else name, rows))
    return 0


def row_figures(sessions: list[Session], i: int) -> dict[str, Any]:
    """One session with its load figures against the sessions before it."""
    s = sessions[i]
    ctx = build_context(s.athlete, s.start_epoch_s, [x.past() for x in sessions[:i]])
    unit: Unit = (
        "distance"
        if s.distance_m is not None and ctx.longest_30d.distance_m is not None
        else "time"
    )
    amount = s.distance_m if unit == "distance" else s.running_s
    week = (ctx.last_7d.value(unit) or 0.0) + (amount or 0.0)
    return {
        "start": s.start_iso,
        "running_s": s.running_s,
        "distance_m": s.distance_m,
        "steps": s.steps,
        "cadence_spm": s.cadence_spm,
        "contact_ms": [s.contact_ms_left, s.contact_ms_right],
        "pelvic_drop_deg": [s.pelvic_drop_deg_left, s.pelvic_drop_deg_right],
        "gct_balance_left_pct": s.gct_balance_left_pct,
        "impact_load_g": s.impact_load_g,
        "alerts": json.loads(s.alerts_json),
        "load_unit": unit,
        "vs_longest_30d_pct": pct_over(amount, ctx.longest_30d.value(unit)),
        "week_vs_previous_pct": pct_over(week, ctx.previous_7d.value(unit)),
        # secondary figure only (see docs/alerts.md): never drives an alert
        "acwr": acwr(week, ctx.chronic_week.value(unit)),
    }


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def _num(value: float | None, fmt: str, width: int) -> str:
    return (format(value, fmt) if value is not None else "-").rjust(width)


def _pair(values: list[float | None], fmt: str, width: int) -> str:
    cells = [format(v, fmt) if v is not None else "-" for v in values]
    return "/".join(cells).rjust(width)


def _signed(value: float | None, width: int) -> str:
    return (f"{value:+.0f}%" if value is not None else "-").rjust(width)


def render_table(name: str, rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'date':16s} {'run':>9s} {'dist km':>7s} {'steps':>6s} {'cad':>4s}"
        f" {'contact L/R':>11s} {'hipdrop L/R':>11s} {'GCT L%':>6s} {'impact':>7s}"
        f" {'alerts':>6s} {'vs30d':>6s} {'week':>6s} {'ACWR':>5s}"
    )
    lines = [f"{name}: {len(rows)} session{'s' if len(rows) != 1 else ''}", head]
    for r in rows:
        start = r["start"][:16].replace("T", " ")
        impact = r["impact_load_g"]
        lines.append(
            f"{start:16s} {_duration(r['running_s']):>9s}"
            f" {_num(None if r['distance_m'] is None else r['distance_m'] / 1000, '.2f', 7)}"
            f" {r['steps']:6d} {_num(r['cadence_spm'], '.0f', 4)}"
            f" {_pair(r['contact_ms'], '.0f', 11)} {_pair(r['pelvic_drop_deg'], '.1f', 11)}"
            f" {_num(r['gct_balance_left_pct'], '.1f', 6)}"
            f" {_num(None if impact is None else impact / 1000, '.1f', 6)}k"
            f" {sum(r['alerts'].values()):6d} {_signed(r['vs_longest_30d_pct'], 6)}"
            f" {_signed(r['week_vs_previous_pct'], 6)} {_num(r['acwr'], '.2f', 5)}"
        )
    lines.append(
        "vs30d: this run against the longest of the 30 days before (spike above +10%);"
        " week: 7 days to this run against the 7 before (spike above +30%);"
        " ACWR: secondary figure only (docs/alerts.md)."
    )
    return "\n".join(lines)
