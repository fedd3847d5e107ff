"""Alert rules on synthetic step streams: hysteresis, cooldown, speed correction,
cadence collapse, across-run overload, snapshot/restore, and the asymmetry maths."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from pipeline.asymmetry import (
    WindowedAsymmetry,
    gct_balance_left_pct,
    gct_balance_zone,
    symmetry_index_pct,
)
from pipeline.records import Alert, StepRecord
from pipeline.stages.alerts import AlertConfig, AlertStage, AsymmetryRule, Levels
from pipeline.training import DAY_S, Load, PastSession, TrainingContext, build_context

Params = Callable[[float], dict[str, Any]]


def steps(duration_s: float, params: Params, t0_s: float = 0.0) -> Iterator[StepRecord]:
    """Alternating steps; ``params(t)`` gives cadence_spm, contact per side, etc."""
    t, i = t0_s, 0
    while t < t0_s + duration_s:
        p = params(t)
        side = "left" if i % 2 == 0 else "right"
        step_ms = 60000.0 / p.get("cadence_spm", 170.0)
        contact = p.get(f"contact_{side}", p.get("contact_ms", 250.0))
        yield StepRecord(
            side=side,
            ic_s=t,
            to_s=t + contact / 1000.0,
            contact_ms=contact,
            step_ms=step_ms if i else None,
            cadence_spm=60000.0 / step_ms if i else None,
            pelvic_drop_deg=p.get(f"drop_{side}", p.get("drop_deg", 5.0)),
            impact_peak_g=p.get("impact_g", 10.0),
            speed_mps=p.get("speed_mps"),
            stride_length_m=p.get("stride_length_m"),
            gait=p.get("gait", "run"),
            index=i,
        )
        t += step_ms / 1000.0
        i += 1


#: only the hip-drop threshold rule: one side's hip drop also makes an asymmetry
HIP_ONLY = AlertConfig(asymmetry=AsymmetryRule(enabled=False))


def run(stage: AlertStage, stream: Iterator[StepRecord]) -> list[Alert]:
    out: list[Alert] = []
    for s in stream:
        out.extend(stage.push(s))
    out.extend(stage.flush())
    return out


def rules(alerts: list[Alert]) -> list[tuple[str, str, str | None, str]]:
    return [(a.rule, a.metric, a.side, a.level) for a in alerts]


# -- maths ------------------------------------------------------------------------
def test_symmetry_index_and_gct_balance() -> None:
    assert symmetry_index_pct(110.0, 90.0) == pytest.approx(20.0)
    assert symmetry_index_pct(None, 1.0) is None
    assert gct_balance_left_pct(235.0, 275.0) == pytest.approx(46.078, abs=1e-3)
    assert gct_balance_zone(50.7) == ("balanced", "left")
    assert gct_balance_zone(49.0) == ("moderate", "right")
    assert gct_balance_zone(52.3) == ("notable", "left")
    assert gct_balance_zone(50.0) == ("balanced", None)


def test_windowed_asymmetry_stays_bounded_and_covers_the_run() -> None:
    w = WindowedAsymmetry(window_s=10.0, max_windows=8)
    for s in steps(400.0, lambda t: {"contact_left": 240.0, "contact_right": 260.0}):
        w.add(s)
    windows = w.windows()
    assert len(windows) <= 9  # closed ones never exceed max_windows, plus the open one
    assert w.window_s == 80.0  # 10 s doubled three times
    assert windows[0]["t0_s"] == 0.0 and windows[-1]["t1_s"] >= 400.0
    assert sum(x["steps"] for x in windows) == len(list(steps(400.0, lambda t: {})))
    for x in windows:
        assert x["gct_balance_left_pct"] == pytest.approx(48.0)


def test_levels_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="release < warning <= critical"):
        Levels(warning=5.0, critical=10.0, release=6.0)


# -- hysteresis, sustain, cooldown -------------------------------------------------
def test_hip_drop_flapping_around_threshold_alerts_once() -> None:
    # the right hip drop flaps between 7.4 deg (40 s) and 6.8 deg (20 s): across the
    # 7 deg warning, never below the 6.5 deg release, so one episode and one alert
    def p(t: float) -> dict[str, Any]:
        return {"drop_right": 7.4 if t % 60 < 40 else 6.8}

    alerts = run(AlertStage(HIP_ONLY), steps(600.0, p))
    assert rules(alerts) == [("hip_drop_high", "pelvic_drop_deg", "right", "warning")]
    assert 30.0 <= alerts[0].time_s < 40.0  # 20 steps (~14 s) to fill + 20 s sustained


def test_new_episode_waits_for_the_cooldown() -> None:
    # high 0-60 s, normal 60-120 s (episode ends), high again from 120 s
    def p(t: float) -> dict[str, Any]:
        return {"drop_left": 8.0 if t < 60 or t >= 120 else 5.0}

    alerts = run(AlertStage(HIP_ONLY), steps(600.0, p))
    times = [a.time_s for a in alerts]
    assert len(times) == 2
    assert times[1] - times[0] >= 300.0  # not at ~150 s: the default cooldown is 300 s
    shorter = replace(HIP_ONLY, cooldown_s=60.0)
    times = [a.time_s for a in run(AlertStage(shorter), steps(600.0, p))]
    assert len(times) == 2 and 120.0 < times[1] < 180.0


def test_escalation_fires_once_at_once() -> None:
    def p(t: float) -> dict[str, Any]:
        return {"drop_right": 8.0 if t < 100 else 11.0}

    alerts = run(AlertStage(HIP_ONLY), steps(400.0, p))
    assert [a.level for a in alerts] == ["warning", "critical"]
    assert alerts[1].threshold == 10.0 and 120.0 <= alerts[1].time_s < 140.0


def test_disabled_config_is_silent() -> None:
    p: Params = lambda t: {"drop_right": 12.0}  # noqa: E731
    assert run(AlertStage(AlertConfig(enabled=False)), steps(200.0, p)) == []


# -- form drift and speed correction --------------------------------------------------
def _slowing(with_speed: bool) -> Params:
    """3.5 m/s, then slowing to 3.0 m/s; contact ~ 1/speed, cadence ~ speed**0.2."""

    def p(t: float) -> dict[str, Any]:
        v = 3.5 if t < 300 else 3.0
        out: dict[str, Any] = {
            "contact_ms": 250.0 * 3.5 / v,
            "cadence_spm": 170.0 * (v / 3.5) ** 0.2,
        }
        if with_speed:
            out["speed_mps"] = v
        return out

    return p


def test_contact_rise_from_slowing_down_is_not_drift_when_speed_is_known() -> None:
    assert run(AlertStage(), steps(600.0, _slowing(with_speed=True))) == []


def test_contact_rise_without_speed_is_drift() -> None:
    alerts = run(AlertStage(), steps(600.0, _slowing(with_speed=False)))
    metrics = {(a.metric, a.side) for a in alerts if a.rule == "form_drift"}
    assert {("contact_change_pct", "left"), ("contact_change_pct", "right")} <= metrics
    contact = next(a for a in alerts if a.metric == "contact_change_pct")
    assert contact.level == "critical" or contact.value >= 5.0
    assert "at the same pace" not in contact.message
    assert contact.time_s > 300.0


def test_drift_with_speed_says_at_the_same_pace() -> None:
    def p(t: float) -> dict[str, Any]:
        return {"contact_ms": 250.0 if t < 300 else 280.0, "speed_mps": 3.3}

    alerts = run(AlertStage(), steps(600.0, p))
    contact = [a for a in alerts if a.metric == "contact_change_pct"]
    assert contact and "at the same pace" in contact[0].message
    assert contact[0].value == pytest.approx(12.0, abs=0.5)


def test_baseline_skips_the_settle_minute() -> None:
    # a runner who starts with short contacts in the first minute (settle) and keeps
    # 260 ms after: no drift, because the baseline starts after the first minute
    def p(t: float) -> dict[str, Any]:
        return {"contact_ms": 220.0 if t < 60 else 260.0}

    assert [a for a in run(AlertStage(), steps(600.0, p)) if a.rule == "form_drift"] == []


# -- cadence collapse ---------------------------------------------------------------
def test_sudden_cadence_fall_is_a_collapse() -> None:
    def p(t: float) -> dict[str, Any]:
        return {"cadence_spm": 170.0 if t < 120 else 145.0}

    alerts = [a for a in run(AlertStage(), steps(200.0, p)) if a.rule == "cadence_collapse"]
    assert len(alerts) == 1
    a = alerts[0]
    # 145 vs 170 spm: -14.7 %, beyond the 10 % warning, short of the 15 % critical
    assert a.level == "warning" and a.value == pytest.approx(-14.7, abs=0.1)
    assert 120.0 < a.time_s < 135.0  # within seconds
    assert "145" in a.message and "170" in a.message


def test_deeper_collapse_escalates() -> None:
    def p(t: float) -> dict[str, Any]:
        return {"cadence_spm": 170.0 if t < 120 else 135.0}

    alerts = [a for a in run(AlertStage(), steps(200.0, p)) if a.rule == "cadence_collapse"]
    assert [a.level for a in alerts] == ["warning", "critical"]


def test_walking_break_is_not_a_collapse() -> None:
    def p(t: float) -> dict[str, Any]:
        walking = 120 <= t < 180
        return {"cadence_spm": 110.0 if walking else 170.0, "gait": "walk" if walking else "run"}

    assert run(AlertStage(), steps(300.0, p)) == []


# -- across-run overload ----------------------------------------------------------------
START = 1_750_000_000.0


def _ctx(sessions: list[tuple[float, float, float | None]]) -> TrainingContext:
    """Sessions as (days before START, running_s, distance_m)."""
    past = [PastSession(START - d * DAY_S, r, m) for d, r, m in sessions]
    return build_context("anna", START, past)


def test_training_context_windows() -> None:
    ctx = _ctx(
        [(2, 1800, None), (5, 2400, None), (10, 1200, None), (20, 3000, None), (40, 9000, None)]
    )
    assert ctx.sessions_before == 5 and ctx.days_since_last == pytest.approx(2.0)
    assert ctx.longest_30d == Load(3000.0, None)  # 9000 s is 40 days old
    assert ctx.last_7d.running_s == 4200.0 and ctx.last_7d.distance_m is None
    assert ctx.previous_7d.running_s == 1200.0
    assert ctx.chronic_week.running_s == pytest.approx((1200.0 + 3000.0) / 3.0)
    later = build_context("anna", START - 3 * DAY_S, [PastSession(START - 2 * DAY_S, 60.0)])
    assert later.sessions_before == 0  # sessions after the start never count


def _overload(ctx: TrainingContext, duration_s: float, stride_m: float | None = None):
    stage = AlertStage(AlertConfig(training=ctx))
    return run(stage, steps(duration_s, lambda t: {"stride_length_m": stride_m}, t0_s=5.0))


def test_single_run_spike_fires_when_the_run_passes_110_percent() -> None:
    ctx = _ctx([(3, 100.0, None), (10, 80.0, None)])
    alerts = _overload(ctx, 150.0)
    spike = [a for a in alerts if a.rule == "single_run_spike"]
    assert [a.level for a in spike] == ["warning"]
    # the run starts at 5 s: 110 s of running is reached at 115 s
    assert spike[0].time_s == pytest.approx(115.0, abs=0.5)
    assert "longest of the last 30 days (2 min)" in spike[0].message
    critical = [a for a in _overload(ctx, 260.0) if a.rule == "single_run_spike"]
    assert [a.level for a in critical] == ["warning", "critical"]


def test_single_run_spike_uses_distance_when_known() -> None:
    # 1 m strides: distance = steps / 2 m; longest 30 d: 100 m -> limit 110 m = 220 steps
    ctx = _ctx([(3, 1000.0, 100.0)])
    spike = [a for a in _overload(ctx, 120.0, stride_m=1.0) if a.rule == "single_run_spike"]
    assert len(spike) == 1 and "0.1 km" in spike[0].message
    assert spike[0].time_s == pytest.approx(5.0 + 221 * 60.0 / 170.0, abs=1.0)


def test_weekly_volume_spike_at_start_or_during() -> None:
    already = _ctx([(1, 1000.0, None), (3, 1000.0, None), (9, 1000.0, None)])
    alerts = _overload(already, 30.0)
    assert [(a.rule, a.time_s) for a in alerts] == [("weekly_volume_spike", 5.0)]
    assert "already run 33 min in the last 7 days, 100% more" in alerts[0].message
    during = _ctx([(2, 600.0, None), (9, 600.0, None)])
    weekly = [a for a in _overload(during, 300.0) if a.rule == "weekly_volume_spike"]
    # last 7 days 600 s + this run > 1.3 x 600 s once this run passes 180 s
    assert len(weekly) == 1 and weekly[0].time_s == pytest.approx(185.0, abs=0.5)


def test_return_after_break_and_no_history() -> None:
    alerts = _overload(_ctx([(45, 3000.0, None)]), 60.0)
    assert rules(alerts) == [("return_after_break", "days_since_last_run", None, "warning")]
    assert alerts[0].value == pytest.approx(45.0) and "First run in 45 days" in alerts[0].message
    assert _overload(_ctx([]), 600.0) == []


# -- stage contract ------------------------------------------------------------------
def test_snapshot_restore_resumes_exactly() -> None:
    def p(t: float) -> dict[str, Any]:
        return {
            "drop_right": 5.0 + max(0.0, t - 300.0) / 60.0,
            "contact_right": 250.0 + max(0.0, t - 300.0) / 5.0,
            "cadence_spm": 170.0 if t < 500 else 140.0,
            "speed_mps": 3.3,
        }

    cfg = AlertConfig(training=_ctx([(3, 400.0, None)]))
    stream = list(steps(660.0, p))
    whole = run(AlertStage(cfg), iter(stream))
    assert len({a.rule for a in whole}) >= 3
    first = AlertStage(cfg)
    cut = len(stream) // 2
    out = [a for s in stream[:cut] for a in first.push(s)]
    state = pickle.loads(pickle.dumps(first.snapshot()))
    resumed = AlertStage(cfg)
    resumed.restore(state)
    out += run(resumed, iter(stream[cut:]))
    assert out == whole


def test_alert_values_are_finite_and_json_ready() -> None:
    p: Params = lambda t: {"drop_right": 9.0, "contact_right": 290.0}  # noqa: E731
    for a in run(AlertStage(), steps(120.0, p)):
        d = a.as_dict()
        assert d["kind"] == "alert" and math.isfinite(d["value"]) and d["message"]
        assert replace(a, message="x").message == "x"  # frozen dataclass, usable as a record
