"""Replay speed and peak memory for a 1-hour run of pelvis + both shoes at 200 Hz.

    python -m bench.bench_replay [--minutes 60] [--csv] [--cache DIR]

Reports, each measured in a fresh subprocess (peak RSS of that process):
* ``replay`` of the native recording end to end (read + pipeline + files), as a multiple
  of real time;
* the pipeline alone on chunks already in memory (one core);
* optionally ``replay`` of the same run as CSV.
The recording is simulated once and cached (default /tmp/hipstride-bench).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PIPELINE_ONLY = """
import json, resource, sys, time
from sensors.recording import open_recording
from pipeline.driver import interleave
from pipeline.engine import Pipeline, run_all
rec = open_recording(sys.argv[1])
chunks = list(interleave(rec.chunks(), rec.placements))
t0 = time.perf_counter()
out = run_all(Pipeline(rec.placements), chunks)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "steps": sum(1 for r in out if r.kind == "step"),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def ensure_recording(cache: Path, minutes: float, kind: str) -> Path:
    from sensors.simulator import SimConfig, write_simulation

    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"run-{minutes:g}min.{'csv' if kind == 'csv' else 'hsr'}"
    if not path.exists():
        t0 = time.perf_counter()
        cfg = SimConfig(duration_s=minutes * 60, fs_hz=200.0, mounting="random", loss_pct=1.0)
        write_simulation(cfg, path)
        print(f"simulated {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def run_replay(path: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pipeline", "replay", str(path), "--out", out, "--quiet"],
            check=True,
        )
        wall = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall_s": wall, "rss_mb": max(rss, before) / 1024}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--csv", action="store_true", help="also time the CSV replay")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "hipstride-bench")
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args()
    data_s = args.minutes * 60
    native = ensure_recording(args.cache, args.minutes, "native")
    results: dict[str, dict[str, float]] = {}
    results["replay_native"] = run_replay(native)
    proc = subprocess.run(
        [sys.executable, "-c", PIPELINE_ONLY, str(native)],
        check=True,
        capture_output=True,
        text=True,
    )
    results["pipeline_only"] = json.loads(proc.stdout)
    if args.csv:
        results["replay_csv"] = run_replay(ensure_recording(args.cache, args.minutes, "csv"))
    size_mb = native.stat().st_size / 1e6
    print(f"{args.minutes:g} min of pelvis + left/right shoe at 200 Hz ({size_mb:.1f} MB native)")
    print(f"{'case':16s} {'wall s':>8s} {'x real time':>12s} {'peak RSS MB':>12s}")
    for name, r in results.items():
        r["x_real_time"] = data_s / r["wall_s"]
        print(f"{name:16s} {r['wall_s']:8.2f} {r['x_real_time']:12.0f} {r['rss_mb']:12.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
