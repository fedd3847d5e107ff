"""Recording formats: CSV rows/s and native samples/s, read and write, and file sizes.

    .venv/bin/python bench/bench_recording.py [--minutes 60] [--decimals 4] [--repeat 2]

Data: the simulator's run (3 sensors at 200 Hz, 1 h by default = 2.16 M rows),
rounded to ``--decimals`` like a real export (``--decimals -1``: full precision).
Each figure is the best of ``--repeat`` runs, in wall time and in CPU time of this
process (the CPU figure is the steadier one on a shared machine). Not a test.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sensors.model import Chunk
from sensors.recording import Kind, open_recording, open_writer


def simulated_chunks(minutes: float, decimals: int) -> list[Chunk]:
    """The simulator's chunks (10-sample packets, sensors interleaved), rounded."""
    from sensors.simulator import SimConfig, simulate

    sim = simulate(SimConfig(duration_s=60.0 * minutes, seed=1))
    if decimals < 0:
        return list(sim.chunks())
    out = []
    for c in sim.chunks():
        gyr = None if c.gyr_dps is None else np.round(c.gyr_dps, decimals)
        t = np.round(c.t_s, 6)
        out.append(Chunk(c.placement, t, np.round(c.acc_mps2, decimals), gyr, c.device_id))
    return out


def best_of(repeat: int, action: Callable[[], object]) -> tuple[float, float]:
    """Fastest ``(wall_s, cpu_s)`` over ``repeat`` runs."""
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        action()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e3:7,.0f} k"


def write(path: Path, kind: Kind, chunks: list[Chunk]) -> None:
    # fsync only on close, as `hipstride convert` does: we time the format, not the disk.
    with open_writer(path, kind, fsync_every_s=None) as writer:
        for chunk in chunks:
            writer.write(chunk)


def read(path: Path) -> int:
    chunks: Iterator[Chunk] = open_recording(path).chunks()
    return sum(len(chunk) for chunk in chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--decimals", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    chunks = simulated_chunks(args.minutes, args.decimals)
    n = sum(len(c) for c in chunks)
    sensors = sorted({c.placement for c in chunks})
    precision = "full precision" if args.decimals < 0 else f"{args.decimals} decimals"
    print(f"{n:,} samples ({', '.join(sensors)}; {args.minutes:g} min at 200 Hz, {precision})")
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {}
        kinds: tuple[tuple[Kind, str, str], ...] = (
            ("csv", "run.csv", "rows"),
            ("native", "run.hsr", "samples"),
        )
        for kind, name, unit in kinds:
            path = Path(tmp) / name
            w_wall, w_cpu = best_of(args.repeat, functools.partial(write, path, kind, chunks))
            r_wall, r_cpu = best_of(args.repeat, functools.partial(read, path))
            assert read(path) == n
            sizes[kind] = path.stat().st_size
            print(
                f"{kind:6}  write {rate(n, w_wall)} {unit}/s (cpu {rate(n, w_cpu)})"
                f"   read {rate(n, r_wall)} {unit}/s (cpu {rate(n, r_cpu)})"
                f"   {sizes[kind] / 1e6:7.1f} MB, {sizes[kind] / n:.1f} bytes/sample"
            )
        print(f"native / CSV size: {100 * sizes['native'] / sizes['csv']:.1f}%")


if __name__ == "__main__":
    main()
