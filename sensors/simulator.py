"""A simulated runner: physically plausible IMU streams with exact per-step truth.

Tests, validation and the demo run on this, and the gait detectors are validated
against its truth, so every signal is derived from an explicit model (spring-mass
centre of mass, Euler-angle pelvis, keyframed shoe) whose angular rates are the exact
derivatives of the orientations it reports. ``docs/simulator.md`` documents the model,
the conventions and every truth column.

World frame: x forward, y left, z up. Segment frames coincide with the world frame in
neutral standing (pelvis and chest apart from their tilt/lean). Sensor readings are
``M.T @ segment_value`` where ``M`` is the mounting rotation (segment-from-sensor).
"""

from __future__ import annotations

import csv
import json
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sensors.model import GRAVITY_MPS2, PLACEMENTS, Chunk, FloatArray

if TYPE_CHECKING:
    from sensors.recording import Kind

G = GRAVITY_MPS2
BoolArray = npt.NDArray[np.bool_]

#: Columns of ``<name>.truth.csv``, in order.
TRUTH_COLUMNS = (
    "step",
    "side",
    "ic_s",
    "to_s",
    "contact_ms",
    "flight_ms",
    "step_ms",
    "stride_ms",
    "cadence_spm",
    "duty_factor",
    "pelvic_drop_deg",
    "vertical_oscillation_cm",
    "speed_mps",
    "stride_length_m",
    "gait",
)

# ---------------------------------------------------------------------------------
# Model constants (values and sources in docs/simulator.md)
# ---------------------------------------------------------------------------------
PELVIS_BRAKE_G = 0.30  # peak fore-aft force per unit mass, in g
PELVIS_ML_G = 0.15  # peak medio-lateral force per unit mass, in g
# Impact transients: damped oscillations with zero net impulse (see _impact_q).
PELVIS_IMPACT_G = 1.0
PELVIS_IMPACT_HZ = 30.0
PELVIS_IMPACT_TAU_S = 0.008
PELVIS_IMPACT_WINDOW_S = 0.05  # shorter than any contact (MIN_CONTACT_MS)
ROLL_PEAK_FRAC = 0.4  # pelvic drop peaks at 40 % of stance

FOOT_FLAT_FRAC = 0.15  # foot flat from 15 % of stance (end of heel rocker)
HEEL_OFF_FRAC = 0.50  # heel off at 50 % of stance (start of toe rocker)
SWING_MIN_FRAC = 0.15  # peak plantarflexion at 15 % of swing
SWING_MAX_FRAC = 0.85  # peak dorsiflexion at 85 % of swing
SWING_APEX_FRAC = 0.40  # heel highest at 40 % of swing
PITCH_IC_DEG = 12.0
PITCH_TO_DEG = -35.0
PITCH_MIN_DEG = -55.0
PITCH_MAX_DEG = 15.0
PITCH_RATE_IC_DPS = -100.0  # toes already coming down at heel strike
TOE_OFF_RATE_FACTOR = 2.0  # pitch rate at TO = factor x mean rate over heel-off..TO
HEEL_TO_TOE_M = 0.19  # heel contact point to the metatarsal heads (toe rocker pivot)
SHOE_SENSOR_M = (0.12, 0.0, 0.07)  # sensor on the laces, from the heel contact point
SWING_ROLL_DEG = 3.0
SWING_YAW_DEG = 4.0
FOOT_IMPACT_G = 4.0
FOOT_IMPACT_HZ = 45.0
FOOT_IMPACT_TAU_S = 0.007
FOOT_IMPACT_WINDOW_S = 0.05
FOOT_IMPACT_DIR = (-0.45, 0.0, 0.89)  # backward and up in the shoe frame

CHEST_LEAN_DEG = 8.0
CHEST_IMPACT_SCALE = 0.3  # soft tissue passes a third of the pelvis transient
CHEST_SMOOTH_SIGMA_S = 0.008
CHEST_SMOOTH_TAPS = 11

MIN_CONTACT_MS = 80.0  # sprinting; keeps the impact transients inside stance

# Walking (segments with gait "walk"): double-hump vertical force per leg, softer impacts
WALK_FORCE_K = 0.45  # leg force ~ sin(pi w) + K sin(3 pi w): the "M" of walking GRF ...
WALK_FORCE_WARP = 0.75  # ... with w = u^0.75: loading is faster than unloading
WALK_PELVIS_IMPACT_SCALE = 0.3
WALK_FOOT_IMPACT_SCALE = 0.4
GAITS = ("run", "walk")

#: Highest loss the two-state model can give with bursts of 3 packets on average.
MAX_LOSS_PCT = 75.0
BURST_PACKETS = 3.0

_SALT_SCHEDULE, _SALT_MOUNT, _SALT_BIAS, _SALT_NOISE, _SALT_LOSS = 101, 202, 303, 404, 505
_BLOCK_CHUNKS = 8  # chunks evaluated per vectorised call (amortises numpy overhead)


# ---------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimConfig:
    """Everything the simulated run depends on; ``simulate`` is a pure function of it.

    Pairs are ``(left, right)``. Drifts are the change reached at the end of the run,
    growing linearly from ``drift_start_s`` (seconds after the run starts).
    ``duration_s`` is the running part; the recording lasts
    ``standing_s + duration_s + standing_end_s``.
    """

    duration_s: float = 120.0
    fs_hz: float = 200.0
    cadence_spm: float = 170.0
    contact_ms: tuple[float, float] = (250.0, 250.0)
    hip_drop_deg: tuple[float, float] = (5.0, 5.0)
    hip_drop_drift_deg: tuple[float, float] = (0.0, 0.0)
    contact_drift_ms: tuple[float, float] = (0.0, 0.0)
    cadence_drift_spm: float = 0.0
    drift_start_s: float = 0.0
    speed_mps: float = 3.3
    step_cv: float = 0.01
    standing_s: float = 0.0
    standing_end_s: float = 0.0
    first_side: str = "left"
    sensors: tuple[str, ...] = ("pelvis", "left_foot", "right_foot")
    accel_only: tuple[str, ...] = ()
    mounting: str | Mapping[str, Any] = "random"
    acc_noise_mps2: float = 0.05
    gyr_noise_dps: float = 0.5
    gyr_bias_dps: float = 0.5
    loss_pct: float = 0.0
    packet_samples: int = 10
    clock_offset_s: Mapping[str, float] = field(default_factory=dict)
    pelvis_tilt_deg: float = 10.0
    pelvis_rotation_deg: float = 8.0
    pelvis_tilt_range_deg: float = 4.0
    seed: int = 0
    #: ((duration_s, "run" | "walk"), ...) summing to duration_s; () = running only.
    #: The first and last segments must be "run" (start and stop are from running).
    segments: tuple[tuple[float, str], ...] = ()
    walk_cadence_spm: float = 110.0
    walk_contact_ms: float = 650.0
    walk_speed_mps: float = 1.4
    #: every turn_every_s of running the heading turns by turn_deg over turn_s (0: none)
    turn_every_s: float = 0.0
    turn_deg: float = 90.0
    turn_s: float = 3.0

    def __post_init__(self) -> None:
        # Normalise containers so a config built from lists or JSON behaves the same.
        for name in ("contact_ms", "hip_drop_deg", "hip_drop_drift_deg", "contact_drift_ms"):
            object.__setattr__(self, name, _pair(name, getattr(self, name)))
        object.__setattr__(self, "sensors", tuple(self.sensors))
        object.__setattr__(self, "accel_only", tuple(self.accel_only))
        segs = tuple((float(d), str(g)) for d, g in self.segments)
        object.__setattr__(self, "segments", segs)
        offsets = {str(k): float(v) for k, v in dict(self.clock_offset_s).items()}
        object.__setattr__(self, "clock_offset_s", offsets)
        if not isinstance(self.mounting, str):
            mats = {str(k): _rotation_matrix(k, v) for k, v in dict(self.mounting).items()}
            object.__setattr__(self, "mounting", mats)
        _validate(self)

    @property
    def total_s(self) -> float:
        """Length of the recording: standing, running, standing."""
        return self.standing_s + self.duration_s + self.standing_end_s

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy (matrices as nested lists)."""
        out = asdict(self)
        if not isinstance(self.mounting, str):
            out["mounting"] = {k: np.asarray(v).tolist() for k, v in self.mounting.items()}
        out["contact_ms"] = list(self.contact_ms)
        for key in ("hip_drop_deg", "hip_drop_drift_deg", "contact_drift_ms"):
            out[key] = list(out[key])
        out["sensors"] = list(self.sensors)
        out["accel_only"] = list(self.accel_only)
        out["segments"] = [list(seg) for seg in self.segments]
        return out

    def segment_bounds(self) -> list[tuple[float, float, str]]:
        """(start_s, end_s, gait) of each segment on the recording's time axis."""
        segs = self.segments or ((self.duration_s, "run"),)
        out, t = [], self.standing_s
        for d, g in segs:
            out.append((t, t + d, g))
            t += d
        return out


def _pair(name: str, value: Any) -> tuple[float, float]:
    try:
        left, right = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (left, right) pair of numbers, got {value!r}") from None
    return (left, right)


def _rotation_matrix(placement: Any, value: Any) -> tuple[tuple[float, ...], ...]:
    m = np.asarray(value, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f"mounting[{placement!r}] must be a 3x3 matrix, got shape {m.shape}")
    if not np.allclose(m @ m.T, np.eye(3), atol=1e-6) or np.linalg.det(m) < 0:
        raise ValueError(f"mounting[{placement!r}] is not a rotation matrix (orthonormal, det +1)")
    # Tuples keep the frozen config comparable (arrays make == ambiguous).
    return tuple(tuple(float(x) for x in row) for row in m)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _validate(cfg: SimConfig) -> None:
    _check(cfg.duration_s > 0, f"duration_s must be > 0, got {cfg.duration_s}")
    _check(20.0 <= cfg.fs_hz <= 2000.0, f"fs_hz must be within 20-2000 Hz, got {cfg.fs_hz}")
    _check(cfg.speed_mps > 0, f"speed_mps must be > 0, got {cfg.speed_mps}")
    _check(0.0 <= cfg.step_cv <= 0.1, f"step_cv must be within 0-0.1, got {cfg.step_cv}")
    _check(cfg.standing_s >= 0 and cfg.standing_end_s >= 0, "standing times must be >= 0")
    _check(
        0.0 <= cfg.drift_start_s < cfg.duration_s,
        f"drift_start_s must be within [0, duration_s), got {cfg.drift_start_s}",
    )
    _check(cfg.first_side in ("left", "right"), "first_side must be 'left' or 'right'")
    _check(
        0.0 <= cfg.loss_pct < MAX_LOSS_PCT,
        f"loss_pct must be within [0, {MAX_LOSS_PCT:g}) with {BURST_PACKETS:g}-packet bursts,"
        f" got {cfg.loss_pct}",
    )
    _check(cfg.packet_samples >= 1, "packet_samples must be >= 1")
    _check(isinstance(cfg.seed, numbers.Integral) and cfg.seed >= 0, "seed must be an integer >= 0")
    for name in ("acc_noise_mps2", "gyr_noise_dps", "gyr_bias_dps"):
        _check(getattr(cfg, name) >= 0, f"{name} must be >= 0")
    _validate_placements(cfg)
    _validate_segments(cfg)
    _validate_timing(cfg)


def _validate_placements(cfg: SimConfig) -> None:
    _check(len(cfg.sensors) > 0, "sensors must name at least one placement")
    for p in cfg.sensors:
        _check(p in PLACEMENTS, f"unknown sensor placement {p!r}; expected one of {PLACEMENTS}")
    _check(len(set(cfg.sensors)) == len(cfg.sensors), "sensors lists a placement twice")
    for p in cfg.accel_only:
        _check(p in cfg.sensors, f"accel_only names {p!r}, which is not in sensors")
    for p in cfg.clock_offset_s:
        _check(p in cfg.sensors, f"clock_offset_s names {p!r}, which is not in sensors")
    if isinstance(cfg.mounting, str):
        _check(
            cfg.mounting in ("random", "aligned"),
            f"mounting must be 'random', 'aligned' or a dict of matrices, got {cfg.mounting!r}",
        )
    else:
        for p in cfg.mounting:
            _check(p in PLACEMENTS, f"mounting names unknown placement {p!r}")


def _validate_segments(cfg: SimConfig) -> None:
    if cfg.segments:
        _check(
            all(g in GAITS and d > 0 for d, g in cfg.segments),
            f"segments must be (duration_s > 0, 'run' | 'walk') pairs, got {cfg.segments!r}",
        )
        total = sum(d for d, _ in cfg.segments)
        _check(
            abs(total - cfg.duration_s) < 1e-6,
            f"segments must add up to duration_s ({cfg.duration_s:g} s), got {total:g} s",
        )
        _check(
            cfg.segments[0][1] == "run" and cfg.segments[-1][1] == "run",
            "the first and last segments must be 'run' (start and stop are from running)",
        )
    _check(60 <= cfg.walk_cadence_spm <= 160, "walk_cadence_spm must be within 60-160")
    walk_step_ms = 60000.0 / cfg.walk_cadence_spm
    _check(
        walk_step_ms < cfg.walk_contact_ms < 1.8 * walk_step_ms,
        "walk_contact_ms must be longer than a walking step (double support) and shorter"
        f" than 1.8 steps, i.e. within {walk_step_ms:.0f}-{1.8 * walk_step_ms:.0f} ms",
    )
    _check(cfg.walk_speed_mps > 0, "walk_speed_mps must be > 0")
    _check(cfg.turn_every_s >= 0, "turn_every_s must be >= 0")
    if cfg.turn_every_s > 0:
        _check(
            0 < cfg.turn_s < cfg.turn_every_s,
            "turn_s must be > 0 and shorter than turn_every_s",
        )
        _check(abs(cfg.turn_deg) <= 360, "turn_deg must be within -360..360")


def _validate_timing(cfg: SimConfig) -> None:
    """Reject configs whose nominal contact would not fit in the step at any point."""
    frac = np.linspace(0.0, 1.0, 1001)
    cadence = cfg.cadence_spm + cfg.cadence_drift_spm * frac
    _check(
        bool(np.all((cadence >= 60) & (cadence <= 300))),
        f"cadence must stay within 60-300 spm over the run (cadence_spm {cfg.cadence_spm:g},"
        f" cadence_drift_spm {cfg.cadence_drift_spm:g})",
    )
    step_ms = 60000.0 / cadence
    for i, side in enumerate(("left", "right")):
        contact = cfg.contact_ms[i] + cfg.contact_drift_ms[i] * frac
        _check(
            bool(np.all(contact >= MIN_CONTACT_MS)),
            f"{side} contact time must stay >= {MIN_CONTACT_MS:g} ms over the run",
        )
        bad = np.flatnonzero(contact > step_ms)
        if bad.size:
            b = int(bad[0])
            raise ValueError(
                f"impossible gait: {side} contact {contact[b]:.0f} ms is longer than the step"
                f" time {step_ms[b]:.0f} ms (cadence {cadence[b]:.0f} spm) at {frac[b]:.0%} of"
                " the drift, so flight time would be negative; shorten contact_ms or"
                " contact_drift_ms, or lower the cadence"
            )


# ---------------------------------------------------------------------------------
# Small maths helpers
# ---------------------------------------------------------------------------------
def _rng(seed: int, *key: int) -> np.random.Generator:
    """Independent, order-free random streams: one per (purpose, sensor, chunk)."""
    return np.random.default_rng([seed, *key])


class _Quintic:
    """Piecewise quintic through knots with given value, rate and acceleration (C2).

    Each interval is the unique quintic matching both ends' (p, v, a), so a keyframe
    with v = a = 0 on both sides of an interval gives an exact constant there (a shoe
    that is flat is exactly still). Outside the knots the first/last value is held;
    both end knots must therefore be at rest.
    """

    def __init__(self, t: FloatArray, p: FloatArray, v: FloatArray, a: FloatArray) -> None:
        if t.size < 2 or np.any(np.diff(t) <= 0):
            raise ValueError("knot times must be strictly increasing (at least two)")
        if v[0] or a[0] or v[-1] or a[-1]:
            raise ValueError("the first and last knots must be at rest (values are held)")
        h = np.diff(t)
        dp = np.diff(p)
        v0, v1, a0, a1 = v[:-1] * h, v[1:] * h, a[:-1] * h * h, a[1:] * h * h
        self.t, self.h, self.p = t, h, p
        self.c1, self.c2 = v0, a0 / 2.0
        self.c3 = 10 * dp - 6 * v0 - 4 * v1 - 1.5 * a0 + 0.5 * a1
        self.c4 = -15 * dp + 8 * v0 + 7 * v1 + 1.5 * a0 - a1
        self.c5 = 6 * dp - 3 * v0 - 3 * v1 - 0.5 * a0 + 0.5 * a1

    def __call__(self, tq: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        n = self.t.size
        i = np.searchsorted(self.t, tq, side="right") - 1
        inside = (i >= 0) & (i < n - 1)
        ic = np.clip(i, 0, n - 2)
        h = self.h[ic]
        s = np.where(inside, (tq - self.t[ic]) / h, 0.0)
        c1, c2, c3, c4, c5 = self.c1[ic], self.c2[ic], self.c3[ic], self.c4[ic], self.c5[ic]
        p = self.p[ic] + s * (c1 + s * (c2 + s * (c3 + s * (c4 + s * c5))))
        v = (c1 + s * (2 * c2 + s * (3 * c3 + s * (4 * c4 + s * 5 * c5)))) / h
        a = (2 * c2 + s * (6 * c3 + s * (12 * c4 + s * 20 * c5))) / (h * h)
        held = np.where(i < 0, self.p[0], self.p[-1])
        return (
            np.where(inside, p, held),
            np.where(inside, v, 0.0),
            np.where(inside, a, 0.0),
        )


@dataclass(frozen=True)
class _ImpactSpec:
    """A contact transient: damped oscillation, zero net impulse, ``window_s`` long."""

    peak_g: float
    freq_hz: float
    tau_s: float
    window_s: float


def _impact_q(s: FloatArray, spec: _ImpactSpec) -> tuple[FloatArray, FloatArray]:
    """q(s) = s exp(-s/tau) sin(w s) (1 - (s/W)^2)^2 and its derivative (the shape).

    q is 0 at both ends of the window and so is q', so the transient q' starts at 0
    exactly at IC, ends at 0 at W, and integrates to exactly 0: it adds no net impulse
    (no velocity change), whatever the window.
    """
    w = 2.0 * math.pi * spec.freq_hz
    x = s / spec.window_s
    e = np.exp(-s / spec.tau_s)
    sin, cos = np.sin(w * s), np.cos(w * s)
    taper = (1.0 - x * x) ** 2
    dtaper = -4.0 * x * (1.0 - x * x) / spec.window_s
    q = s * e * sin * taper
    dq = e * (sin * (1.0 - s / spec.tau_s) + w * s * cos) * taper + s * e * sin * dtaper
    return q, dq


@lru_cache(maxsize=8)
def _impact_tables(spec: _ImpactSpec) -> tuple[float, FloatArray, FloatArray]:
    """Peak normaliser, and the position change (per unit peak) over the window."""
    s = np.linspace(0.0, spec.window_s, 20001)
    q, dq = _impact_q(s, spec)
    norm = float(np.max(np.abs(dq)))
    pos = np.concatenate([[0.0], np.cumsum((q[1:] + q[:-1]) * np.diff(s) / 2.0)])
    return norm, s, pos / norm


def _impact(s: FloatArray, spec: _ImpactSpec) -> FloatArray:
    """Impact transient in m/s^2 for time since contact ``s`` (0 outside the window)."""
    on = (s >= 0) & (s < spec.window_s)
    _, dq = _impact_q(np.where(on, s, 0.0), spec)
    return np.where(on, spec.peak_g * G * dq / _impact_tables(spec)[0], 0.0)


def _impact_displacement(s: FloatArray, spec: _ImpactSpec) -> FloatArray:
    """Position change (m) the transient causes by time ``s`` after contact."""
    _, tab_s, tab_p = _impact_tables(spec)
    return spec.peak_g * G * np.interp(np.clip(s, 0.0, spec.window_s), tab_s, tab_p)


def _rot_zyx(phi: FloatArray, theta: FloatArray, psi: FloatArray) -> FloatArray:
    """World-from-segment matrices R = Rz(psi) Ry(theta) Rx(phi), shape (n, 3, 3)."""
    cf, sf, ct, st, cp, sp = (
        np.cos(phi),
        np.sin(phi),
        np.cos(theta),
        np.sin(theta),
        np.cos(psi),
        np.sin(psi),
    )
    r = np.empty((*phi.shape, 3, 3))
    r[:, 0, 0] = cp * ct
    r[:, 0, 1] = cp * st * sf - sp * cf
    r[:, 0, 2] = cp * st * cf + sp * sf
    r[:, 1, 0] = sp * ct
    r[:, 1, 1] = sp * st * sf + cp * cf
    r[:, 1, 2] = sp * st * cf - cp * sf
    r[:, 2, 0] = -st
    r[:, 2, 1] = ct * sf
    r[:, 2, 2] = ct * cf
    return r


def rotation_zyx_deg(e_deg: FloatArray) -> FloatArray:
    """World-from-segment matrices for (n, 3) Euler angles (roll, pitch, yaw) in deg."""
    e = np.radians(np.asarray(e_deg, dtype=float))
    return _rot_zyx(e[:, 0], e[:, 1], e[:, 2])


def _omega_body(e: FloatArray, de: FloatArray) -> FloatArray:
    """Body-frame angular velocity (rad/s) from ZYX Euler angles (phi, theta, psi) and rates."""
    phi, theta = e[:, 0], e[:, 1]
    dphi, dtheta, dpsi = de[:, 0], de[:, 1], de[:, 2]
    cf, sf, ct, st = np.cos(phi), np.sin(phi), np.cos(theta), np.sin(theta)
    return np.stack(
        [dphi - dpsi * st, dtheta * cf + dpsi * ct * sf, -dtheta * sf + dpsi * ct * cf], axis=1
    )


def _alpha_body(e: FloatArray, de: FloatArray, dde: FloatArray) -> FloatArray:
    """Time derivative of ``_omega_body`` (rad/s^2), needed for lever-arm accelerations."""
    phi, theta = e[:, 0], e[:, 1]
    d1, d2, d3 = de[:, 0], de[:, 1], de[:, 2]
    dd1, dd2, dd3 = dde[:, 0], dde[:, 1], dde[:, 2]
    cf, sf, ct, st = np.cos(phi), np.sin(phi), np.cos(theta), np.sin(theta)
    ax = dd1 - dd3 * st - d3 * d2 * ct
    ay = dd2 * cf - d2 * d1 * sf + dd3 * ct * sf - d3 * d2 * st * sf + d3 * ct * cf * d1
    az = -dd2 * sf - d2 * d1 * cf + dd3 * ct * cf - d3 * d2 * st * cf - d3 * ct * sf * d1
    return np.stack([ax, ay, az], axis=1)


def _to_body(r: FloatArray, v: FloatArray) -> FloatArray:
    """R^T v for stacks of matrices and vectors."""
    return np.einsum("nji,nj->ni", r, v)


def _random_rotation(rng: np.random.Generator) -> FloatArray:
    # A normalised 4-D Gaussian is a uniformly distributed unit quaternion.
    w, x, y, z = (float(v) for v in rng.standard_normal(4))
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _roll_bump(u: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Pelvic-drop profile over stance: 0 at both ends (C2), exactly 1 at ROLL_PEAK_FRAC."""
    p = 3.0
    q = p * (1.0 - ROLL_PEAK_FRAC) / ROLL_PEAK_FRAC  # puts the peak at ROLL_PEAK_FRAC
    uc = np.clip(u, 0.0, 1.0)
    x = uc / ROLL_PEAK_FRAC
    y = (1.0 - uc) / (1.0 - ROLL_PEAK_FRAC)
    value = x**p * y**q
    slope = (p / ROLL_PEAK_FRAC) * x ** (p - 1) * y**q - (
        q / (1.0 - ROLL_PEAK_FRAC)
    ) * x**p * y ** (q - 1)
    return value, slope


def _sin3(x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """sin^3(x) and its first two derivatives: a bump with zero slope and curvature at 0, pi."""
    s, c = np.sin(x), np.cos(x)
    return s**3, 3 * s * s * c, 6 * s * c * c - 3 * s**3


_PELVIS_IMPACT = _ImpactSpec(
    PELVIS_IMPACT_G, PELVIS_IMPACT_HZ, PELVIS_IMPACT_TAU_S, PELVIS_IMPACT_WINDOW_S
)
_FOOT_IMPACT = _ImpactSpec(FOOT_IMPACT_G, FOOT_IMPACT_HZ, FOOT_IMPACT_TAU_S, FOOT_IMPACT_WINDOW_S)


# ---------------------------------------------------------------------------------
# The step schedule
# ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Schedule:
    """Every foot contact of the run, virtual ones included.

    Index j: 0 and 1 are the push-off stances the runner starts from (standing, the
    first foot's heel lifts at ``run_start``); 2 .. n+1 are the n truth steps;
    n+2 and n+3 are the two landings that bring the runner to a stand.
    """

    ic: FloatArray  # initial contact time, s
    contact: FloatArray  # contact time, s
    side: FloatArray  # +1 left, -1 right
    drop_deg: FloatArray  # pelvic drop of that stance (0 for virtual stances)
    n: int
    run_start: float
    run_end: float
    walk: BoolArray  # stance of a walking step
    speed: FloatArray  # forward speed (m/s) of the step that stance begins
    turns: _Turns

    @property
    def walking(self) -> bool:
        return bool(self.walk.any())

    @property
    def to(self) -> FloatArray:
        return self.ic + self.contact


def _drift_frac(cfg: SimConfig, t: float) -> float:
    start = cfg.standing_s + cfg.drift_start_s
    return min(max((t - start) / (cfg.duration_s - cfg.drift_start_s), 0.0), 1.0)


def _build_schedule(cfg: SimConfig) -> _Schedule:
    rng = _rng(cfg.seed, _SALT_SCHEDULE)
    first = 1.0 if cfg.first_side == "left" else -1.0
    run_start, run_end = cfg.standing_s, cfg.standing_s + cfg.duration_s
    nominal_step = 60.0 / cfg.cadence_spm

    def nominal_contact(side: float, frac: float) -> float:
        i = 0 if side > 0 else 1
        return (cfg.contact_ms[i] + cfg.contact_drift_ms[i] * frac) / 1000.0

    bounds = cfg.segment_bounds()

    def walking_at(t: float) -> bool:
        return any(a <= t < b and g == "walk" for a, b, g in bounds)

    # Push-off stances: the first foot's heel lifts exactly at run_start.
    c0, c1 = nominal_contact(first, 0.0), nominal_contact(-first, 0.0)
    ic = [run_start - HEEL_OFF_FRAC * c0, run_start - HEEL_OFF_FRAC * c0 + nominal_step]
    contact, side, drop = [c0, c1], [first, -first], [0.0, 0.0]
    walk, speed = [False, False], [cfg.speed_mps, cfg.speed_mps]
    t = ic[1] + nominal_step
    draws = np.empty((0, 2))
    k = 0
    while True:
        if k >= len(draws):  # fixed-size blocks keep the random stream reproducible
            draws = np.clip(rng.standard_normal((1024, 2)), -3.0, 3.0)
            k = 0
        s = first if (len(ic) % 2 == 0) else -first
        frac = _drift_frac(cfg, t)
        w = walking_at(t)
        if w:
            # walking: double support, so contact is longer than the step
            step = 60.0 / cfg.walk_cadence_spm * (1 + cfg.step_cv * draws[k, 0])
            c = cfg.walk_contact_ms / 1000.0 * (1 + cfg.step_cv * draws[k, 1])
            c = min(c, 1.8 * step)
        else:
            step = (
                60.0
                / (cfg.cadence_spm + cfg.cadence_drift_spm * frac)
                * (1 + cfg.step_cv * draws[k, 0])
            )
            c = min(nominal_contact(s, frac) * (1 + cfg.step_cv * draws[k, 1]), step)
        i = 0 if s > 0 else 1
        ic.append(t)
        contact.append(c)
        side.append(s)
        walk.append(w)
        speed.append(cfg.walk_speed_mps if w else cfg.speed_mps)
        drop.append(cfg.hip_drop_deg[i] + cfg.hip_drop_drift_deg[i] * frac)
        k += 1
        if t > run_end:
            break
        t += step
    ic_a = np.array(ic)
    contact_a = np.array(contact)
    # n truth steps end with two landings (j = n+2, n+3) whose feet must be flat and
    # still by run_end: take the largest n for which settle[n + 3] <= run_end.
    settle = ic_a + FOOT_FLAT_FRAC * contact_a
    n = 0
    while n + 4 < len(ic_a) and settle[n + 4] <= run_end:
        n += 1
    if n < 1:
        raise ValueError(
            f"duration_s {cfg.duration_s:g} s is too short for one running step at"
            f" {cfg.cadence_spm:g} spm (needs about {4 * nominal_step:.1f} s)"
        )
    m = n + 4
    return _Schedule(
        ic=ic_a[:m],
        contact=contact_a[:m],
        side=np.array(side[:m]),
        drop_deg=np.array(drop[:m]),
        n=n,
        run_start=run_start,
        run_end=run_end,
        walk=np.array(walk[:m], dtype=bool),
        speed=np.array(speed[:m]),
        turns=_Turns.build(cfg, run_start, float(ic_a[n + 2])),
    )


@dataclass(frozen=True)
class _Turns:
    """Heading changes of an outdoor course: each a C2 smoothstep of ``turn_deg``."""

    start: FloatArray  # s
    duration_s: float
    angle_rad: float

    @staticmethod
    def build(cfg: SimConfig, run_start: float, landing: float) -> _Turns:
        if cfg.turn_every_s <= 0:
            return _Turns(np.zeros(0), 1.0, 0.0)
        k = np.arange(1, int((landing - run_start) / cfg.turn_every_s) + 1)
        start = np.asarray(run_start + k * cfg.turn_every_s, dtype=np.float64)
        start = start[start + cfg.turn_s < landing]  # whole turns, ended before the stop
        return _Turns(start, cfg.turn_s, math.radians(cfg.turn_deg))

    def heading(self, t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Heading (rad, 0 = initial +x) and its first two time derivatives."""
        h = np.zeros(t.shape)
        dh = np.zeros(t.shape)
        ddh = np.zeros(t.shape)
        if self.start.size == 0:
            return h, dh, ddh
        d = self.duration_s
        done = np.searchsorted(self.start + d, t, side="right")  # turns completed
        h += done * self.angle_rad
        i = np.searchsorted(self.start, t, side="right") - 1
        inside = (i >= 0) & (i >= done)
        x = np.where(inside, (t - self.start[np.clip(i, 0, None)]) / d, 0.0)
        # smoothstep 6x^5 - 15x^4 + 10x^3: zero rate and acceleration at both ends
        h += np.where(inside, self.angle_rad * x**3 * (10 - 15 * x + 6 * x * x), 0.0)
        dh += np.where(inside, self.angle_rad * 30 * x * x * (1 - x) ** 2 / d, 0.0)
        ddh += np.where(inside, self.angle_rad * 60 * x * (1 - x) * (1 - 2 * x) / d**2, 0.0)
        return h, dh, ddh


# ---------------------------------------------------------------------------------
# Pelvis and chest: spring-mass centre of mass
# ---------------------------------------------------------------------------------
def _com_force_world(sch: _Schedule, t: FloatArray, impact_scale: float = 1.0) -> FloatArray:
    """Specific force of the centre of mass in the world frame (m/s^2), shape (n, 3)."""
    j = np.searchsorted(sch.ic, t, side="right") - 1
    n = sch.n
    f = np.zeros((t.size, 3))
    f[:, 2] = G
    # Spring-mass from the push-off toe-off (j = 1) to the landing (j = n + 2).
    running = (t >= sch.to[1]) & (t < sch.ic[n + 2])
    f[running] = 0.0
    jr = np.clip(j, 2, n + 1)
    c = sch.contact[jr]
    step = sch.ic[jr + 1] - sch.ic[jr]
    u = (t - sch.ic[jr]) / c
    stance = running & (j >= 2) & (u < 1.0)
    amp = G * math.pi * step / (2.0 * c)  # vertical impulse = body weight x step time
    s1 = np.sin(math.pi * u)
    f[:, 2] = np.where(stance, amp * s1, f[:, 2])
    f[:, 0] = np.where(stance, -PELVIS_BRAKE_G * G * np.sin(2 * math.pi * u), 0.0)
    f[:, 1] = np.where(stance, -sch.side[jr] * PELVIS_ML_G * G * s1, 0.0)
    if sch.walking:
        _add_walking_forces(sch, t, j, running, f)
    if sch.turns.start.size:
        _add_heading(sch, t, jr, running, f)
    # Impact transient at every real contact and at the final landing, kept inside
    # stance so that flight reads exactly zero.
    jt = np.clip(j, 2, n + 2)
    s = t - sch.ic[jt]
    impact = impact_scale * _impact(np.where(j >= 2, s, -1.0), _PELVIS_IMPACT)
    if sch.walking:
        impact *= np.where(sch.walk[jt], WALK_PELVIS_IMPACT_SCALE, 1.0)
    f[:, 2] += impact
    return f


def _add_walking_forces(
    sch: _Schedule, t: FloatArray, j: npt.NDArray[np.int64], running: BoolArray, f: FloatArray
) -> None:
    """Walking stances: an "M"-shaped leg force, and two legs loaded in double support.

    The running shapes written by the caller are replaced wherever the latest stance
    is a walking one; the previous stance adds its force while it lasts (double
    support). Each leg's vertical impulse is still body weight x its step time.
    """
    n = sch.n
    total = np.zeros((t.size, 3))
    any_walk = np.zeros(t.size, dtype=bool)
    for back in (0, 1):
        jb = np.clip(j - back, 2, n + 1)
        c = sch.contact[jb]
        step = sch.ic[jb + 1] - sch.ic[jb]
        u = (t - sch.ic[jb]) / c
        active = running & (j - back >= 2) & (u >= 0.0) & (u < 1.0)
        w = sch.walk[jb]
        shape_int = np.where(w, _walk_shape_integral(), 2.0 / math.pi)
        amp = G * step / (c * shape_int)
        s1 = np.sin(math.pi * u)
        vert = amp * np.where(w, _walk_shape(u), s1)
        on = active & (w | (back == 0))
        total[:, 2] += np.where(on, vert, 0.0)
        total[:, 0] += np.where(on, -PELVIS_BRAKE_G * G * np.sin(2 * math.pi * u), 0.0)
        total[:, 1] += np.where(on, -sch.side[jb] * PELVIS_ML_G * G * s1, 0.0)
        any_walk |= active & w
    f[any_walk] = total[any_walk]


def _walk_shape(u: FloatArray) -> FloatArray:
    """One leg's vertical force over a walking stance (u: 0..1), peak near 1.2."""
    w = np.clip(u, 0.0, 1.0) ** WALK_FORCE_WARP
    return np.sin(math.pi * w) + WALK_FORCE_K * np.sin(3 * math.pi * w)


@lru_cache(maxsize=1)
def _walk_shape_integral() -> float:
    """Integral of ``_walk_shape`` over 0..1 (the impulse per unit amplitude)."""
    u = np.linspace(0.0, 1.0, 200001)
    y = _walk_shape(u)
    return float(np.sum(0.5 * (y[1:] + y[:-1])) * (u[1] - u[0]))


def _add_heading(
    sch: _Schedule, t: FloatArray, jr: npt.NDArray[np.int64], running: BoolArray, f: FloatArray
) -> None:
    """Turns: horizontal forces follow the heading, plus the centripetal force.

    The centripetal acceleration (speed x turn rate) can only come from the ground, so
    it is spread over stance in proportion to the vertical force (whose mean over a
    step is g); in flight the runner follows a straight line.
    """
    h, dh, _ = sch.turns.heading(t)
    ch, sh = np.cos(h), np.sin(h)
    fx, fy = f[:, 0].copy(), f[:, 1].copy()
    f[:, 0] = ch * fx - sh * fy
    f[:, 1] = sh * fx + ch * fy
    lat = np.where(running, sch.speed[jr] * dh * f[:, 2] / G, 0.0)
    f[:, 0] += -sh * lat
    f[:, 1] += ch * lat


def _pelvis_euler(cfg: SimConfig, sch: _Schedule, t: FloatArray) -> tuple[FloatArray, FloatArray]:
    """ZYX Euler angles (roll, pitch, yaw) in rad and their exact time derivatives."""
    n = sch.n
    j = np.searchsorted(sch.ic, t, side="right") - 1
    in_run = (t >= sch.ic[2]) & (t < sch.ic[n + 2])
    jr = np.clip(j, 2, n + 1)
    step = sch.ic[jr + 1] - sch.ic[jr]
    c = sch.contact[jr]
    us = (t - sch.ic[jr]) / step  # phase within the step
    dphase = math.pi / step
    # Yaw follows the stride (one cycle per two steps): the swing-side hip comes
    # forward, so yaw is positive (turned left) during left stance. Writing it per
    # step with the stance side's sign keeps the sine arguments small on long runs.
    side = sch.side[jr]
    bump, dbump = _roll_bump((t - sch.ic[jr]) / c)
    in_stance = in_run & (t < sch.ic[jr] + c)
    drop = np.radians(side * sch.drop_deg[jr])
    roll = np.where(in_stance, drop * bump, 0.0)
    droll = np.where(in_stance, drop * dbump / c, 0.0)
    half_tilt = math.radians(cfg.pelvis_tilt_range_deg) / 2.0
    half_rot = math.radians(cfg.pelvis_rotation_deg) / 2.0
    tilt = math.radians(cfg.pelvis_tilt_deg)
    pitch = tilt + np.where(in_run, half_tilt * np.sin(2 * math.pi * us), 0.0)
    dpitch = np.where(in_run, half_tilt * np.cos(2 * math.pi * us) * 2 * dphase, 0.0)
    yaw = np.where(in_run, half_rot * side * np.sin(math.pi * us), 0.0)
    dyaw = np.where(in_run, half_rot * side * np.cos(math.pi * us) * dphase, 0.0)
    if sch.turns.start.size:
        h, dh, _ = sch.turns.heading(t)
        yaw, dyaw = yaw + h, dyaw + dh
    return np.stack([roll, pitch, yaw], axis=1), np.stack([droll, dpitch, dyaw], axis=1)


def _vertical_oscillation_cm(sch: _Schedule) -> FloatArray:
    """Peak-to-peak COM height over each truth step (IC to next IC), periodic motion.

    The step's vertical acceleration (f_z - g) is integrated twice from its IC and the
    linear trend removed, i.e. the initial vertical velocity is the one that brings the
    COM back to the same height at the next IC.
    """
    out = np.empty(sch.n)
    grid = np.linspace(0.0, 1.0, 801)
    for b0 in range(0, sch.n, 256):  # blocks keep the (steps x grid) arrays small
        js = np.arange(2 + b0, 2 + min(b0 + 256, sch.n))
        c = sch.contact[js][:, None]
        step = (sch.ic[js + 1] - sch.ic[js])[:, None]
        amp = G * math.pi * step / (2.0 * c)
        s = grid[None, :] * step
        sc = np.minimum(s, c)
        stance = amp * (c / math.pi) * sc - amp * (c / math.pi) ** 2 * np.sin(math.pi * sc / c)
        v_to = 2 * amp * c / math.pi
        fl = np.maximum(s - c, 0.0)
        z = stance + v_to * fl - G * s * s / 2.0
        z += _impact_displacement(s, _PELVIS_IMPACT)
        z -= s * z[:, -1:] / step  # periodic: same height at both ICs
        out[b0 : b0 + len(js)] = (z.max(axis=1) - z.min(axis=1)) * 100.0
    if sch.walking:
        # Steps in or next to walking (two legs loaded): integrate the force numerically.
        js = np.arange(2, sch.n + 2)
        near = sch.walk[js] | sch.walk[js - 1] | sch.walk[js + 1]
        for i in np.flatnonzero(near):
            j = int(js[i])
            step_s = float(sch.ic[j + 1] - sch.ic[j])
            s = grid * step_s
            a = _com_force_world(sch, sch.ic[j] + s)[:, 2] - G
            ds = s[1] - s[0]
            v = np.concatenate([[0.0], np.cumsum(0.5 * (a[1:] + a[:-1]) * ds)])
            z = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * ds)])
            z -= s * z[-1] / step_s
            out[i] = (z.max() - z.min()) * 100.0
    return out


# ---------------------------------------------------------------------------------
# Shoes
# ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _FootTrack:
    """Keyframed motion of one shoe over the whole run."""

    side: float
    pitch: _Quintic  # deg, toes up positive
    heel_x: _Quintic  # m, only used in swing
    heel_z: _Quintic
    to: FloatArray  # toe-off of each stance but the landing
    ho: FloatArray  # heel-off of the same stances
    next_ic: FloatArray  # the contact that ends each swing (each gets an impact)
    impact_scale: FloatArray | None = None  # per next_ic (walking contacts are softer)
    turns: _Turns | None = None  # heading changes (outdoor course)


def _foot_track(cfg: SimConfig, sch: _Schedule, side: float) -> _FootTrack:
    js = np.flatnonzero(sch.side == side)
    ic, c = sch.ic[js], sch.contact[js]
    ho = ic + HEEL_OFF_FRAC * c
    to = ic + c
    ff = ic + FOOT_FLAT_FRAC * c
    swing = ic[1:] - to[:-1]
    rate_to = TOE_OFF_RATE_FACTOR * PITCH_TO_DEG / (c[:-1] * (1 - HEEL_OFF_FRAC))
    walk = sch.walk[js[:-1]] if sch.walking else None
    pitch = _pitch_keyframes(ho[:-1], to[:-1], swing, rate_to, ic[1:], ff[1:], walk)
    dist = _distance(sch)[js]
    speed = sch.speed[js]
    heel_x, heel_z = _heel_keyframes(cfg, ho[:-1], to[:-1], swing, rate_to, ic, dist, speed)
    scale = np.where(sch.walk[js[1:]], WALK_FOOT_IMPACT_SCALE, 1.0) if sch.walking else None
    turns = sch.turns if sch.turns.start.size else None
    return _FootTrack(side, pitch, heel_x, heel_z, to[:-1], ho[:-1], ic[1:], scale, turns)


def _distance(sch: _Schedule) -> FloatArray:
    """Distance (m) the runner has covered at each contact (0 at the first).

    Each step covers its own speed x step time, so with one speed throughout the heel
    landings are exactly speed x stride apart.
    """
    d = np.zeros(sch.ic.size)
    d[1:] = np.cumsum(sch.speed[1:] * np.diff(sch.ic))
    return d


def _pitch_keyframes(
    ho: FloatArray,
    to: FloatArray,
    swing: FloatArray,
    rate_to: FloatArray,
    next_ic: FloatArray,
    next_ff: FloatArray,
    walk: BoolArray | None = None,
) -> _Quintic:
    """Per stride: heel-off, toe-off, max plantarflexion, max dorsiflexion, IC, foot flat.

    Walking strides (slower push-off) reach their maximum plantarflexion half a
    toe-off rate x time later, so the pitch rate keeps its extreme at toe-off there too.
    """
    m = ho.size
    one, zero = np.ones(m), np.zeros(m)
    p_min = PITCH_MIN_DEG * one
    if walk is not None:
        p_min = np.where(walk, PITCH_TO_DEG + 0.5 * rate_to * SWING_MIN_FRAC * swing, p_min)
    times = np.stack(
        [ho, to, to + SWING_MIN_FRAC * swing, to + SWING_MAX_FRAC * swing, next_ic, next_ff],
        axis=1,
    )
    p = np.stack(
        [
            zero,
            PITCH_TO_DEG * one,
            p_min,
            PITCH_MAX_DEG * one,
            PITCH_IC_DEG * one,
            zero,
        ],
        axis=1,
    )
    v = np.stack([zero, rate_to, zero, zero, PITCH_RATE_IC_DPS * one, zero], axis=1)
    return _Quintic(times.ravel(), p.ravel(), v.ravel(), np.zeros(times.size))


def _heel_keyframes(
    cfg: SimConfig,
    ho: FloatArray,
    to: FloatArray,
    swing: FloatArray,
    rate_to: FloatArray,
    ic: FloatArray,
    dist: FloatArray,
    speed: FloatArray,
) -> tuple[_Quintic, _Quintic]:
    """Heel contact point: still in stance, toe-rocker state at TO, min-jerk swing.

    ``x`` is the distance along the course (the heading turns it in the world).
    """
    m = ho.size
    zero = np.zeros(m)
    # Heel landings one stride apart: stride length = speed x stride time.
    x_land = dist - dist[0]
    th = math.radians(-PITCH_TO_DEG)  # theta = -pitch (rotation about +y)
    dth = np.radians(-rate_to)
    lever = HEEL_TO_TOE_M
    # Heel while pivoting about the fixed toe: H = toe - R(theta) r_toe (see docs).
    x_to = x_land[:-1] + lever * (1 - math.cos(th))
    vx_to = lever * math.sin(th) * dth
    ax_to = lever * math.cos(th) * dth**2
    z_to = lever * math.sin(th) * np.ones(m)
    vz_to = lever * math.cos(th) * dth
    az_to = -lever * math.sin(th) * dth**2
    apex = np.clip(0.11 * speed[1:], 0.12, 0.45)
    tx = np.stack([ho, to, ic[1:]], axis=1).ravel()
    px = np.stack([x_land[:-1], x_to, x_land[1:]], axis=1).ravel()
    vx = np.stack([zero, vx_to, zero], axis=1).ravel()
    axx = np.stack([zero, ax_to, zero], axis=1).ravel()
    tz = np.stack([ho, to, to + SWING_APEX_FRAC * swing, ic[1:]], axis=1).ravel()
    pz = np.stack([zero, z_to, apex, zero], axis=1).ravel()
    vz = np.stack([zero, vz_to, zero, zero], axis=1).ravel()
    az = np.stack([zero, az_to, zero, zero], axis=1).ravel()
    return _Quintic(tx, px, vx, axx), _Quintic(tz, pz, vz, az)


def _foot_euler(
    ft: _FootTrack, t: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """ZYX Euler angles, rates and accelerations (rad) of the shoe, and the swing mask."""
    pitch, dpitch, ddpitch = ft.pitch(t)
    i = np.searchsorted(ft.to, t, side="right") - 1
    ic_ = np.clip(i, 0, ft.to.size - 1)
    dur = ft.next_ic[ic_] - ft.to[ic_]
    in_swing = (i >= 0) & (t < ft.next_ic[ic_])
    x = np.where(in_swing, math.pi * (t - ft.to[ic_]) / dur, 0.0)
    b, db, ddb = _sin3(x)
    b2, db2, ddb2 = _sin3(2 * x)
    w = math.pi / dur
    roll_a = math.radians(SWING_ROLL_DEG) * ft.side
    yaw_a = -math.radians(SWING_YAW_DEG) * ft.side
    sw = in_swing.astype(np.float64)
    e = np.stack([roll_a * b * sw, -np.radians(pitch), yaw_a * b2 * sw], axis=1)
    de = np.stack([roll_a * db * w * sw, -np.radians(dpitch), yaw_a * db2 * 2 * w * sw], axis=1)
    dde = np.stack(
        [roll_a * ddb * w * w * sw, -np.radians(ddpitch), yaw_a * ddb2 * 4 * w * w * sw], axis=1
    )
    if ft.turns is not None:
        h, dh, ddh = ft.turns.heading(t)
        e[:, 2] += h
        de[:, 2] += dh
        dde[:, 2] += ddh
    return e, de, dde, in_swing


def _foot_signals(ft: _FootTrack, t: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Specific force (m/s^2) and angular rate (rad/s) in the shoe frame."""
    e, de, dde, in_swing = _foot_euler(ft, t)
    r = _rot_zyx(e[:, 0], e[:, 1], e[:, 2])
    omega = _omega_body(e, de)
    alpha = _alpha_body(e, de, dde)
    # Pivot: the toe between heel-off and toe-off, otherwise the heel contact point.
    j = np.searchsorted(ft.ho, t, side="right") - 1
    jc = np.clip(j, 0, ft.ho.size - 1)
    rocker = (j >= 0) & (t < ft.to[jc])
    lever = np.tile(np.asarray(SHOE_SENSOR_M), (t.size, 1))
    lever[rocker, 0] -= HEEL_TO_TOE_M
    # Pivot acceleration: zero while it rests on the ground, the heel's in swing.
    pivot_acc = np.zeros((t.size, 3))
    _, vx, ax = ft.heel_x(t)
    if ft.turns is None:
        pivot_acc[:, 0] = np.where(in_swing, ax, 0.0)
    else:
        # along the course, turned by the heading, plus the centripetal term
        h, dh, _ = ft.turns.heading(t)
        ch, sh = np.cos(h), np.sin(h)
        pivot_acc[:, 0] = np.where(in_swing, ax * ch - vx * dh * sh, 0.0)
        pivot_acc[:, 1] = np.where(in_swing, ax * sh + vx * dh * ch, 0.0)
    pivot_acc[:, 2] = np.where(in_swing, ft.heel_z(t)[2], 0.0)
    pivot_acc[:, 2] += G
    f = _to_body(r, pivot_acc) + np.cross(alpha, lever) + np.cross(omega, np.cross(omega, lever))
    k = np.searchsorted(ft.next_ic, t, side="right") - 1
    s = np.where(k >= 0, t - ft.next_ic[np.clip(k, 0, ft.next_ic.size - 1)], -1.0)
    direction = np.asarray(FOOT_IMPACT_DIR) / np.linalg.norm(FOOT_IMPACT_DIR)
    impact = _impact(s, _FOOT_IMPACT)
    if ft.impact_scale is not None:
        impact = impact * ft.impact_scale[np.clip(k, 0, ft.next_ic.size - 1)]
    f += impact[:, None] * direction[None, :]
    return f, omega


# ---------------------------------------------------------------------------------
# Packet loss: Gilbert-Elliott two-state chain over packets
# ---------------------------------------------------------------------------------
class _BurstLoss:
    """Good/bad Markov chain; every packet in the bad state is lost, none in the good.

    With a mean bad run of ``BURST_PACKETS`` packets, leaving the good state with
    probability ``p = loss * (1 / BURST_PACKETS) / (1 - loss)`` makes the stationary
    share of bad packets equal to ``loss``. Run lengths are drawn lazily one at a
    time, so the kept packets are the same however the requests are split.
    """

    def __init__(self, loss_pct: float, rng: np.random.Generator) -> None:
        self.loss = loss_pct / 100.0
        self.rng = rng
        self.bad = False
        self.left = 0  # packets remaining in the current run
        if self.loss > 0:
            self.p_exit = {True: 1.0 / BURST_PACKETS}
            self.p_exit[False] = self.loss * self.p_exit[True] / (1.0 - self.loss)
            self.bad = bool(rng.random() < self.loss)  # start in the stationary state
            self.left = int(rng.geometric(self.p_exit[self.bad]))

    def keep(self, n_packets: int) -> BoolArray:
        out = np.ones(n_packets, dtype=bool)
        if self.loss <= 0:
            return out
        pos = 0
        while pos < n_packets:
            if self.left == 0:
                self.bad = not self.bad
                self.left = int(self.rng.geometric(self.p_exit[self.bad]))
            take = min(self.left, n_packets - pos)
            if self.bad:
                out[pos : pos + take] = False
            pos += take
            self.left -= take
        return out


# ---------------------------------------------------------------------------------
# The simulation
# ---------------------------------------------------------------------------------
class Simulation:
    """A simulated run: lazily generated sensor chunks plus exact per-step truth."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.placements: tuple[str, ...] = tuple(config.sensors)
        self._sch = _build_schedule(config)
        self._feet = {
            "left_foot": _foot_track(config, self._sch, 1.0),
            "right_foot": _foot_track(config, self._sch, -1.0),
        }
        self.mounting = {p: self._mounting(p) for p in self.placements}
        self.gyr_bias_dps = {p: self._bias(p) for p in self.placements}
        self.fs_hz = float(config.fs_hz)
        self.n_samples = math.ceil(config.total_s * config.fs_hz - 1e-9)
        ps = config.packet_samples
        self.chunk_samples = ps * max(1, round(config.fs_hz / ps))

    # -- configuration derived per sensor ------------------------------------------
    def has_gyro(self, placement: str) -> bool:
        return placement != "chest" and placement not in self.config.accel_only

    def _sensor_id(self, placement: str) -> int:
        # The index in PLACEMENTS, so adding a sensor never changes another's noise.
        return PLACEMENTS.index(placement)

    def _mounting(self, placement: str) -> FloatArray:
        m = self.config.mounting
        if isinstance(m, str):
            if m == "aligned":
                return np.eye(3)
            return _random_rotation(_rng(self.config.seed, _SALT_MOUNT, self._sensor_id(placement)))
        return np.asarray(m.get(placement, np.eye(3)), dtype=np.float64)

    def _bias(self, placement: str) -> FloatArray | None:
        if not self.has_gyro(placement):
            return None
        rng = _rng(self.config.seed, _SALT_BIAS, self._sensor_id(placement))
        return rng.uniform(-1.0, 1.0, 3) * self.config.gyr_bias_dps

    # -- noiseless physics ----------------------------------------------------------
    def segment_euler_deg(self, placement: str, t_s: FloatArray) -> FloatArray:
        """True segment orientation at true times ``t_s``: ZYX (roll, pitch, yaw) in deg.

        For the shoes, pitch here is the Euler angle theta = -foot pitch (toes-up
        positive foot pitch is a negative rotation about the shoe's +y axis).
        """
        t = np.asarray(t_s, dtype=np.float64)
        if placement == "pelvis":
            e, _ = _pelvis_euler(self.config, self._sch, t)
        elif placement in self._feet:
            e = _foot_euler(self._feet[placement], t)[0]
        elif placement == "chest":
            e = np.zeros((t.size, 3))
            e[:, 1] = math.radians(CHEST_LEAN_DEG)
            e[:, 2] = self._sch.turns.heading(t)[0]
        else:
            raise ValueError(f"unknown placement {placement!r}")
        return np.degrees(e)

    def segment_signals(self, placement: str, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Noiseless specific force (m/s^2) and rate (deg/s) in the *segment* frame."""
        t = np.asarray(t_s, dtype=np.float64)
        if placement == "pelvis":
            e, de = _pelvis_euler(self.config, self._sch, t)
            r = _rot_zyx(e[:, 0], e[:, 1], e[:, 2])
            acc = _to_body(r, _com_force_world(self._sch, t))
            gyr = _omega_body(e, de)
        elif placement in self._feet:
            acc, gyr = _foot_signals(self._feet[placement], t)
        elif placement == "chest":
            acc, gyr = self._chest_acc(t), np.zeros((t.size, 3))
        else:
            raise ValueError(f"unknown placement {placement!r}")
        return acc, np.degrees(gyr)

    def _chest_acc(self, t: FloatArray) -> FloatArray:
        # Soft tissue: a continuous-time Gaussian FIR over the COM force, so the result
        # does not depend on the sampling rate or on how the run is chunked.
        offsets = np.linspace(-2.5, 2.5, CHEST_SMOOTH_TAPS) * CHEST_SMOOTH_SIGMA_S
        weights = np.exp(-0.5 * (offsets / CHEST_SMOOTH_SIGMA_S) ** 2)
        weights /= weights.sum()
        f = np.zeros((t.size, 3))
        for dt, w in zip(offsets, weights, strict=True):
            f += w * _com_force_world(self._sch, t + dt, impact_scale=CHEST_IMPACT_SCALE)
        lean = math.radians(CHEST_LEAN_DEG)
        if self._sch.turns.start.size:
            h, _, _ = self._sch.turns.heading(t)
            r = _rot_zyx(np.zeros(t.size), np.full(t.size, lean), h)
            return _to_body(r, f)
        r = _rot_zyx(np.zeros(1), np.array([lean]), np.zeros(1))[0]
        return f @ r  # R^T f for each row

    def ideal_signals(
        self, placement: str, t_s: FloatArray
    ) -> tuple[FloatArray, FloatArray | None]:
        """Noiseless readings in the *sensor* frame (mounting applied, no bias)."""
        acc, gyr = self.segment_signals(placement, t_s)
        m = self.mounting[placement]
        # Rows are vectors: (M^T v)^T = v^T M.
        return acc @ m, (gyr @ m if self.has_gyro(placement) else None)

    # -- sampled stream --------------------------------------------------------------
    @property
    def n_chunks(self) -> int:
        return -(-self.n_samples // self.chunk_samples)

    def chunks(self) -> Iterator[Chunk]:
        """About 1 s per sensor per chunk, interleaved: A 0, B 0, ..., A 1, B 1, ...

        Generated lazily in small blocks; the same chunks, bit for bit, on every call.
        """
        losses = {p: self._loss(p) for p in self.placements}
        for b0 in range(0, self.n_chunks, _BLOCK_CHUNKS):
            b1 = min(b0 + _BLOCK_CHUNKS, self.n_chunks)
            blocks = [self._block(p, b0, b1, losses[p]) for p in self.placements]
            for i in range(b1 - b0):
                for block in blocks:
                    chunk = block[i]
                    if chunk is not None:
                        yield chunk

    def _loss(self, placement: str) -> _BurstLoss:
        rng = _rng(self.config.seed, _SALT_LOSS, self._sensor_id(placement))
        return _BurstLoss(self.config.loss_pct, rng)

    def _block(self, placement: str, c0: int, c1: int, loss: _BurstLoss) -> list[Chunk | None]:
        cs = self.chunk_samples
        n0, n1 = c0 * cs, min(c1 * cs, self.n_samples)
        t = np.arange(n0, n1, dtype=np.float64) / self.fs_hz
        acc, gyr = self.ideal_signals(placement, t)
        out: list[Chunk | None] = []
        for i in range(c0, c1):
            a, b = i * cs - n0, min((i + 1) * cs, n1) - n0
            out.append(
                self._chunk(placement, i, t[a:b], acc[a:b], None if gyr is None else gyr[a:b], loss)
            )
        return out

    def _chunk(
        self,
        placement: str,
        index: int,
        t: FloatArray,
        acc: FloatArray,
        gyr: FloatArray | None,
        loss: _BurstLoss,
    ) -> Chunk | None:
        cfg = self.config
        rng = _rng(cfg.seed, _SALT_NOISE, self._sensor_id(placement), index)
        acc = acc + rng.standard_normal(acc.shape) * cfg.acc_noise_mps2
        if gyr is not None:
            bias = self.gyr_bias_dps[placement]
            assert bias is not None
            gyr = gyr + rng.standard_normal(gyr.shape) * cfg.gyr_noise_dps + bias
        ps = cfg.packet_samples
        keep = np.repeat(loss.keep(-(-t.size // ps)), ps)[: t.size]
        if not keep.any():
            return None
        t_out = t[keep] + cfg.clock_offset_s.get(placement, 0.0)
        return Chunk(
            placement,
            t_out,
            acc[keep],
            None if gyr is None else gyr[keep],
            device_id=f"sim-{placement}",
        )

    # -- truth and metadata --------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return self._sch.n

    @cached_property
    def truth(self) -> list[dict[str, Any]]:
        """One dict per step (keys ``TRUTH_COLUMNS``); ``None`` where undefined."""
        return _truth_rows(self.config, self._sch)

    @cached_property
    def achieved_loss_pct(self) -> dict[str, float]:
        """Share of samples dropped per sensor (same random stream as ``chunks``)."""
        out = {}
        ps = self.config.packet_samples
        n_packets = -(-self.n_samples // ps)
        short_last = ps * n_packets - self.n_samples  # the last packet may be partial
        for p in self.placements:
            keep = self._loss(p).keep(n_packets)
            lost = ps * int(np.count_nonzero(~keep)) - (0 if keep[-1] else short_last)
            out[p] = 100.0 * lost / self.n_samples
        return out

    @cached_property
    def meta(self) -> dict[str, Any]:
        cfg = self.config
        sch = self._sch
        return {
            "generator": "hipstride.sensors.simulator",
            "seed": cfg.seed,
            "config": cfg.as_dict(),
            "placements": list(self.placements),
            "fs_hz": self.fs_hz,
            "duration_s": cfg.total_s,
            "run_start_s": sch.run_start,
            "first_ic_s": float(sch.ic[2]),
            "last_landing_s": float(sch.ic[sch.n + 3]),
            "n_steps": sch.n,
            "n_samples": self.n_samples,
            "chunk_samples": self.chunk_samples,
            "mounting": {p: m.tolist() for p, m in self.mounting.items()},
            "gyr_bias_dps": {
                p: (None if b is None else b.tolist()) for p, b in self.gyr_bias_dps.items()
            },
            "clock_offset_s": {p: cfg.clock_offset_s.get(p, 0.0) for p in self.placements},
            "achieved_loss_pct": self.achieved_loss_pct,
            "accel_only": [p for p in self.placements if not self.has_gyro(p)],
        }


def simulate(config: SimConfig | None = None) -> Simulation:
    """Build a simulated run (cheap: samples are generated when ``chunks()`` is iterated)."""
    return Simulation(config if config is not None else SimConfig())


# ---------------------------------------------------------------------------------
# Truth
# ---------------------------------------------------------------------------------
def _truth_rows(cfg: SimConfig, sch: _Schedule) -> list[dict[str, Any]]:
    js = np.arange(2, sch.n + 2)
    ic, c = sch.ic[js], sch.contact[js]
    prev_ic = sch.ic[js - 1]
    prev_to = sch.to[js - 1]
    prev2_ic = sch.ic[js - 2]
    vo = _vertical_oscillation_cm(sch)
    dist = _distance(sch)
    rows = []
    for i, j in enumerate(js):
        step_ms = (ic[i] - prev_ic[i]) * 1000.0 if i >= 1 else None
        stride_ms = (ic[i] - prev2_ic[i]) * 1000.0 if i >= 2 else None
        walk = bool(sch.walk[j])
        rows.append(
            {
                "step": i,
                "side": "left" if sch.side[j] > 0 else "right",
                "ic_s": float(ic[i]),
                "to_s": float(ic[i] + c[i]),
                "contact_ms": float(c[i] * 1000.0),
                # walking has no flight (the previous foot leaves after this contact)
                "flight_ms": (
                    float((ic[i] - prev_to[i]) * 1000.0) if i >= 1 and not walk else None
                ),
                "step_ms": None if step_ms is None else float(step_ms),
                "stride_ms": None if stride_ms is None else float(stride_ms),
                "cadence_spm": None if step_ms is None else float(60000.0 / step_ms),
                "duty_factor": None if stride_ms is None else float(c[i] * 1000.0 / stride_ms),
                "pelvic_drop_deg": float(sch.drop_deg[j]),
                "vertical_oscillation_cm": float(vo[i]),
                "speed_mps": float(sch.speed[j]),
                "stride_length_m": (None if stride_ms is None else float(dist[j] - dist[j - 2])),
                "gait": "walk" if walk else "run",
            }
        )
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".12g")
    return str(value)


def write_truth_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(TRUTH_COLUMNS)
        for row in rows:
            w.writerow([_cell(row[k]) for k in TRUTH_COLUMNS])


def truth_paths(path: str | Path) -> tuple[Path, Path]:
    """``<path without suffix>.truth.csv`` and ``.truth.json``."""
    base = Path(path).with_suffix("")
    return base.with_name(base.name + ".truth.csv"), base.with_name(base.name + ".truth.json")


def write_simulation(
    config: SimConfig, path: str | Path, kind: Kind | None = None
) -> dict[str, Any]:
    """Write the recording (via ``sensors.recording``) and its truth beside it.

    ``kind`` None: CSV for a ``.csv`` name, else native. Returns a summary: files
    written, steps, duration and achieved loss per sensor.
    """
    # Imported here so the simulator itself works without the recording formats.
    from sensors.recording import io_errors, kind_for_path, open_writer

    path = Path(path)
    kind = kind or kind_for_path(path)
    sim = simulate(config)
    meta = sim.meta
    with open_writer(path, kind, meta={"source": "hipstride simulate", "simulation": meta}) as w:
        for chunk in sim.chunks():
            w.write(chunk)
    truth_csv, truth_json = truth_paths(path)
    with io_errors(truth_csv, "write"):
        write_truth_csv(sim.truth, truth_csv)
    with io_errors(truth_json, "write"):
        truth_json.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return {
        "recording": str(path),
        "kind": kind,
        "truth_csv": str(truth_csv),
        "truth_json": str(truth_json),
        "steps": sim.n_steps,
        "duration_s": config.total_s,
        "achieved_loss_pct": meta["achieved_loss_pct"],
    }
