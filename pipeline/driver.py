"""Feeds a source of chunks through a :class:`Pipeline` into sinks.

The same loop serves replay (as fast as possible), ``--speed 1`` replay and live
collection: only the source and the pacing differ. Pacing is the one place that uses
the wall clock, and it only decides *when* a chunk is pushed, never what comes out.
"""

from __future__ import annotations

import heapq
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pipeline.engine import Pipeline, Record
from pipeline.sinks.base import Sink
from sensors.model import Chunk

#: In paced mode chunks are cut to this length so a step is out soon after its toe-off.
LIVE_PIECE_S = 0.02


@dataclass(slots=True)
class DriveResult:
    summary: dict[str, Any]
    steps: int
    interrupted: bool
    wall_s: float
    data_s: float


class StopFlag:
    """Set by the first Ctrl-C so the run ends at a clean point; a second one forces."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped


@contextmanager
def graceful_interrupt() -> Iterator[StopFlag]:
    """Turn SIGINT into a flag for the duration of a run (main thread only).

    A KeyboardInterrupt can land anywhere, even inside a sink's write; a flag checked
    between chunks lets the pipeline flush and write its summary every time.
    """
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag.stopped:
            raise KeyboardInterrupt
        flag.stopped = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def interleave(
    chunks: Iterable[Chunk],
    placements: Sequence[str],
    piece_s: float = 1.0,
    max_held_s: float = 300.0,
) -> Iterator[Chunk]:
    """Re-order a recording's chunks so that all sensors advance together in time.

    Readers yield each sensor's samples in order but may hand out long stretches of one
    sensor before the next (a CSV batch, a native file written sensor by sensor). The
    pipeline is correct either way, but holds back output until every sensor catches up;
    this k-way merge by time (pieces of ``piece_s``) keeps that wait, and the memory it
    takes, small. A sensor that is declared but silent holds the merge back for at most
    ``max_held_s`` of the others' data.
    """
    heap: list[tuple[float, int, Chunk]] = []
    seen_end = {p: float("-inf") for p in placements}
    seq = 0
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        step = max(1, round(piece_s / _period(chunk)))
        for piece in chunk.split(step):
            heapq.heappush(heap, (float(piece.t_s[0]), seq, piece))
            seq += 1
        seen_end[chunk.placement] = float(chunk.t_s[-1])
        newest = max(seen_end.values())
        ready = min(seen_end.values())
        while heap and (heap[0][0] <= ready or heap[0][0] < newest - max_held_s):
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]


def paced(
    chunks: Iterable[Chunk],
    speed: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Chunk]:
    """Yield chunks no faster than ``speed`` x real time (by their sample times)."""
    start_wall: float | None = None
    start_t: float | None = None
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        step = max(1, round(LIVE_PIECE_S / _period(chunk)))
        for piece in chunk.split(step):
            if start_wall is None or start_t is None:
                start_wall, start_t = clock(), float(piece.t_s[0])
            due = start_wall + (float(piece.t_s[-1]) - start_t) / speed
            delay = due - clock()
            if delay > 0:
                sleep(delay)
            yield piece


def _period(chunk: Chunk) -> float:
    if len(chunk) < 2:
        return LIVE_PIECE_S
    return float((chunk.t_s[-1] - chunk.t_s[0]) / (len(chunk) - 1)) or LIVE_PIECE_S


def drive(
    chunks: Iterable[Chunk],
    pipeline: Pipeline,
    sinks: Sequence[Sink] = (),
    *,
    speed: float | None = None,
    summary_every_s: float = 5.0,
    on_records: Callable[[list[Record]], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DriveResult:
    """Run the pipeline over ``chunks`` until they end or Ctrl-C; always close sinks.

    A rolling summary record goes to the sinks every ``summary_every_s`` of sample time
    (for live dashboards); the final one, with ``final: true``, at the end.
    """
    source = paced(chunks, speed) if speed else chunks
    wall0 = time.monotonic()
    next_summary_s: float | None = None
    interrupted = False
    last_t = 0.0
    try:
        for chunk in source:
            records = pipeline.push(chunk)
            last_t = float(chunk.t_s[-1]) if len(chunk) else last_t
            if next_summary_s is None:
                next_summary_s = last_t + summary_every_s
            if records:
                _emit(records, sinks, on_records)
            if last_t >= next_summary_s:
                _emit_summary(pipeline, sinks, final=False, time_s=next_summary_s)
                while next_summary_s <= last_t:
                    next_summary_s += summary_every_s
            if on_progress is not None:
                on_progress(last_t)
            if should_stop is not None and should_stop():
                interrupted = True
                break
    except KeyboardInterrupt:
        interrupted = True
    try:
        records = pipeline.flush()
        if records:
            _emit(records, sinks, on_records)
        summary = pipeline.summary_dict()
        summary["interrupted"] = interrupted
        for sink in sinks:
            sink.add([dict(summary, final=True, time_s=last_t)])
    finally:
        for sink in sinks:
            sink.close()
    return DriveResult(
        summary=summary,
        steps=summary["steps"],
        interrupted=interrupted,
        wall_s=time.monotonic() - wall0,
        data_s=pipeline.duration_s() or 0.0,
    )


def _emit(
    records: list[Record],
    sinks: Sequence[Sink],
    on_records: Callable[[list[Record]], None] | None,
) -> None:
    if on_records is not None:
        on_records(records)
    if sinks:
        dicts = [r.as_dict() for r in records]
        for sink in sinks:
            sink.add(dicts)


def _emit_summary(pipeline: Pipeline, sinks: Sequence[Sink], *, final: bool, time_s: float) -> None:
    if not sinks:
        return
    summary = pipeline.summary_dict()
    summary.update(final=final, time_s=time_s)
    for sink in sinks:
        sink.add([summary])
