"""``hipstride simulate``: write a simulated run and its per-step truth.

The recording goes to OUT (CSV for a ``.csv`` name, else native); the truth goes beside
it as ``<OUT without suffix>.truth.csv`` and ``.truth.json``. The model and every
truth column are described in ``docs/simulator.md``.
"""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_SENSORS = "pelvis,left_foot,right_foot"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="write a simulated run (IMU recording + per-step truth)",
        description="Simulate a runner wearing IMUs and write the recording and its truth.",
    )
    p.add_argument("out", metavar="OUT", help="recording to write (.csv: CSV, else native)")
    gait = p.add_argument_group("the run")
    gait.add_argument("--duration-s", type=float, default=120.0, help="running time (120)")
    gait.add_argument("--fs-hz", type=float, default=200.0, help="sampling rate (200)")
    gait.add_argument("--cadence-spm", type=float, default=170.0, help="steps/min (170)")
    gait.add_argument(
        "--contact-ms", type=float, nargs=2, metavar=("L", "R"), default=[250.0, 250.0]
    )
    gait.add_argument("--hip-drop-deg", type=float, nargs=2, metavar=("L", "R"), default=[5.0, 5.0])
    gait.add_argument(
        "--hip-drop-drift-deg", type=float, nargs=2, metavar=("L", "R"), default=[0.0, 0.0]
    )
    gait.add_argument(
        "--contact-drift-ms", type=float, nargs=2, metavar=("L", "R"), default=[0.0, 0.0]
    )
    gait.add_argument("--cadence-drift-spm", type=float, default=0.0)
    gait.add_argument(
        "--drift-start-s", type=float, default=0.0, help="drift starts this long into the run"
    )
    gait.add_argument("--speed-mps", type=float, default=3.3)
    gait.add_argument("--step-cv", type=float, default=0.01, help="step-to-step variability")
    gait.add_argument("--standing-s", type=float, default=0.0, help="still before running")
    gait.add_argument("--standing-end-s", type=float, default=0.0, help="still after running")
    dev = p.add_argument_group("the sensors")
    dev.add_argument(
        "--sensors",
        default=DEFAULT_SENSORS,
        help=f"comma-separated placements ({DEFAULT_SENSORS}; chest also possible)",
    )
    dev.add_argument("--accel-only", default="", help="comma-separated placements without gyro")
    dev.add_argument("--mounting", choices=("random", "aligned"), default="random")
    dev.add_argument("--loss-pct", type=float, default=0.0, help="bursty packet loss (0)")
    dev.add_argument(
        "--noise",
        type=float,
        default=1.0,
        help="scale of sensor noise and gyro bias (1 = realistic, 0 = ideal sensors)",
    )
    dev.add_argument(
        "--clock-offset-ms",
        action="append",
        default=[],
        metavar="PLACEMENT=MS",
        help="add MS to that sensor's timestamps (repeatable)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _placements(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _clock_offsets(items: list[str]) -> dict[str, float]:
    from pipeline.cli import UsageError

    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value) / 1000.0
        except ValueError:
            raise UsageError(
                f"--clock-offset-ms expects PLACEMENT=MS (e.g. left_foot=12.5), got {item!r}"
            ) from None
    return out


def _config(args: argparse.Namespace) -> Any:
    from sensors.simulator import SimConfig

    if args.noise < 0:
        raise ValueError(f"--noise must be >= 0, got {args.noise}")
    base = SimConfig.__dataclass_fields__  # the documented defaults, scaled by --noise
    return SimConfig(
        duration_s=args.duration_s,
        fs_hz=args.fs_hz,
        cadence_spm=args.cadence_spm,
        contact_ms=tuple(args.contact_ms),
        hip_drop_deg=tuple(args.hip_drop_deg),
        hip_drop_drift_deg=tuple(args.hip_drop_drift_deg),
        contact_drift_ms=tuple(args.contact_drift_ms),
        cadence_drift_spm=args.cadence_drift_spm,
        drift_start_s=args.drift_start_s,
        speed_mps=args.speed_mps,
        step_cv=args.step_cv,
        standing_s=args.standing_s,
        standing_end_s=args.standing_end_s,
        sensors=_placements(args.sensors),
        accel_only=_placements(args.accel_only),
        mounting=args.mounting,
        acc_noise_mps2=base["acc_noise_mps2"].default * args.noise,
        gyr_noise_dps=base["gyr_noise_dps"].default * args.noise,
        gyr_bias_dps=base["gyr_bias_dps"].default * args.noise,
        loss_pct=args.loss_pct,
        clock_offset_s=_clock_offsets(args.clock_offset_ms),
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.cli import UsageError
    from sensors.simulator import write_simulation

    try:
        config = _config(args)
    except ValueError as err:
        raise UsageError(str(err)) from None
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist")
    info = write_simulation(config, out)
    loss = ", ".join(f"{p} {v:.1f}%" for p, v in info["achieved_loss_pct"].items())
    print(
        f"simulated {info['steps']} steps in {info['duration_s']:g} s"
        f" (loss: {loss}); wrote {info['recording']}, {info['truth_csv']},"
        f" {info['truth_json']}"
    )
    return 0
