"""Training history: an embedded SQLite store of sessions per athlete.

One file, no server (stdlib :mod:`sqlite3`). A session is one replayed or live run:
its start (ISO-8601 with the offset the user gave, plus epoch seconds for windows),
duration, steps, distance where the sensors give stride length, impact load, medians
and asymmetries, the alert counts and the whole ``summary.json`` for later use.

Where the store lives: ``--db PATH``, else ``$HIPSTRIDE_DB``, else the user's data
directory (``$XDG_DATA_HOME/hipstride/history.sqlite3`` on Linux,
``~/Library/Application Support/hipstride`` on macOS, ``%LOCALAPPDATA%\\hipstride`` on
Windows).

Recording the same athlete and start twice replaces the session (a replay after a
decoder fix mends the history instead of doubling it). Every failure raises
:class:`HistoryError` with one clear line; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.training import PastSession, TrainingContext, build_context

#: bumped when the table layout changes (PRAGMA user_version)
STORE_VERSION = 1
ENV_VAR = "HIPSTRIDE_DB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS athletes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    athlete_id INTEGER NOT NULL REFERENCES athletes(id),
    start_iso TEXT NOT NULL,
    start_epoch_s REAL NOT NULL,
    duration_s REAL,
    running_s REAL NOT NULL,
    steps INTEGER NOT NULL,
    distance_m REAL,
    impact_load_g REAL,
    cadence_spm REAL,
    contact_ms_left REAL,
    contact_ms_right REAL,
    pelvic_drop_deg_left REAL,
    pelvic_drop_deg_right REAL,
    impact_peak_g_left REAL,
    impact_peak_g_right REAL,
    gct_balance_left_pct REAL,
    contact_ms_si_pct REAL,
    step_ms_si_pct REAL,
    pelvic_drop_deg_si_pct REAL,
    impact_peak_g_si_pct REAL,
    alerts_total INTEGER NOT NULL DEFAULT 0,
    alerts_json TEXT NOT NULL DEFAULT '{}',
    source TEXT,
    summary_json TEXT NOT NULL,
    UNIQUE (athlete_id, start_epoch_s)
);
CREATE INDEX IF NOT EXISTS sessions_by_time ON sessions (athlete_id, start_epoch_s);
"""

_COLUMNS = (
    "start_iso",
    "start_epoch_s",
    "duration_s",
    "running_s",
    "steps",
    "distance_m",
    "impact_load_g",
    "cadence_spm",
    "contact_ms_left",
    "contact_ms_right",
    "pelvic_drop_deg_left",
    "pelvic_drop_deg_right",
    "impact_peak_g_left",
    "impact_peak_g_right",
    "gct_balance_left_pct",
    "contact_ms_si_pct",
    "step_ms_si_pct",
    "pelvic_drop_deg_si_pct",
    "impact_peak_g_si_pct",
    "alerts_total",
    "alerts_json",
    "source",
)


class HistoryError(Exception):
    """A history problem the user can fix (bad date, unknown athlete, unreadable file)."""


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    athlete: str
    start_iso: str
    start_epoch_s: float
    duration_s: float | None
    running_s: float
    steps: int
    distance_m: float | None
    impact_load_g: float | None
    cadence_spm: float | None
    contact_ms_left: float | None
    contact_ms_right: float | None
    pelvic_drop_deg_left: float | None
    pelvic_drop_deg_right: float | None
    impact_peak_g_left: float | None
    impact_peak_g_right: float | None
    gct_balance_left_pct: float | None
    contact_ms_si_pct: float | None
    step_ms_si_pct: float | None
    pelvic_drop_deg_si_pct: float | None
    impact_peak_g_si_pct: float | None
    alerts_total: int
    alerts_json: str
    source: str | None

    @property
    def start(self) -> datetime:
        return datetime.fromisoformat(self.start_iso)

    def past(self) -> PastSession:
        return PastSession(self.start_epoch_s, self.running_s, self.distance_m)


# ---------------------------------------------------------------------------------
# Locations and dates
# ---------------------------------------------------------------------------------
def default_db_path() -> Path:
    """The history file in the user's data directory (per platform conventions)."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "hipstride" / "history.sqlite3"


def resolve_db_path(arg: str | os.PathLike[str] | None) -> Path:
    """``--db`` wins, then ``$HIPSTRIDE_DB``, then the user's data directory."""
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return default_db_path()


def parse_start(text: str) -> datetime:
    """An ISO-8601 date-time; without an offset it is taken as this computer's local time."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HistoryError(
            f"--start {text!r} is not an ISO-8601 date-time (e.g. 2025-03-01T07:30:00+01:00)"
        ) from None
    return dt if dt.tzinfo is not None else dt.astimezone()


def athlete_name(text: str) -> str:
    name = " ".join(text.split())
    if not name:
        raise HistoryError("--athlete must not be empty")
    return name


# ---------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------
class History:
    """The store for one file. ``create=False`` opens read-only and never creates it."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise HistoryError(f"no history database at {self.path}")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path)
            else:
                self._db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True)
        except (OSError, sqlite3.Error) as err:
            raise HistoryError(f"cannot open history database {self.path}: {err}") from None
        with self._errors():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > STORE_VERSION:
                raise HistoryError(
                    f"history database {self.path} was written by a newer hipstride"
                    f" (store version {version}; this one reads {STORE_VERSION})"
                )
            if create:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version = {STORE_VERSION}")
                self._db.commit()
            else:
                self._db.execute("SELECT count(*) FROM sessions").fetchone()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            # e.g. "file is not a database", "database is locked", a missing table
            raise HistoryError(f"cannot use history database {self.path}: {err}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- athletes ---------------------------------------------------------------------
    def athletes(self) -> list[str]:
        with self._errors():
            rows = self._db.execute("SELECT name FROM athletes ORDER BY name").fetchall()
        return [r[0] for r in rows]

    def _athlete_id(self, name: str, *, create: bool) -> int | None:
        with self._errors():
            row = self._db.execute("SELECT id FROM athletes WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return int(row[0])
            if not create:
                return None
            cur = self._db.execute("INSERT INTO athletes (name) VALUES (?)", (name,))
            return int(cur.lastrowid or 0)

    def require_athlete(self, name: str) -> None:
        """Raise a clear error naming the known athletes when ``name`` is not one."""
        if self._athlete_id(name, create=False) is None:
            known = self.athletes()
            listing = ", ".join(known) if known else "none yet"
            raise HistoryError(
                f"unknown athlete {name!r} in {self.path} (known athletes: {listing})"
            )

    # -- sessions ---------------------------------------------------------------------
    def record(
        self,
        athlete: str,
        start: datetime,
        summary: Mapping[str, Any],
        source: str | None = None,
    ) -> int:
        """Store one session from its final summary; returns the session id."""
        row = session_row(start, summary, source)
        with self._errors():
            athlete_id = self._athlete_id(athlete, create=True)
            cols = ("athlete_id", *_COLUMNS, "summary_json")
            values = (
                athlete_id,
                *(row[c] for c in _COLUMNS),
                json.dumps(summary, sort_keys=True),
            )
            marks = ", ".join("?" for _ in cols)
            # same athlete and start: a re-processed recording replaces the old row
            cur = self._db.execute(
                f"INSERT OR REPLACE INTO sessions ({', '.join(cols)}) VALUES ({marks})", values
            )
            self._db.commit()
            return int(cur.lastrowid or 0)

    def sessions(self, athlete: str) -> list[Session]:
        """All sessions of ``athlete`` in time order (raises for an unknown athlete)."""
        self.require_athlete(athlete)
        with self._errors():
            rows = self._db.execute(
                f"SELECT s.id, a.name, {', '.join('s.' + c for c in _COLUMNS)}"
                " FROM sessions s JOIN athletes a ON a.id = s.athlete_id"
                " WHERE a.name = ? ORDER BY s.start_epoch_s",
                (athlete,),
            ).fetchall()
        return [Session(*r) for r in rows]

    def context(self, athlete: str, start: datetime) -> TrainingContext:
        """What the history says before a session of ``athlete`` starting at ``start``."""
        athlete_id = self._athlete_id(athlete, create=False)
        past = [] if athlete_id is None else [s.past() for s in self.sessions(athlete)]
        return build_context(athlete, start.timestamp(), past)


def session_row(start: datetime, summary: Mapping[str, Any], source: str | None) -> dict[str, Any]:
    """The stored columns of one session, from ``summary.json``'s content."""
    med = summary.get("medians") or {}
    asym = summary.get("asymmetry") or {}
    detail = summary.get("asymmetry_detail") or {}
    totals = summary.get("totals") or {}
    alerts = dict(summary.get("alerts") or {})
    left, right = med.get("left") or {}, med.get("right") or {}
    cadences = [v for v in (left.get("cadence_spm"), right.get("cadence_spm")) if v is not None]
    return {
        "start_iso": start.isoformat(),
        "start_epoch_s": start.timestamp(),
        "duration_s": summary.get("duration_s"),
        "running_s": float(summary.get("running_s") or 0.0),
        "steps": int(summary.get("steps") or 0),
        "distance_m": totals.get("distance_m"),
        "impact_load_g": totals.get("impact_load_g"),
        "cadence_spm": sum(cadences) / len(cadences) if cadences else None,
        "contact_ms_left": left.get("contact_ms"),
        "contact_ms_right": right.get("contact_ms"),
        "pelvic_drop_deg_left": left.get("pelvic_drop_deg"),
        "pelvic_drop_deg_right": right.get("pelvic_drop_deg"),
        "impact_peak_g_left": left.get("impact_peak_g"),
        "impact_peak_g_right": right.get("impact_peak_g"),
        "gct_balance_left_pct": asym.get("gct_balance_left_pct"),
        "contact_ms_si_pct": asym.get("contact_ms_si_pct"),
        "step_ms_si_pct": asym.get("step_ms_si_pct"),
        "pelvic_drop_deg_si_pct": asym.get("pelvic_drop_deg_si_pct"),
        "impact_peak_g_si_pct": detail.get("impact_peak_g_si_pct"),
        "alerts_total": sum(int(v) for v in alerts.values()),
        "alerts_json": json.dumps(alerts, sort_keys=True),
        "source": source,
    }
