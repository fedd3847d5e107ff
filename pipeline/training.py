"""What the training history says before a session starts (pure data, no storage).

:mod:`pipeline.history` builds a :class:`TrainingContext` from the SQLite store; the
alert stage (:mod:`pipeline.stages.alerts`) only reads it, so alert rules can be
tested without a database and a live run never touches the disk for a decision.

Load is measured in distance where every session involved has one (stride length
from the sensors), otherwise in running time: Frandsen et al. (2025) and Nielsen et
al. (2014) used distance, and time is the closest proxy a sensor set without stride
length can give. ``docs/alerts.md`` has the sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DAY_S = 86400.0

Unit = Literal["distance", "time"]


@dataclass(frozen=True, slots=True)
class PastSession:
    """One earlier session as the overload rules need it."""

    start_epoch_s: float
    running_s: float
    distance_m: float | None = None


@dataclass(frozen=True, slots=True)
class Load:
    """One amount of running in both units (distance None when unknown)."""

    running_s: float = 0.0
    distance_m: float | None = 0.0

    def value(self, unit: Unit) -> float | None:
        return self.running_s if unit == "time" else self.distance_m


@dataclass(frozen=True, slots=True)
class TrainingContext:
    """The athlete's recent history, as of the start of this session.

    Windows are rolling, counted back from ``start_epoch_s``: "last 7 days" is
    (start - 7 d, start), "the 7 days before" is (start - 14 d, start - 7 d], and the
    chronic load for the (uncoupled) acute:chronic ratio is the mean week of the
    three weeks before the last 7 days.
    """

    athlete: str
    start_epoch_s: float
    #: earlier sessions of this athlete, of any age (0: no history, no overload rules)
    sessions_before: int = 0
    days_since_last: float | None = None
    #: longest single run of the last 30 days (zero load when there was none)
    longest_30d: Load = Load()
    last_7d: Load = Load()
    previous_7d: Load = Load()
    #: mean weekly load of days 8-28 before the start
    chronic_week: Load = Load()

    @property
    def has_history(self) -> bool:
        return self.sessions_before > 0


def build_context(
    athlete: str, start_epoch_s: float, sessions: Sequence[PastSession]
) -> TrainingContext:
    """The context for a session starting at ``start_epoch_s`` from earlier sessions.

    Sessions at or after the start are ignored, so replaying old recordings in any
    order gives each one the context it had on its own day.
    """
    before = [s for s in sessions if s.start_epoch_s < start_epoch_s]
    if not before:
        return TrainingContext(athlete, start_epoch_s)

    def within(lo_days: float, hi_days: float) -> list[PastSession]:
        lo, hi = start_epoch_s - hi_days * DAY_S, start_epoch_s - lo_days * DAY_S
        return [s for s in before if lo <= s.start_epoch_s < hi]

    last_30 = within(0, 30)
    longest = Load(
        running_s=max((s.running_s for s in last_30), default=0.0),
        distance_m=_max_distance(last_30),
    )
    chronic = _sum_load(within(7, 28))
    return TrainingContext(
        athlete=athlete,
        start_epoch_s=start_epoch_s,
        sessions_before=len(before),
        days_since_last=(start_epoch_s - max(s.start_epoch_s for s in before)) / DAY_S,
        longest_30d=longest,
        last_7d=_sum_load(within(0, 7)),
        previous_7d=_sum_load(within(7, 14)),
        chronic_week=Load(
            chronic.running_s / 3.0,
            None if chronic.distance_m is None else chronic.distance_m / 3.0,
        ),
    )


def _sum_load(sessions: Sequence[PastSession]) -> Load:
    distances = [s.distance_m for s in sessions]
    return Load(
        running_s=sum(s.running_s for s in sessions),
        # one session without a distance makes the distance total unknown, not smaller
        distance_m=None if any(d is None for d in distances) else sum(d or 0.0 for d in distances),
    )


def _max_distance(sessions: Sequence[PastSession]) -> float | None:
    if any(s.distance_m is None for s in sessions):
        return None
    return max((s.distance_m or 0.0 for s in sessions), default=0.0)


def acwr(acute: float | None, chronic_week: float | None) -> float | None:
    """Uncoupled acute:chronic workload ratio (secondary figure only, see docs)."""
    if acute is None or chronic_week is None or chronic_week <= 0:
        return None
    return acute / chronic_week


def pct_over(value: float | None, reference: float | None) -> float | None:
    """How much ``value`` exceeds ``reference``, in percent (None without a reference)."""
    if value is None or reference is None or reference <= 0:
        return None
    return 100.0 * (value / reference - 1.0)


def fmt_load(value: float, unit: Unit) -> str:
    """A load as a runner reads it: "12.4 km" or "1 h 05 min" / "52 min"."""
    if unit == "distance":
        return f"{value / 1000.0:.1f} km"
    minutes = round(value / 60.0)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min"
