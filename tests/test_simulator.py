"""The simulated runner: physics, truth, sampling, loss and the ``simulate`` command.

Physics is checked the way a detector would see it: integrating the simulated gyro
must give the truth orientation, integrating the accelerations must give the truth
vertical oscillation and stride length, and so on.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from sensors.model import GRAVITY_MPS2 as G
from sensors.model import Chunk
from sensors.simulator import TRUTH_COLUMNS, SimConfig, Simulation, simulate, write_simulation
from tests.helpers import rot_zyx

QUIET = {"mounting": "aligned", "acc_noise_mps2": 0.0, "gyr_noise_dps": 0.0, "gyr_bias_dps": 0.0}


def quiet(**kw: object) -> SimConfig:
    return SimConfig(**{**QUIET, **kw})  # type: ignore[arg-type]


def collect(sim: Simulation) -> dict[str, Chunk]:
    per: dict[str, list[Chunk]] = {}
    for ch in sim.chunks():
        per.setdefault(ch.placement, []).append(ch)
    return {p: Chunk.concat(cs) for p, cs in per.items()}


def integrate_gyro(r0: np.ndarray, gyr_dps: np.ndarray, dt: float) -> np.ndarray:
    """Strapdown attitude: trapezoidal rotation vector with a coning correction."""
    w = np.radians(gyr_dps)
    out = np.empty((len(w), 3, 3))
    r = r0.copy()
    out[0] = r
    for k in range(len(w) - 1):
        v = (w[k] + w[k + 1]) * dt / 2 + np.cross(w[k], w[k + 1]) * dt * dt / 12
        a = math.sqrt(v @ v)
        if a > 0:
            kx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]]) / a
            r = r @ (np.eye(3) + math.sin(a) * kx + (1 - math.cos(a)) * kx @ kx)
        out[k + 1] = r
    return out


def roll_deg(r: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(r[:, 2, 1], r[:, 2, 2]))


@pytest.fixture(scope="module")
def default_sim() -> Simulation:
    return simulate(SimConfig())


@pytest.fixture(scope="module")
def default_data(default_sim: Simulation) -> dict[str, Chunk]:
    return collect(default_sim)


# --- steps and truth -----------------------------------------------------------------
def test_step_count_follows_duration_and_cadence(default_sim: Simulation) -> None:
    truth = default_sim.truth
    expected = 120 * 170 / 60
    # Start from standing and come to a stand again: a few steps go to launch and landing.
    assert expected - 6 <= len(truth) <= expected
    assert [r["side"] for r in truth[:4]] == ["left", "right", "left", "right"]
    assert all(a["side"] != b["side"] for a, b in itertools.pairwise(truth))
    assert list(truth[0]) == list(TRUTH_COLUMNS)


def test_first_side_right_mirrors_the_run() -> None:
    sim = simulate(quiet(duration_s=10, first_side="right", hip_drop_deg=(4.0, 7.0)))
    assert [r["side"] for r in sim.truth[:3]] == ["right", "left", "right"]
    t = np.linspace(sim.truth[0]["ic_s"], sim.truth[0]["to_s"], 2001)
    roll = sim.segment_euler_deg("pelvis", t)[:, 0]
    assert roll.min() == pytest.approx(-7.0, abs=1e-6)  # right stance: the left side drops


def test_truth_times_match_config_per_side() -> None:
    sim = simulate(quiet(duration_s=30, contact_ms=(280.0, 240.0), step_cv=0.0))
    step_ms = 60000 / 170
    for i, r in enumerate(sim.truth):
        contact = 280.0 if r["side"] == "left" else 240.0
        assert r["contact_ms"] == pytest.approx(contact, abs=1e-6)
        assert r["to_s"] - r["ic_s"] == pytest.approx(contact / 1000, abs=1e-9)
        if i == 0:
            assert r["step_ms"] is r["flight_ms"] is r["cadence_spm"] is None
            continue
        prev = sim.truth[i - 1]
        assert r["step_ms"] == pytest.approx(step_ms, abs=1e-6)
        assert r["cadence_spm"] == pytest.approx(170.0, abs=1e-6)
        assert r["flight_ms"] == pytest.approx(step_ms - prev["contact_ms"], abs=1e-6)
        if i >= 2:
            assert r["stride_ms"] == pytest.approx(2 * step_ms, abs=1e-6)
            assert r["duty_factor"] == pytest.approx(contact / (2 * step_ms), abs=1e-9)
            assert r["stride_length_m"] == pytest.approx(3.3 * 2 * step_ms / 1000, abs=1e-9)


def test_step_variability_has_the_requested_spread() -> None:
    truth = simulate(quiet(duration_s=300, step_cv=0.03)).truth
    contact = np.array([r["contact_ms"] for r in truth if r["side"] == "right"])
    step = np.array([r["step_ms"] for r in truth[1:]])
    assert np.mean(contact) == pytest.approx(250, rel=0.01)
    assert np.std(contact) / 250 == pytest.approx(0.03, rel=0.2)
    assert np.std(step) / np.mean(step) == pytest.approx(0.03, rel=0.2)


def test_drift_is_linear_from_its_start_to_the_end() -> None:
    cfg = quiet(
        duration_s=100,
        standing_s=5,
        drift_start_s=20,
        step_cv=0.0,
        contact_drift_ms=(40.0, 0.0),
        hip_drop_drift_deg=(3.0, -1.0),
        cadence_drift_spm=10.0,
    )
    truth = simulate(cfg).truth
    for r in truth:
        frac = min(max((r["ic_s"] - 5 - 20) / 80, 0.0), 1.0)
        left = r["side"] == "left"
        assert r["contact_ms"] == pytest.approx(250 + (40 * frac if left else 0), abs=1e-6)
        assert r["pelvic_drop_deg"] == pytest.approx(5 + (3 * frac if left else -frac), abs=1e-9)
    # Step time is set at each IC: step k's step_ms came from cadence at IC k-1.
    for prev, r in itertools.pairwise(truth):
        frac = min(max((prev["ic_s"] - 25) / 80, 0.0), 1.0)
        assert r["cadence_spm"] == pytest.approx(170 + 10 * frac, abs=1e-6)
    assert truth[-1]["contact_ms"] > 285 or truth[-2]["contact_ms"] > 285


def test_impossible_gait_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="flight time would be negative"):
        SimConfig(contact_ms=(400.0, 250.0))  # 400 ms > 353 ms step at 170 spm
    with pytest.raises(ValueError, match=r"right contact .* longer than the step"):
        SimConfig(contact_drift_ms=(0.0, 150.0))  # only the drift makes it impossible
    with pytest.raises(ValueError, match="loss_pct"):
        SimConfig(loss_pct=90)
    with pytest.raises(ValueError, match="unknown sensor placement"):
        SimConfig(sensors=("pelvis", "wrist"))
    with pytest.raises(ValueError, match="not a rotation"):
        SimConfig(mounting={"pelvis": np.diag([1.0, 1.0, -1.0])})


# --- pelvis physics ------------------------------------------------------------------
def pelvis_world(sim: Simulation, t: np.ndarray) -> np.ndarray:
    acc, _ = sim.segment_signals("pelvis", t)
    return np.einsum("nij,nj->ni", rot_zyx(sim.segment_euler_deg("pelvis", t)), acc)


def test_pelvis_mean_specific_force_over_strides_is_gravity() -> None:
    sim = simulate(quiet(duration_s=20))
    data = collect(sim)["pelvis"]
    truth = sim.truth
    t0, t1 = truth[2]["ic_s"], truth[2 + 2 * 20]["ic_s"]  # 20 whole strides
    sel = (data.t_s >= t0) & (data.t_s < t1)
    world = np.einsum(
        "nij,nj->ni", rot_zyx(sim.segment_euler_deg("pelvis", data.t_s[sel])), data.acc_mps2[sel]
    )
    assert world.mean(axis=0) == pytest.approx([0.0, 0.0, G], abs=0.002 * G)
    assert np.linalg.norm(data.acc_mps2[sel], axis=1).mean() == pytest.approx(G, rel=0.05)
    # Exactly, in continuous time: the stance impulse equals body weight x step time.
    # (Equal steps: with step-to-step variability the medio-lateral pushes of the two
    # sides do not cancel exactly within a stride.)
    sim = simulate(quiet(duration_s=20, step_cv=0.0))
    t0, t1 = sim.truth[2]["ic_s"], sim.truth[2 + 2 * 20]["ic_s"]
    t = np.linspace(t0, t1, 400_001)[:-1]
    assert pelvis_world(sim, t).mean(axis=0) == pytest.approx([0, 0, G], abs=1e-5 * G)


def test_pelvis_reads_zero_in_flight_and_more_than_g_mid_stance(
    default_sim: Simulation, default_data: dict[str, Chunk]
) -> None:
    d = default_data["pelvis"]
    norm = np.linalg.norm(d.acc_mps2, axis=1)
    flight = np.zeros(len(d), bool)
    mid = np.zeros(len(d), bool)
    for prev, r in itertools.pairwise(default_sim.truth):
        flight |= (d.t_s > prev["to_s"] + 0.002) & (d.t_s < r["ic_s"] - 0.002)
        c = r["to_s"] - r["ic_s"]
        mid |= (d.t_s > r["ic_s"] + 0.4 * c) & (d.t_s < r["ic_s"] + 0.6 * c)
    assert flight.sum() > 1000 and mid.sum() > 1000
    assert norm[flight].max() < 6 * 0.05  # only noise (0.05 m/s^2 per axis)
    assert norm[mid].min() > 1.5 * G


def test_integrated_pelvis_gyro_reproduces_truth_roll() -> None:
    sim = simulate(quiet(duration_s=20, fs_hz=1000, standing_s=1, standing_end_s=1))
    d = collect(sim)["pelvis"]
    r0 = rot_zyx(sim.segment_euler_deg("pelvis", d.t_s[:1]))[0]
    assert d.gyr_dps is not None
    r = integrate_gyro(r0, d.gyr_dps, 1 / 1000)
    truth_roll = sim.segment_euler_deg("pelvis", d.t_s)[:, 0]
    assert np.abs(roll_deg(r) - truth_roll).max() < 0.1
    for step in sim.truth:
        stance = (d.t_s >= step["ic_s"]) & (d.t_s <= step["to_s"])
        sign = 1 if step["side"] == "left" else -1  # left stance drops the right side
        assert (sign * roll_deg(r[stance])).max() == pytest.approx(step["pelvic_drop_deg"], abs=0.1)


def test_truth_vertical_oscillation_is_the_double_integrated_pelvis() -> None:
    sim = simulate(quiet(duration_s=8, step_cv=0.03, contact_ms=(230.0, 270.0)))
    for r, nxt in zip(sim.truth[:6], sim.truth[1:7], strict=True):
        t = np.linspace(r["ic_s"], nxt["ic_s"], 8001)
        az = pelvis_world(sim, t)[:, 2] - G
        dt = t[1] - t[0]
        v = np.concatenate([[0], np.cumsum((az[1:] + az[:-1]) * dt / 2)])
        z = np.concatenate([[0], np.cumsum((v[1:] + v[:-1]) * dt / 2)])
        z -= (t - t[0]) * z[-1] / (t[-1] - t[0])  # back to the same height at the next IC
        assert (z.max() - z.min()) * 100 == pytest.approx(r["vertical_oscillation_cm"], abs=0.01)
        assert 5 < r["vertical_oscillation_cm"] < 12  # typical distance-running values


# --- shoe physics ----------------------------------------------------------------------
def test_shoe_is_still_in_mid_stance(
    default_sim: Simulation, default_data: dict[str, Chunk]
) -> None:
    for side in ("left", "right"):
        d = default_data[f"{side}_foot"]
        mid = np.zeros(len(d), bool)
        for r in default_sim.truth:
            if r["side"] == side:
                c = r["to_s"] - r["ic_s"]
                mid |= (d.t_s > r["ic_s"] + 0.25 * c) & (d.t_s < r["ic_s"] + 0.45 * c)
        assert mid.sum() > 500
        assert d.gyr_dps is not None
        assert np.linalg.norm(d.gyr_dps[mid], axis=1).max() < 5  # bias 0.5 + noise 0.5 dps
        assert np.linalg.norm(d.acc_mps2[mid], axis=1) == pytest.approx(G, abs=0.3)
        ideal_acc, ideal_gyr = default_sim.segment_signals(f"{side}_foot", d.t_s[mid])
        assert np.abs(ideal_gyr).max() == 0.0
        assert np.abs(ideal_acc - [0, 0, G]).max() < 1e-9


def test_shoe_strapdown_between_flat_phases_gives_the_stride() -> None:
    """Zero-velocity-aided integration, as a shoe-IMU stride estimator would do it."""
    sim = simulate(quiet(duration_s=6, fs_hz=1000, standing_s=0.5, step_cv=0.02))
    d = collect(sim)["left_foot"]
    assert d.gyr_dps is not None
    r = integrate_gyro(np.eye(3), d.gyr_dps, 1e-3)  # flat and still at t = 0
    a = np.einsum("nij,nj->ni", r, d.acc_mps2) - [0, 0, G]
    lefts = [s for s in sim.truth if s["side"] == "left"]
    for prev, nxt in itertools.pairwise(lefts):
        i0 = np.searchsorted(d.t_s, prev["ic_s"] + 0.3 * (prev["to_s"] - prev["ic_s"]))
        i1 = np.searchsorted(d.t_s, nxt["ic_s"] + 0.3 * (nxt["to_s"] - nxt["ic_s"]))
        seg = a[i0 : i1 + 1]
        v = np.concatenate([[[0, 0, 0]], np.cumsum((seg[1:] + seg[:-1]) * 1e-3 / 2, axis=0)])
        p = np.concatenate([[[0, 0, 0]], np.cumsum((v[1:] + v[:-1]) * 1e-3 / 2, axis=0)])
        assert np.abs(v[-1]).max() < 0.01  # still again at the next flat foot
        assert p[-1, 0] == pytest.approx(nxt["stride_length_m"], abs=0.003)
        assert abs(p[-1, 1]) < 0.003 and abs(p[-1, 2]) < 0.003
        assert 0.25 < p[:, 2].max() < 0.35  # the shoe lifts in swing


def test_shoe_pitch_profile_and_impact() -> None:
    sim = simulate(quiet(duration_s=6, fs_hz=1000, step_cv=0.0))
    step = sim.truth[4]
    side = f"{step['side']}_foot"
    ic, to = step["ic_s"], step["to_s"]
    pitch = -sim.segment_euler_deg(side, np.array([ic, to]))[:, 1]  # toes up positive
    assert pitch == pytest.approx([12.0, -35.0])
    t = np.arange(to - 0.02, to + 0.02, 1e-3)
    _, gyr = sim.segment_signals(side, t)
    assert gyr[:, 1].min() > 300  # toes rotating down fast: +y rate (pitch rate < 0)
    acc, _ = sim.segment_signals(side, np.arange(ic, ic + 0.03, 1e-4))
    assert np.linalg.norm(acc - [0, 0, G], axis=1).max() > 3 * G  # impact of several g


# --- sensors and sampling ------------------------------------------------------------
def test_random_mounting_preserves_magnitudes_sample_by_sample() -> None:
    common = {"duration_s": 10, "acc_noise_mps2": 0.0, "gyr_noise_dps": 0.0, "gyr_bias_dps": 0.0}
    aligned = collect(simulate(SimConfig(mounting="aligned", **common)))  # type: ignore[arg-type]
    rand_sim = simulate(SimConfig(mounting="random", **common))  # type: ignore[arg-type]
    rand = collect(rand_sim)
    for p, a in aligned.items():
        b = rand[p]
        m = rand_sim.mounting[p]
        assert m @ m.T == pytest.approx(np.eye(3), abs=1e-12)
        assert np.abs(m - np.eye(3)).max() > 0.1
        assert np.array_equal(a.t_s, b.t_s)
        na, nb = np.linalg.norm(a.acc_mps2, axis=1), np.linalg.norm(b.acc_mps2, axis=1)
        np.testing.assert_allclose(na, nb, rtol=1e-12, atol=1e-12)
        assert a.gyr_dps is not None and b.gyr_dps is not None
        np.testing.assert_allclose(
            np.linalg.norm(a.gyr_dps, axis=1), np.linalg.norm(b.gyr_dps, axis=1), atol=1e-10
        )
        # and it is the documented rotation: sensor = M^T segment
        np.testing.assert_allclose(b.acc_mps2, a.acc_mps2 @ m, atol=1e-12)


def test_explicit_mounting_matrix_is_used() -> None:
    # Columns of M are the sensor axes in the segment frame: sensor x = segment y,
    # sensor y = segment -x.
    m = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    sim = simulate(quiet(duration_s=5, mounting={"pelvis": m}))
    assert np.array_equal(sim.mounting["pelvis"], m)
    assert np.array_equal(sim.mounting["left_foot"], np.eye(3))
    t = np.linspace(1.0, 3.0, 500)
    seg_acc, seg_gyr = sim.segment_signals("pelvis", t)
    acc, gyr = sim.ideal_signals("pelvis", t)
    assert gyr is not None
    np.testing.assert_array_equal(acc[:, 0], seg_acc[:, 1])
    np.testing.assert_array_equal(acc[:, 1], -seg_acc[:, 0])
    np.testing.assert_array_equal(gyr[:, 0], seg_gyr[:, 1])


def test_bursty_loss_is_close_to_the_request_and_drops_whole_packets() -> None:
    cfg = SimConfig(duration_s=1000, fs_hz=100, loss_pct=10, sensors=("pelvis",), step_cv=0)
    sim = simulate(cfg)
    d = collect(sim)["pelvis"]
    n = np.rint(d.t_s * 100).astype(int)
    lost = np.setdiff1d(np.arange(sim.n_samples), n)
    achieved = 100 * lost.size / sim.n_samples
    assert achieved == pytest.approx(10, rel=0.2)
    assert sim.achieved_loss_pct["pelvis"] == pytest.approx(achieved, abs=1e-9)
    packets = np.unique(lost // 10)
    assert lost.size == 10 * packets.size  # whole packets only
    bursts = np.split(packets, np.flatnonzero(np.diff(packets) > 1) + 1)
    assert np.mean([len(b) for b in bursts]) == pytest.approx(3.0, rel=0.25)
    assert not np.isnan(d.acc_mps2).any()


def test_chunks_are_deterministic(default_sim: Simulation) -> None:
    first = list(default_sim.chunks())
    again = list(default_sim.chunks())
    fresh = list(simulate(SimConfig()).chunks())
    assert len(first) == len(again) == len(fresh)
    assert all(a.equals(b) and a.equals(c) for a, b, c in zip(first, again, fresh, strict=True))
    other = next(iter(simulate(SimConfig(seed=1)).chunks()))
    assert not other.equals(first[0])


def test_chunks_are_interleaved_seconds_in_time_order(default_sim: Simulation) -> None:
    chunks = list(default_sim.chunks())
    assert [c.placement for c in chunks[:6]] == ["pelvis", "left_foot", "right_foot"] * 2
    for i, c in enumerate(chunks):
        second = i // 3
        assert len(c) == 200
        assert second <= c.t_s[0] and c.t_s[-1] < second + 1
        assert np.all(np.diff(c.t_s) > 0)
    assert len(chunks) == 3 * 120


@pytest.mark.parametrize("fs", [50.0, 1000.0])
def test_low_and_high_sampling_rates(fs: float) -> None:
    sim = simulate(quiet(duration_s=10, fs_hz=fs))
    data = collect(sim)
    for d in data.values():
        assert len(d) == int(10 * fs)
        np.testing.assert_allclose(np.diff(d.t_s), 1 / fs, rtol=1e-9)
    t0, t1 = sim.truth[2]["ic_s"], sim.truth[22]["ic_s"]
    p = data["pelvis"]
    sel = (p.t_s >= t0) & (p.t_s < t1)
    world = np.einsum(
        "nij,nj->ni", rot_zyx(sim.segment_euler_deg("pelvis", p.t_s[sel])), p.acc_mps2[sel]
    )
    assert world[:, 2].mean() == pytest.approx(G, rel=0.03)


def test_noiseless_chunks_are_the_ideal_signals() -> None:
    sim = simulate(SimConfig(duration_s=5, acc_noise_mps2=0, gyr_noise_dps=0, gyr_bias_dps=0))
    for p, d in collect(sim).items():
        acc, gyr = sim.ideal_signals(p, d.t_s)
        assert np.array_equal(acc, d.acc_mps2) and gyr is not None
        assert np.array_equal(gyr, d.gyr_dps)


def test_noise_and_bias_have_the_configured_size() -> None:
    sim = simulate(SimConfig(duration_s=30, standing_s=30, sensors=("pelvis",)))
    d = collect(sim)["pelvis"]
    still = d.t_s < 29
    acc, gyr = sim.ideal_signals("pelvis", d.t_s[still])
    assert d.gyr_dps is not None and gyr is not None
    assert np.std(d.acc_mps2[still] - acc, axis=0) == pytest.approx([0.05] * 3, rel=0.1)
    gerr = d.gyr_dps[still] - gyr
    bias = sim.gyr_bias_dps["pelvis"]
    assert bias is not None and np.all(np.abs(bias) <= 0.5)
    assert gerr.mean(axis=0) == pytest.approx(bias, abs=0.02)
    assert np.std(gerr, axis=0) == pytest.approx([0.5] * 3, rel=0.1)


def test_clock_offset_shifts_only_that_sensor() -> None:
    base = collect(simulate(SimConfig(duration_s=10)))
    shifted = collect(simulate(SimConfig(duration_s=10, clock_offset_s={"left_foot": 0.25})))
    for p in base:
        offset = 0.25 if p == "left_foot" else 0.0
        np.testing.assert_allclose(shifted[p].t_s, base[p].t_s + offset, rtol=0, atol=1e-12)
        assert np.array_equal(shifted[p].acc_mps2, base[p].acc_mps2)


def test_accel_only_sensors_have_no_gyro() -> None:
    cfg = SimConfig(
        duration_s=10,
        sensors=("pelvis", "left_foot", "right_foot", "chest"),
        accel_only=("left_foot",),
    )
    sim = simulate(cfg)
    data = collect(sim)
    assert data["pelvis"].gyr_dps is not None and data["right_foot"].gyr_dps is not None
    assert data["left_foot"].gyr_dps is None and data["chest"].gyr_dps is None
    assert sorted(sim.meta["accel_only"]) == ["chest", "left_foot"]
    # Adding sensors changes nobody else's stream.
    alone = collect(simulate(SimConfig(duration_s=10)))
    assert alone["pelvis"].equals(data["pelvis"])


def test_chest_is_a_smoothed_centre_of_mass() -> None:
    sim = simulate(quiet(duration_s=10, sensors=("pelvis", "chest")))
    data = collect(sim)
    t0, t1 = sim.truth[2]["ic_s"], sim.truth[22]["ic_s"]
    chest = data["chest"].acc_mps2[(data["chest"].t_s >= t0) & (data["chest"].t_s < t1)]
    pelvis = data["pelvis"].acc_mps2[(data["pelvis"].t_s >= t0) & (data["pelvis"].t_s < t1)]
    assert np.linalg.norm(chest.mean(axis=0)) == pytest.approx(G, rel=0.02)
    lean = math.degrees(math.atan2(-chest.mean(axis=0)[0], chest.mean(axis=0)[2]))
    assert lean == pytest.approx(8.0, abs=1.0)  # gravity seen from a forward-leaning trunk
    assert np.abs(np.diff(chest, axis=0)).max() < 0.5 * np.abs(np.diff(pelvis, axis=0)).max()


def test_standing_is_still_with_gravity_only() -> None:
    sim = simulate(quiet(duration_s=10, standing_s=3, standing_end_s=3))
    data = collect(sim)
    first_motion, end = 3.0, sim.meta["last_landing_s"] + 0.2
    for p, d in data.items():
        still = (d.t_s < first_motion) | (d.t_s > end)
        assert still.sum() > 1000
        assert d.gyr_dps is not None and np.abs(d.gyr_dps[still]).max() == 0
        assert np.linalg.norm(d.acc_mps2[still], axis=1) == pytest.approx(G, abs=1e-9)
        assert np.ptp(d.acc_mps2[still], axis=0).max() < 1e-9, p  # one posture throughout
    assert sim.truth[0]["ic_s"] > 3.0 and sim.truth[-1]["ic_s"] < 13.0


def test_meta_is_json_and_complete() -> None:
    sim = simulate(SimConfig(duration_s=10, loss_pct=5, clock_offset_s={"pelvis": -0.1}))
    meta = json.loads(json.dumps(sim.meta))
    assert meta["seed"] == 0 and meta["config"]["loss_pct"] == 5
    assert set(meta["mounting"]) == set(meta["achieved_loss_pct"]) == set(sim.placements)
    assert meta["clock_offset_s"] == {"pelvis": -0.1, "left_foot": 0.0, "right_foot": 0.0}
    assert meta["n_steps"] == len(sim.truth)


# --- files and the command -------------------------------------------------------------
def test_write_simulation_writes_recording_and_truth(tmp_path: Path) -> None:
    from sensors.recording import open_recording

    cfg = SimConfig(duration_s=10, loss_pct=5)
    info = write_simulation(cfg, tmp_path / "run.csv")
    assert info["kind"] == "csv" and info["steps"] == len(simulate(cfg).truth)
    rec = open_recording(tmp_path / "run.csv")
    got = collect_iter(rec.chunks())
    want = collect(simulate(cfg))
    for p in want:
        np.testing.assert_allclose(got[p].t_s, want[p].t_s, atol=1e-6)
    with open(tmp_path / "run.truth.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == TRUTH_COLUMNS and len(rows) == info["steps"]
    assert rows[0]["step_ms"] == "" and float(rows[5]["contact_ms"]) > 0
    meta = json.loads((tmp_path / "run.truth.json").read_text())
    assert meta["achieved_loss_pct"] == info["achieved_loss_pct"]


def collect_iter(chunks: object) -> dict[str, Chunk]:
    per: dict[str, list[Chunk]] = {}
    for ch in chunks:  # type: ignore[attr-defined]
        per.setdefault(ch.placement, []).append(ch)
    return {p: Chunk.concat(cs) for p, cs in per.items()}


def run_cli(argv: list[str]) -> int:
    from pipeline.commands import simulate as command

    parser = argparse.ArgumentParser(prog="hipstride")
    command.register(parser.add_subparsers())
    args = parser.parse_args(["simulate", *argv])
    return int(args.func(args))


def test_simulate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.hsr"
    argv = [str(out), "--duration-s", "8", "--contact-ms", "260", "240", "--noise", "0"]
    argv += ["--clock-offset-ms", "left_foot=20", "--sensors", "pelvis,left_foot", "--seed", "3"]
    assert run_cli(argv) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("simulated ") and "run.truth.csv" in line and "\n" not in line
    from sensors.recording import open_recording

    rec = open_recording(out)
    assert set(rec.placements) == {"pelvis", "left_foot"}
    meta = json.loads((tmp_path / "run.truth.json").read_text())
    assert meta["config"]["contact_ms"] == [260.0, 240.0]
    assert meta["clock_offset_s"]["left_foot"] == pytest.approx(0.02)
    assert meta["config"]["acc_noise_mps2"] == 0.0 and meta["seed"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--contact-ms", "400", "400"], "flight time would be negative"),
        (["--sensors", "pelvis,wrist"], "unknown sensor placement 'wrist'"),
        (["--clock-offset-ms", "pelvis:5"], "PLACEMENT=MS"),
        (["--noise", "-1"], "--noise"),
    ],
)
def test_simulate_command_rejects_bad_values(tmp_path: Path, argv: list[str], message: str) -> None:
    from pipeline.cli import UsageError

    with pytest.raises(UsageError, match=message):
        run_cli([str(tmp_path / "x.hsr"), *argv])
    assert not (tmp_path / "x.hsr").exists()


def test_simulate_through_the_hipstride_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = pytest.importorskip("pipeline.cli")
    for name in cli.COMMANDS:  # the other sub-commands are written alongside
        pytest.importorskip(f"pipeline.commands.{name}")
    assert cli.main(["simulate", str(tmp_path / "a.csv"), "--duration-s", "5"]) == 0
    assert (tmp_path / "a.truth.csv").exists()
    assert cli.main(["simulate", str(tmp_path / "b.csv"), "--contact-ms", "500", "250"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hipstride: error: impossible gait: left contact 500 ms")
