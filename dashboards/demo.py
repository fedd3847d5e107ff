"""A simulated team for the dashboards: recordings for the live loop, and training history.

Used by the docker-compose stack (``docker/hipstride/entrypoint.sh``) so that every
dashboard shows data the moment the stack is up, and by ``tests/test_dashboards.py``,
which fills a real InfluxDB with the same code (at a smaller scale) before running
every dashboard query against it. Everything goes through hipstride's own pipeline and
sinks: the points are exactly those a real run would write.

``python demo.py recordings DIR``  one native recording per runner (``DIR/<athlete>.hsr``)
``python demo.py history``         earlier sessions of every runner, written to the
                                   InfluxDB named by ``HIPSTRIDE_INFLUX_URL`` etc.

Run as a plain script (the image copies this one file beside the installed package).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class Runner:
    """One simulated athlete: the gait the simulator gives them (pairs are left, right)."""

    athlete: str
    contact_ms: tuple[float, float]
    hip_drop_deg: tuple[float, float]
    hip_drop_drift_deg: tuple[float, float] = (0.0, 0.0)
    cadence_spm: float = 170.0
    speed_mps: float = 3.3
    seed: int = 0


#: anna: uneven (left hip drops ~9 deg, right foot stays longer on the ground): she
#: raises hip-drop and asymmetry alerts; ben: even; cleo: a right hip that tires.
TEAM: tuple[Runner, ...] = (
    Runner("anna", contact_ms=(238.0, 266.0), hip_drop_deg=(9.0, 5.0), cadence_spm=168.0, seed=11),
    Runner("ben", contact_ms=(248.0, 252.0), hip_drop_deg=(5.0, 5.2), cadence_spm=176.0, seed=12),
    Runner(
        "cleo",
        contact_ms=(244.0, 256.0),
        hip_drop_deg=(5.5, 6.0),
        hip_drop_drift_deg=(0.5, 3.5),
        cadence_spm=172.0,
        seed=13,
    ),
)


@dataclass(frozen=True, slots=True)
class PlannedSession:
    runner: Runner
    start_epoch_s: float
    duration_s: float
    seed: int

    @property
    def session(self) -> str:
        # the format of hipstride's default session id, in UTC: sorts in time order
        return time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.start_epoch_s))


def sim_config(runner: Runner, duration_s: float, seed: int, **extra: Any) -> Any:
    from sensors.simulator import SimConfig

    return SimConfig(
        duration_s=duration_s,
        cadence_spm=runner.cadence_spm,
        contact_ms=runner.contact_ms,
        hip_drop_deg=runner.hip_drop_deg,
        hip_drop_drift_deg=runner.hip_drop_drift_deg,
        speed_mps=runner.speed_mps,
        standing_s=2.0,
        loss_pct=0.5,
        seed=seed,
        **extra,
    )


def history_plan(
    team: Sequence[Runner],
    now_s: float,
    *,
    weeks: int = 4,
    runs_per_week: int = 3,
    minutes: tuple[float, float] = (5.0, 9.0),
    spike_athlete: str | None = "cleo",
) -> list[PlannedSession]:
    """Earlier sessions, oldest first: a few runs a week for each runner, slowly
    growing, and for ``spike_athlete`` a last run twice as long as any before (so the
    training-load dashboard has a longest-run spike to show). Deterministic."""
    plan: list[PlannedSession] = []
    n = weeks * runs_per_week
    lo, hi = minutes
    for r_i, runner in enumerate(team):
        for k in range(n):
            days_ago = (n - k) * 7.0 / runs_per_week + 0.5
            minutes_k = lo + (hi - lo) * k / max(1, n - 1)
            if runner.athlete == spike_athlete and k == n - 1:
                minutes_k = 2.2 * hi
            start = now_s - days_ago * DAY_S + r_i * 3600.0
            plan.append(PlannedSession(runner, start, 60.0 * minutes_k, runner.seed * 1000 + k))
    return sorted(plan, key=lambda p: p.start_epoch_s)


SinkFactory = Callable[[PlannedSession], list[Any]]


def run_sessions(
    plan: Iterable[PlannedSession],
    make_sinks: SinkFactory,
    *,
    past: dict[str, list[Any]] | None = None,
    on_done: Callable[[PlannedSession, dict[str, Any]], None] | None = None,
) -> dict[str, list[Any]]:
    """Simulate each planned session and drive it through the pipeline into its sinks,
    as fast as possible, in time order. Each session's alert stage gets the training
    history of the sessions before it (so overload alerts appear as they would live).
    Returns the history per athlete (``pipeline.training.PastSession``)."""
    from pipeline.driver import drive
    from pipeline.engine import Pipeline, PipelineConfig
    from pipeline.stages.alerts import AlertConfig
    from pipeline.training import PastSession, build_context
    from sensors.simulator import simulate

    history: dict[str, list[Any]] = {k: list(v) for k, v in (past or {}).items()}
    for p in sorted(plan, key=lambda p: p.start_epoch_s):
        athlete = p.runner.athlete
        before = history.setdefault(athlete, [])
        ctx = build_context(athlete, p.start_epoch_s, before)
        config = PipelineConfig(alerts=AlertConfig(training=ctx))
        sim = simulate(sim_config(p.runner, p.duration_s, p.seed))
        result = drive(sim.chunks(), Pipeline(sim.placements, config), make_sinks(p))
        summary = result.summary
        distance = (summary.get("totals") or {}).get("distance_m")
        before.append(PastSession(p.start_epoch_s, summary.get("running_s") or 0.0, distance))
        if on_done is not None:
            on_done(p, summary)
    return history


def settings_sink_factory(settings: Any) -> SinkFactory:
    """Sinks from hipstride's settings (``pipeline.sinks.config.Settings``), with each
    session's athlete, session id and start time; InfluxDB only (history is not live)."""
    from pipeline.sinks.options import make_sinks

    # A spool of its own: the live replays of the same athletes hold theirs (locked)
    # while the history is written.
    spool = str(Path(settings.spool_dir).expanduser() / "demo-history")

    def factory(p: PlannedSession) -> list[Any]:
        s = dataclasses.replace(
            settings, athlete=p.runner.athlete, session=p.session, mqtt=None, spool_dir=spool
        )
        return make_sinks(s, session_start_unix_s=p.start_epoch_s)

    return factory


def write_recordings(out_dir: Path, team: Sequence[Runner], duration_s: float) -> list[Path]:
    from sensors.simulator import write_simulation

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for runner in team:
        path = out_dir / f"{runner.athlete}.hsr"
        write_simulation(sim_config(runner, duration_s, runner.seed), path)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("recordings", help="write one recording per runner")
    rec.add_argument("out", type=Path)
    rec.add_argument("--duration-s", type=float, default=600.0)
    hist = sub.add_parser("history", help="write earlier sessions to InfluxDB")
    hist.add_argument("--weeks", type=int, default=4)
    hist.add_argument("--runs-per-week", type=int, default=3)
    hist.add_argument(
        "--minutes", type=float, nargs=2, default=(5.0, 9.0), metavar=("FIRST", "LAST")
    )
    args = parser.parse_args(argv)
    if args.command == "recordings":
        for path in write_recordings(args.out, TEAM, args.duration_s):
            print(f"wrote {path}")
        return 0

    from pipeline.sinks.config import load_settings

    settings = load_settings()  # HIPSTRIDE_INFLUX_URL, _USERNAME, _PASSWORD, ...
    if settings.influx is None:
        print("demo history: set HIPSTRIDE_INFLUX_URL", file=sys.stderr)
        return 2
    plan = history_plan(
        TEAM,
        time.time(),
        weeks=args.weeks,
        runs_per_week=args.runs_per_week,
        minutes=tuple(args.minutes),
    )

    def done(p: PlannedSession, summary: dict[str, Any]) -> None:
        print(f"history: {p.runner.athlete} {p.session} {summary['steps']} steps", flush=True)

    run_sessions(plan, settings_sink_factory(settings), on_done=done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
