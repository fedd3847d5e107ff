"""Training history: replayed sessions with dates, the store, overload alerts across
runs, ``hipstride history`` and its errors (one line, exit code 2)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.history import History, HistoryError, default_db_path, parse_start, resolve_db_path

#: (name, start, running seconds): S3 is a spike against S1/S2 and lifts the 7-day
#: volume; S4 comes after seven weeks off
SESSIONS = [
    ("s1", "2025-03-01T07:30:00+01:00", 40.0),
    ("s2", "2025-03-09T07:30:00+01:00", 40.0),
    ("s3", "2025-03-12T18:00:00+01:00", 60.0),
    ("s4", "2025-05-01T07:00:00+02:00", 40.0),
]


def _alerts(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "alerts.jsonl").read_text().splitlines() if x]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    d = tmp_path_factory.mktemp("hist")
    db = d / "history.sqlite3"
    recordings = {}
    for _, _, seconds in SESSIONS:
        if seconds not in recordings:
            rec = d / f"run{int(seconds)}.hsr"
            assert main(["simulate", "--duration-s", str(seconds), "--seed", "3", str(rec)]) == 0
            recordings[seconds] = rec
    # replayed out of date order on purpose: each session sees only the sessions before it
    for name, start, seconds in (SESSIONS[2], SESSIONS[0], SESSIONS[1], SESSIONS[3]):
        args = ["replay", str(recordings[seconds]), "--out", str(d / name), "--quiet"]
        assert main([*args, "--athlete", "Anna", "--start", start, "--db", str(db)]) == 0
    # S3 again, after S1 and S2 are in the store: its alerts now see them
    args = ["replay", str(recordings[60.0]), "--out", str(d / "s3"), "--quiet"]
    assert main([*args, "--athlete", "anna", "--start", SESSIONS[2][1], "--db", str(db)]) == 0
    return d, db


def test_sessions_stored_once_each_in_time_order(replayed) -> None:
    _, db = replayed
    with History(db, create=False) as store:
        sessions = store.sessions("ANNA")  # names are case-insensitive
    assert [s.start_iso for s in sessions] == [s[1] for s in SESSIONS]  # S3 replaced
    assert all(s.athlete == "Anna" for s in sessions)
    s3 = sessions[2]
    assert s3.running_s == pytest.approx(60.0, abs=1.5) and s3.steps > 150
    assert s3.contact_ms_left == pytest.approx(250.0, abs=10.0)
    assert s3.gct_balance_left_pct == pytest.approx(50.0, abs=1.0)
    assert s3.impact_load_g is not None and s3.impact_load_g > 0
    if s3.distance_m is not None:  # the shoes give stride length: 3.3 m/s
        assert s3.distance_m == pytest.approx(3.3 * s3.running_s, rel=0.1)
    assert json.loads(s3.alerts_json).get("single_run_spike") == 1


def test_spike_and_weekly_alerts_fire_during_the_run(replayed) -> None:
    d, _ = replayed
    alerts = _alerts(d / "s3")
    spike = [a for a in alerts if a.get("rule") == "single_run_spike"]
    assert len(spike) == 1 and spike[0]["level"] == "warning"
    # 10 % over the 40 s (or 132 m) of S1/S2: about 44 s into the run
    assert 42.0 < spike[0]["time_s"] < 47.0
    weekly = [a for a in alerts if a.get("rule") == "weekly_volume_spike"]
    # last 7 days: S2 (40 s) + this run, against S1 (40 s): +30 % after ~12 s
    assert len(weekly) == 1 and 10.0 < weekly[0]["time_s"] < 16.0
    assert not any(a.get("rule") == "single_run_spike" for a in _alerts(d / "s2"))
    assert not any(a.get("rule") == "single_run_spike" for a in _alerts(d / "s1"))


def test_return_after_break_at_the_start(replayed) -> None:
    d, _ = replayed
    alerts = _alerts(d / "s4")
    assert [a["rule"] for a in alerts] == ["return_after_break"]
    assert alerts[0]["time_s"] < 2.0 and alerts[0]["value"] == pytest.approx(49.5, abs=0.01)
    session = json.loads((d / "s4" / "session.json").read_text())
    assert session["athlete"] == "Anna" and session["start"] == SESSIONS[3][1]


def test_history_prints_the_table(replayed, capsys) -> None:
    _, db = replayed
    capsys.readouterr()
    assert main(["history", "--athlete", "anna", "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Anna: 4 sessions"
    rows = [line for line in out if line.startswith("2025-")]
    assert [r[:16] for r in rows] == [
        "2025-03-01 07:30",
        "2025-03-09 07:30",
        "2025-03-12 18:00",
        "2025-05-01 07:00",
    ]
    # S3 (60 s) against the longest (40 s) of the 30 days before: about +50 %, in time
    # or in distance when the shoes measure stride length
    vs30d = int(rows[2].split()[-3].rstrip("%"))
    assert 40 <= vs30d <= 60, rows[2]
    assert rows[0].split()[-3] == "-"  # nothing before the first session
    assert "ACWR" in out[1]


def test_history_json_and_env_var(replayed, capsys, monkeypatch) -> None:
    _, db = replayed
    monkeypatch.setenv("HIPSTRIDE_DB", str(db))
    capsys.readouterr()
    assert main(["history", "--athlete", "Anna", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4 and rows[2]["vs_longest_30d_pct"] == pytest.approx(50.0, abs=5.0)
    assert rows[0]["vs_longest_30d_pct"] is None  # nothing before the first session


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["history", "--athlete", "bob"], "unknown athlete 'bob'"),
        (["history", "--athlete", "anna", "--db", "{missing}"], "no history database at"),
        (["history", "--athlete", "anna", "--db", "{junk}"], "file is not a database"),
        (["replay", "{rec}", "--out", "{out}", "--athlete", "A", "--start", "tuesday"], "ISO-8601"),
        (["replay", "{rec}", "--out", "{out}", "--athlete", "A"], "needs --start"),
        (["replay", "{rec}", "--out", "{out}", "--start", "2025-01-01"], "only used with"),
        (
            [
                "replay",
                "{rec}",
                "--out",
                "{out}",
                "--athlete",
                "A",
                "--start",
                "2025-01-01",
                "--db",
                "{junk}",
            ],
            "file is not a database",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(replayed, tmp_path, capsys, monkeypatch, argv, expected):
    d, db = replayed
    monkeypatch.setenv("HIPSTRIDE_DB", str(db))
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite\n" * 100)
    subs = {
        "{missing}": str(tmp_path / "none.db"),
        "{junk}": str(junk),
        "{rec}": str(d / "run40.hsr"),
        "{out}": str(tmp_path / "out"),
    }
    capsys.readouterr()
    assert main([subs.get(a, a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hipstride: error:") and expected in err[0], err
    assert not (tmp_path / "out" / "steps.csv").exists()  # failed before the replay
    assert not (tmp_path / "none.db").exists()  # reading never creates a store


def test_store_location_and_dates(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("HIPSTRIDE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if default_db_path().is_relative_to(tmp_path):  # Linux and other XDG platforms
        assert default_db_path() == tmp_path / "xdg" / "hipstride" / "history.sqlite3"
    assert resolve_db_path(None) == default_db_path()
    monkeypatch.setenv("HIPSTRIDE_DB", str(tmp_path / "env.db"))
    assert resolve_db_path(None) == tmp_path / "env.db"
    assert resolve_db_path(str(tmp_path / "arg.db")) == tmp_path / "arg.db"
    assert parse_start("2025-03-01T07:30:00Z").utcoffset().total_seconds() == 0
    assert parse_start("2025-03-01").tzinfo is not None  # local time
    with pytest.raises(HistoryError, match="ISO-8601"):
        parse_start("01/03/2025")


def test_newer_store_is_refused(tmp_path) -> None:
    db = tmp_path / "h.db"
    History(db).close()
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="newer hipstride"):
        History(db)


def test_run_distance_counts_steps_without_stride_at_the_mean() -> None:
    from pipeline.summary import run_distance_m

    # 12 steps, 10 with a 2 m stride: each step covers half a stride, 12 m in all
    assert run_distance_m(20.0, 10, 12) == pytest.approx(12.0)
    assert run_distance_m(2.0, 1, 12) is None  # too few strides to say
    assert run_distance_m(0.0, 0, 0) is None


@pytest.mark.parametrize("history_first", [True, False])
def test_athlete_option_is_shared_with_the_publishing_options(history_first) -> None:
    import argparse

    from pipeline.session import add_history_options
    from pipeline.sinks.options import add_sink_arguments

    p = argparse.ArgumentParser()
    adders = [add_history_options, add_sink_arguments]
    for add in adders if history_first else adders[::-1]:
        add(p)  # no "conflicting option string: --athlete"
    args = p.parse_args(["--athlete", "Anna", "--start", "2025-03-01T07:30:00Z"])
    assert args.athlete == "Anna" and args.start == "2025-03-01T07:30:00Z"
