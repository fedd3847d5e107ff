"""``hipstride report DIR [--db PATH --athlete NAME]``: one self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.history import History, HistoryError, athlete_name, resolve_db_path
from pipeline.report import ReportError, build_report, load_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="render a run directory as one self-contained HTML page",
        description=(
            "Render the run directory written by 'replay' as one HTML page with inline"
            " plots (contact time and hip drop by side, asymmetry over time, alerts on the"
            " timeline, training-history trend). The history comes from --db/--athlete,"
            " else from the session.json that 'replay --athlete' wrote."
        ),
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="run directory (replay --out)")
    p.add_argument("--out", type=Path, default=None, help="HTML file (default: DIR/report.html)")
    p.add_argument("--db", default=None, help="history database for the trend")
    p.add_argument("--athlete", default=None, help="athlete whose history to show")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.cli import UsageError

    try:
        data = load_run(args.dir)
    except ReportError as err:
        raise UsageError(str(err)) from None
    session = data.session or {}
    athlete = args.athlete or session.get("athlete")
    db = args.db or session.get("db")  # None: $HIPSTRIDE_DB, else the data directory
    if athlete:
        try:
            with History(resolve_db_path(db), create=False) as store:
                data.history = store.sessions(athlete_name(athlete))
        except HistoryError as err:
            raise UsageError(str(err)) from None
    out = args.out or args.dir / "report.html"
    try:
        out.write_text(build_report(data), encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot write {out}: {err}") from None
    print(f"wrote {out}")
    return 0
