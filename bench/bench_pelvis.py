"""What pelvis orientation costs the pipeline (one core), and what a per-sample AHRS would.

    python -m bench.bench_pelvis [--minutes 5] [--repeats 5] [--fs 200]

Measures, on the same simulated run (pelvis + both shoes, random mounting, 2 % loss),
CPU time per second of recorded data, the minimum over ``--repeats`` interleaved runs
(a shared machine's noise only ever adds time):

* the whole pipeline with the pelvis tracker and without it (trackers disabled): the
  difference is what pelvis angles cost;
* the tracker alone, split into ``push`` (strapdown, every sample) and ``enrich`` (per
  stance);
* x-io's imufusion AHRS updated once per sample from Python, the alternative the
  tracker's design avoids (``docs/pelvis.md``).

"1000x real time" means at most 1 ms of CPU per second of data for all three sensors.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import pipeline.engine as engine
from pipeline.engine import Pipeline, run_all
from pipeline.records import StepRecord
from pipeline.stages.pelvis import PelvisTracker
from pipeline.stages.stance import Stance
from sensors.model import Chunk
from sensors.simulator import SimConfig, simulate


def cpu(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def measure(minutes: float, fs_hz: float, repeats: int) -> dict[str, float]:
    cfg = SimConfig(duration_s=minutes * 60.0, fs_hz=fs_hz, loss_pct=2.0, seed=1)
    sim = simulate(cfg)
    chunks = list(sim.chunks())
    pelvis = [c for c in chunks if c.placement == "pelvis"]
    steps = [r for r in run_all(Pipeline(sim.placements), chunks) if r.kind == "step"]
    pairs = [
        (
            Stance(s.side, s.ic_s, s.to_s, s.source),
            StepRecord(
                s.side, s.ic_s, s.to_s, s.contact_ms, step_ms=s.step_ms, stride_ms=s.stride_ms
            ),
        )
        for s in steps
    ]
    real = engine.make_trackers

    def pipeline_with() -> None:
        engine.make_trackers = real
        run_all(Pipeline(sim.placements), chunks)

    def pipeline_without() -> None:
        engine.make_trackers = lambda *a, **k: []
        try:
            run_all(Pipeline(sim.placements), chunks)
        finally:
            engine.make_trackers = real

    def tracker_push() -> PelvisTracker:
        trk = PelvisTracker(fs_hz)
        for c in pelvis:
            trk.push(c)
        return trk

    def tracker_all() -> None:
        trk = PelvisTracker(fs_hz)
        i = 0
        for c in pelvis:
            trk.push(c)
            while i < len(pairs) and pairs[i][0].to_s < trk.complete_until_s:
                trk.enrich(*pairs[i])
                i += 1
        trk.flush()
        for p in pairs[i:]:
            trk.enrich(*p)

    with_s = without_s = push_s = all_s = float("inf")
    for _ in range(repeats):  # interleaved, so slow phases of a busy machine hit both
        with_s = min(with_s, cpu(pipeline_with, 1))
        without_s = min(without_s, cpu(pipeline_without, 1))
        push_s = min(push_s, cpu(tracker_push, 1))
        all_s = min(all_s, cpu(tracker_all, 1))
    data_s = cfg.total_s
    return {
        "data_s": data_s,
        "steps": float(len(steps)),
        "with_ms_per_s": 1e3 * with_s / data_s,
        "without_ms_per_s": 1e3 * without_s / data_s,
        "push_ms_per_s": 1e3 * push_s / data_s,
        "tracker_ms_per_s": 1e3 * all_s / data_s,
        "enrich_us_per_step": 1e6 * (all_s - push_s) / max(len(steps), 1),
        "ahrs_us_per_sample": ahrs_per_sample(pelvis, fs_hz),
    }


def ahrs_per_sample(pelvis: list[Chunk], fs_hz: float) -> float:
    """imufusion, fed sample by sample from Python and read back: µs per sample."""
    import imufusion

    c = Chunk.concat(pelvis)
    n = min(len(c), 60_000)
    gyr = np.ascontiguousarray(c.gyr_dps[:n]) if c.gyr_dps is not None else np.zeros((n, 3))
    acc = np.ascontiguousarray(c.acc_mps2[:n] / 9.80665)
    ahrs = imufusion.Ahrs()
    ahrs.set_settings(imufusion.AhrsSettings(sample_rate=fs_hz, gain=0.5))
    out = np.empty((n, 4))

    def loop() -> None:
        for i in range(n):
            ahrs.update_no_magnetometer(gyr[i], acc[i])
            out[i] = ahrs.get_quaternion()

    return 1e6 * cpu(loop, 3) / n


def report(r: dict[str, float], fs_hz: float) -> str:
    pelvis_cost = r["with_ms_per_s"] - r["without_ms_per_s"]
    ahrs = r["ahrs_us_per_sample"] * fs_hz / 1e3

    def row(label: str, ms: float) -> str:
        return f"  {label:<34}{ms:.3f} ms  ({1e3 / ms:.0f}x real time)"

    lines = [
        f"pelvis + both shoes at {fs_hz:g} Hz, {r['data_s']:.0f} s of data, {r['steps']:.0f} steps"
        " (CPU ms per second of data; 1000x real time = 1 ms)",
        row("pipeline with the pelvis tracker", r["with_ms_per_s"]),
        row("pipeline without it", r["without_ms_per_s"]),
        f"  {'difference (pelvis angles)':<34}{pelvis_cost:.3f} ms",
        row("pelvis tracker alone", r["tracker_ms_per_s"]),
        f"  {'  of which push (strapdown)':<34}{r['push_ms_per_s']:.3f} ms;"
        f" enrich {r['enrich_us_per_step']:.0f} µs per step",
        f"  {'imufusion, per sample from Python':<34}{ahrs:.3f} ms"
        f" ({r['ahrs_us_per_sample']:.2f} µs a sample; orientation only, one sensor)",
        f"  {'left for the rest at 1000x':<34}{1.0 - r['tracker_ms_per_s']:.3f} ms",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fs", type=float, default=200.0)
    args = ap.parse_args()
    print(report(measure(args.minutes, args.fs, args.repeats), args.fs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
