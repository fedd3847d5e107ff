"""A run as a session of the training history: options, alert context, recording.

``replay`` (and any other command that processes a whole run) adds the options with
:func:`add_history_options`, calls :meth:`HistorySession.from_args` *before* the run
(so a bad date or an unreadable store fails at once, not after a long replay), builds
its pipeline with :meth:`HistorySession.pipeline_config` (the across-run alerts need
the history), and calls :meth:`HistorySession.record` after it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.engine import PipelineConfig
from pipeline.history import History, HistoryError, athlete_name, parse_start, resolve_db_path
from pipeline.training import TrainingContext, acwr, fmt_load, pct_over

#: written beside summary.json so that ``hipstride report DIR`` finds the history
SESSION_FILE = "session.json"


def add_history_options(p: argparse.ArgumentParser) -> None:
    """``--athlete``, ``--start``, ``--db``.

    ``--athlete`` is shared with the publishing options (``pipeline.sinks.options``
    names the athlete in topics and tags with the same flag): one athlete for both.
    Whichever group comes first defines it; ``resolve`` lets the other add it again
    without argparse's "conflicting option string" error.
    """
    p.conflict_handler = "resolve"
    g = p.add_argument_group("training history")
    if "--athlete" not in p._option_string_actions:
        g.add_argument("--athlete", default=None, help="record this run in NAME's history")
    g.add_argument(
        "--start",
        default=None,
        metavar="ISO-8601",
        help="when the run started, e.g. 2025-03-01T07:30:00+01:00 (needed with --athlete)",
    )
    g.add_argument(
        "--db",
        default=None,
        help="history database (default: $HIPSTRIDE_DB, else the user's data directory)",
    )


class HistorySession:
    def __init__(self, athlete: str, start: datetime, db: Path, context: TrainingContext) -> None:
        self.athlete = athlete
        self.start = start
        self.db = db
        self.context = context

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> HistorySession | None:
        """None without ``--athlete``; raises :class:`HistoryError` on bad options."""
        if args.athlete is None:
            if args.start is not None:
                raise HistoryError("--start is only used with --athlete NAME")
            return None
        name = athlete_name(args.athlete)
        if args.start is None:
            raise HistoryError("--athlete needs --start ISO-8601 (when the run started)")
        start = parse_start(args.start)
        db = resolve_db_path(args.db)
        with History(db, create=True) as store:
            context = store.context(name, start)
        return cls(name, start, db, context)

    def pipeline_config(self, base: PipelineConfig | None = None) -> PipelineConfig:
        base = base or PipelineConfig()
        return replace(base, alerts=replace(base.alerts, training=self.context))

    def record(self, summary: dict[str, Any], out_dir: Path, source: str | None) -> int:
        with History(self.db, create=True) as store:
            session_id = store.record(self.athlete, self.start, summary, source)
        (out_dir / SESSION_FILE).write_text(
            json.dumps(
                {
                    "athlete": self.athlete,
                    "start": self.start.isoformat(),
                    "db": str(self.db.resolve()),
                    "session_id": session_id,
                    "training": self.load_figures(summary),
                },
                indent=2,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        return session_id

    def load_figures(self, summary: dict[str, Any]) -> dict[str, Any]:
        """This run against the history (time-based, as every session has a time)."""
        ctx = self.context
        running_s = float(summary.get("running_s") or 0.0)
        week_s = ctx.last_7d.running_s + running_s
        return {
            "sessions_before": ctx.sessions_before,
            "running_s": running_s,
            "longest_30d_running_s": ctx.longest_30d.running_s,
            "vs_longest_30d_pct": pct_over(running_s, ctx.longest_30d.running_s),
            "last_7d_incl_this_run_s": week_s,
            "previous_7d_running_s": ctx.previous_7d.running_s,
            "week_vs_previous_pct": pct_over(week_s, ctx.previous_7d.running_s),
            "acwr": acwr(week_s, ctx.chronic_week.running_s),
        }

    def describe(self, summary: dict[str, Any]) -> str:
        f = self.load_figures(summary)
        if not self.context.has_history:
            return f"first session recorded for {self.athlete} in {self.db}"
        parts = [f"recorded for {self.athlete} in {self.db}"]
        if f["vs_longest_30d_pct"] is not None:
            parts.append(
                f"{f['vs_longest_30d_pct']:+.0f}% vs the longest run of the last 30 days"
                f" ({fmt_load(f['longest_30d_running_s'], 'time')})"
            )
        if f["week_vs_previous_pct"] is not None:
            parts.append(f"7-day volume {f['week_vs_previous_pct']:+.0f}% vs the 7 days before")
        if f["acwr"] is not None:
            parts.append(f"ACWR {f['acwr']:.2f} (secondary figure)")
        return "; ".join(parts)


__all__ = ["SESSION_FILE", "HistoryError", "HistorySession", "add_history_options"]
