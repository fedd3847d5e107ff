"""The simulator's walking segments and turns: physics and truth, checked the way a
detector sees them (integrating the signals must give the truth)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sensors.model import GRAVITY_MPS2 as G
from sensors.simulator import SimConfig, Simulation, simulate
from tests.helpers import rot_zyx

QUIET = {"mounting": "aligned", "acc_noise_mps2": 0.0, "gyr_noise_dps": 0.0, "gyr_bias_dps": 0.0}


@pytest.fixture(scope="module")
def walk_sim() -> Simulation:
    return simulate(
        SimConfig(
            duration_s=40.0,
            segments=((12.0, "run"), (16.0, "walk"), (12.0, "run")),
            turn_every_s=9.0,
            turn_deg=90.0,
            turn_s=3.0,
            standing_s=2.0,
            seed=5,
            **QUIET,  # type: ignore[arg-type]
        )
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"segments": ((10.0, "run"), (10.0, "walk"))}, "first and last"),
        ({"segments": ((10.0, "run"), (4.0, "walk"), (5.0, "run"))}, "add up"),
        ({"segments": ((10.0, "run"), (5.0, "jog"), (5.0, "run"))}, "run' | 'walk"),
        ({"walk_contact_ms": 400.0}, "double support"),
        ({"turn_every_s": 2.0, "turn_s": 3.0}, "turn_s"),
    ],
)
def test_bad_segment_and_turn_settings_are_clear_errors(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimConfig(duration_s=20.0, **kw)


def test_walking_steps_have_double_support_and_no_flight(walk_sim: Simulation) -> None:
    walk = [r for r in walk_sim.truth if r["gait"] == "walk"]
    run = [r for r in walk_sim.truth if r["gait"] == "run"]
    assert len(walk) > 20 and len(run) > 40
    assert all(r["flight_ms"] is None for r in walk)
    inner = walk[2:-2]
    assert all(r["contact_ms"] > r["step_ms"] for r in inner)  # both feet down at times
    assert np.median([r["cadence_spm"] for r in inner]) == pytest.approx(110, rel=0.03)
    assert np.median([r["speed_mps"] for r in inner]) == pytest.approx(1.4)
    # walking moves the trunk less than running, but visibly (a few cm)
    vo_walk = np.median([r["vertical_oscillation_cm"] for r in inner])
    vo_run = np.median([r["vertical_oscillation_cm"] for r in run[5:-5]])
    assert 2.0 < vo_walk < vo_run


def _world(sim: Simulation, placement: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Specific force and angular rate rotated into the world frame with the truth."""
    acc, gyr = sim.segment_signals(placement, t)
    r = rot_zyx(sim.segment_euler_deg(placement, t))
    return np.einsum("nij,nj->ni", r, acc), np.einsum("nij,nj->ni", r, np.radians(gyr))


def test_walking_trunk_force_averages_g_and_never_flies(walk_sim: Simulation) -> None:
    walk = [r for r in walk_sim.truth if r["gait"] == "walk"][2:-2]
    t = np.arange(walk[0]["ic_s"], walk[-1]["ic_s"], 1 / 1000.0)
    f, _ = _world(walk_sim, "pelvis", t)
    assert f[:, 2].mean() == pytest.approx(G, rel=0.02)  # impulse: body weight
    assert f[:, 2].min() > 0.4 * G  # no flight


def test_turns_show_in_the_gyro_and_the_heading(walk_sim: Simulation) -> None:
    t = np.arange(0.0, walk_sim.config.total_s, 1 / 1000.0)
    _, w = _world(walk_sim, "pelvis", t)
    heading_deg = math.degrees(float(np.sum(w[:, 2]) / 1000.0))
    n_turns = int(walk_sim.meta["config"]["duration_s"] // 9.0)
    assert heading_deg == pytest.approx(90.0 * n_turns, abs=0.5)
    assert walk_sim.segment_euler_deg("left_foot", t[-1:])[0, 2] == pytest.approx(
        90.0 * n_turns, abs=1e-6
    )


def test_stride_length_truth_is_the_heel_displacement_in_walking_and_turns(
    walk_sim: Simulation,
) -> None:
    """Strapdown with the true attitude between two foot-flat instants."""
    left = [r for r in walk_sim.truth if r["side"] == "left"]
    fs = 2000.0
    checked = 0
    for a, b in itertools.pairwise(left[5:-4]):
        t_a = a["ic_s"] + 0.3 * a["contact_ms"] / 1000
        t_b = b["ic_s"] + 0.3 * b["contact_ms"] / 1000
        t = np.arange(t_a, t_b, 1 / fs)
        f, _ = _world(walk_sim, "left_foot", t)
        f[:, 2] -= G
        v = np.cumsum(f, axis=0) / fs
        p = np.cumsum(v, axis=0) / fs
        # still again, but for the turn: the foot yaws about its heel while on the
        # ground (30 deg/s x 12 cm lever = 6 cm/s), as a real foot does in a curve
        assert np.abs(v[-1]).max() < 0.08
        # the sensor sits 12 cm in front of the heel: a turn shifts it sideways a little
        assert float(np.linalg.norm(p[-1, :2])) == pytest.approx(b["stride_length_m"], abs=0.03)
        checked += 1
    assert checked > 10
