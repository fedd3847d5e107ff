"""Live processing of many athletes from one stream of raw packets.

Packets arrive interleaved from every athlete on the broker. Each athlete gets its own
bounded queue and its own thread running ``runner(athlete, chunks)`` (in ``run``: a
Pipeline driven into that athlete's sinks), so athletes never share state and each
sees its chunks in arrival order. An athlete's stream ends when every sensor it used
has sent its end-of-stream marker, or when the router stops.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sensors.model import PLACEMENTS, Chunk
from sensors.mqtt_codec import RawPacket

log = logging.getLogger("hipstride.live")

Runner = Callable[[str, Iterator[Chunk]], Any]
_END = object()


class _Stream:
    def __init__(self, athlete: str, maxsize: int, previous: _Stream | None) -> None:
        self.athlete = athlete
        # Bounded: a pipeline that cannot keep up pushes back on paho, hence the broker,
        # instead of growing memory for ever.
        self.queue: queue.Queue[Any] = queue.Queue(maxsize)
        self.seen: set[str] = set()
        self.ended: set[str] = set()
        self.finished = False
        self.previous = previous
        self.thread: threading.Thread | None = None

    def chunks(self) -> Iterator[Chunk]:
        while (item := self.queue.get()) is not _END:
            yield item

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.queue.put(_END)


class AthleteRouter:
    """Routes ``(athlete, packet)`` to per-athlete runner threads (see module doc)."""

    def __init__(self, runner: Runner, *, queue_size: int = 1000) -> None:
        self._runner = runner
        self._queue_size = queue_size
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._all: list[_Stream] = []
        #: athlete -> runner's return value (the last session's, if several)
        self.results: dict[str, Any] = {}
        self.errors: dict[str, BaseException] = {}

    def on_packet(self, athlete: str, packet: RawPacket) -> None:
        with self._lock:
            stream = self._streams.get(athlete)
            if stream is None or stream.finished:
                # A new athlete, or a new session of one whose stream ended.
                stream = self._start(athlete, previous=stream)
        placement = packet.chunk.placement
        if packet.end:
            stream.ended.add(placement)
            if stream.ended >= stream.seen:
                stream.finish()
        else:
            stream.seen.add(placement)
            stream.queue.put(packet.chunk)

    def _start(self, athlete: str, previous: _Stream | None) -> _Stream:
        stream = _Stream(athlete, self._queue_size, previous)
        stream.thread = threading.Thread(
            target=self._run, args=(stream,), name=f"athlete-{athlete}", daemon=True
        )
        self._streams[athlete] = stream
        self._all.append(stream)
        stream.thread.start()
        return stream

    def _run(self, stream: _Stream) -> None:
        if stream.previous is not None and stream.previous.thread is not None:
            stream.previous.thread.join()  # its sinks hold the athlete's spool directories
        stream.previous = None  # no chain of every past session in memory
        try:
            self.results[stream.athlete] = self._runner(stream.athlete, stream.chunks())
        except Exception as err:
            self.errors[stream.athlete] = err
            log.exception("athlete %s: processing failed", stream.athlete)
            for _ in stream.chunks():  # drain so the source never blocks on a dead thread
                pass

    @property
    def athletes(self) -> list[str]:
        with self._lock:
            return sorted(self._streams)

    def all_done(self) -> bool:
        """At least one athlete seen, and every stream ended and processed."""
        with self._lock:
            streams = list(self._all)
        return bool(streams) and all(
            s.finished and s.thread is not None and not s.thread.is_alive() for s in streams
        )

    def stop(self, timeout: float = 30.0) -> None:
        """End every stream now and wait for the runners to flush and close their sinks."""
        with self._lock:
            streams = list(self._all)
        for s in streams:
            s.finish()
        deadline = time.monotonic() + timeout
        for s in streams:
            if s.thread is not None:
                s.thread.join(max(0.0, deadline - time.monotonic()))


def discover_placements(
    chunks: Iterator[Chunk], window_s: float, declared: tuple[str, ...] | None = None
) -> tuple[tuple[str, ...], float | None, Iterator[Chunk]]:
    """The sensors that send within the first ``window_s`` of sample time (or ``declared``).

    Returns the placements, the first sample time, and an iterator over every chunk
    (the buffered ones first); chunks of any other sensor are dropped with a warning,
    since a Pipeline's sensors are fixed when it starts.
    """
    buffered: list[Chunk] = []
    first_t: float | None = None
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        buffered.append(chunk)
        first_t = float(chunk.t_s[0]) if first_t is None else min(first_t, float(chunk.t_s[0]))
        if declared or float(chunk.t_s[-1]) - first_t >= window_s:
            break
    seen = set(declared) if declared else {c.placement for c in buffered}
    placements = tuple(p for p in PLACEMENTS if p in seen)

    def rest() -> Iterator[Chunk]:
        warned: set[str] = set()
        for chunk in itertools.chain(buffered, chunks):
            if chunk.placement in seen:
                yield chunk
            elif chunk.placement not in warned:
                warned.add(chunk.placement)
                log.warning("sensor %s was not declared or discovered; ignored", chunk.placement)

    return placements, first_t, rest()
