"""Shared pieces of the throughput benchmark (``python -m bench.bench_pipeline``).

The run (pelvis + both shoes, random mounting, 1 % bursty loss) is simulated once and
cached; the chunks (about one second per sensor, interleaved by time, as a replay
delivers them) are held in memory and ``run_all`` is timed on one core. The breakdown
times each stage's entry points (contact detectors, metric trackers, fusion and the
rest) in a second, instrumented pass, so the total there is a little higher.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.engine import Pipeline, run_all
from sensors.model import Chunk
from sensors.simulator import SimConfig, simulate


def load_chunks(minutes: float, fs_hz: float, cache: Path) -> tuple[list[Chunk], tuple[str, ...]]:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"run-{minutes:g}min-{fs_hz:g}hz.npz"
    placements = ("pelvis", "left_foot", "right_foot")
    if not path.exists():
        t0 = time.perf_counter()
        cfg = SimConfig(
            duration_s=minutes * 60, fs_hz=fs_hz, mounting="random", loss_pct=1.0, seed=5
        )
        per: dict[str, list[Chunk]] = defaultdict(list)
        for c in simulate(cfg).chunks():
            per[c.placement].append(c)
        arrays: dict[str, np.ndarray] = {}
        for p, cs in per.items():
            whole = Chunk.concat(cs)
            arrays[f"{p}_t"] = whole.t_s
            arrays[f"{p}_acc"] = whole.acc_mps2
            if whole.gyr_dps is not None:
                arrays[f"{p}_gyr"] = whole.gyr_dps
        np.savez(path, **arrays)
        print(f"simulated {minutes:g} min in {time.perf_counter() - t0:.0f} s -> {path}")
    z = np.load(path)
    chunks: list[Chunk] = []
    n = max(1, round(fs_hz))
    for p in placements:
        gyr = z[f"{p}_gyr"] if f"{p}_gyr" in z.files else None
        chunks.extend(Chunk(p, z[f"{p}_t"], z[f"{p}_acc"], gyr).split(n))
    chunks.sort(key=lambda c: float(c.t_s[0]))
    return chunks, placements


def _timed(obj: Any, name: str, bucket: str, acc: dict[str, float]) -> None:
    fn: Callable[..., Any] = getattr(obj, name)

    def wrapper(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[bucket] += time.perf_counter() - t0

    setattr(obj, name, wrapper)


def breakdown(chunks: list[Chunk], placements: tuple[str, ...]) -> dict[str, float]:
    """Seconds spent per stage (instrumented run)."""
    acc: dict[str, float] = defaultdict(float)
    pl = Pipeline(placements)
    for p in placements:
        _timed(pl.fronts[p], "push", "front ends", acc)
    _timed(pl.assembler, "release", "fusion + enrich + records", acc)
    _timed(pl.alerts, "push", "alerts", acc)
    orig = pl._detector

    def detector(chunk: Chunk) -> Any:
        fresh = chunk.placement not in pl.detectors
        det = orig(chunk)
        if fresh:
            kind = "shoe detectors" if chunk.placement.endswith("_foot") else "trunk detector"
            _timed(det, "push", kind, acc)
            for tr in pl.trackers.get(chunk.placement, []):
                _timed(tr, "push", f"{type(tr).__name__}.push", acc)
                _timed(tr, "enrich", f"{type(tr).__name__}.enrich", acc)
            pl._bind_enrichers()
        return det

    pl._detector = detector  # type: ignore[method-assign]
    t0 = time.perf_counter()
    run_all(pl, chunks)
    acc["total (instrumented)"] = time.perf_counter() - t0
    # enrichment runs inside release: report fusion without it
    enrich = sum(v for k, v in acc.items() if k.endswith(".enrich"))
    acc["fusion + records"] = acc.pop("fusion + enrich + records") - enrich
    return dict(acc)
