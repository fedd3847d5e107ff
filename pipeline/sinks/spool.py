"""Nothing lost: the bounded queue, background sender and disk spool of every network sink.

Every item a sink accepts gets a sequence number. Together, the disk spool (older
items) and the in-memory queue (newer items) form one ordered log; a background thread
sends its oldest unacknowledged prefix in batches and acknowledges by sequence number
only once the server has confirmed a batch. That one rule gives order and no loss
across reconnects, outages and restarts without ever moving an item backwards:

* ``put`` never waits for the network. While the server answers, items go to memory;
  while it does not (or memory is full), memory is moved to the spool and new items are
  appended there, so a process killed during an outage loses nothing.
* A failed batch is simply retried (with backoff) from the same prefix; a sender such
  as MQTT that keeps in-flight messages across reconnects sees the same sequence
  numbers again and can avoid publishing twice.
* ``close(timeout)`` sends what it can in ``timeout`` and moves the rest to the spool;
  the next run with the same spool directory sends it before anything new.

A hard kill while the server *is* reachable loses at most what sits in memory at that
instant (normally less than one batch): writing every item to disk first would cost a
file write per record for a case that ``close`` already covers on a normal exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

DEFAULT_SPOOL_ROOT = Path("~/.cache/hipstride/spool")


class Entry(NamedTuple):
    seq: int
    item: Any


class PermanentError(Exception):
    """The server refused (part of) this batch for good (malformed data): retrying
    cannot help. ``count``: how many items it refused, when known (default: all)."""

    def __init__(self, message: str, count: int | None = None) -> None:
        super().__init__(message)
        self.count = count


class SpoolBusyError(RuntimeError):
    """Another live process uses this spool directory."""


@dataclass(frozen=True, slots=True)
class QueueConfig:
    #: items held in memory before they spill to the spool
    max_queue: int = 10_000
    #: most items per delivery
    batch_size: int = 500
    #: a partial batch waits at most this long for company (0: send at once)
    max_delay_s: float = 0.0
    backoff_min_s: float = 0.2
    backoff_max_s: float = 10.0
    #: spool files roll over at this size so acknowledged ones can be deleted
    segment_bytes: int = 8 * 1024 * 1024


Deliver = Callable[[Sequence[Entry], threading.Event], None]


class DeliveryQueue:
    """Bounded memory queue + disk spool + one sender thread, shared by all sinks.

    ``deliver(entries, abort)`` must return only once the server has accepted every
    entry, raise :class:`PermanentError` to drop a batch the server rejects, or raise
    anything else for "try again later". It should give up soon after ``abort`` is set.
    ``to_json``/``from_json`` convert items for the spool (identity by default).
    """

    def __init__(
        self,
        name: str,
        deliver: Deliver,
        spool_dir: str | Path,
        config: QueueConfig | None = None,
        *,
        to_json: Callable[[Any], Any] = lambda item: item,
        from_json: Callable[[Any], Any] = lambda obj: obj,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.name = name
        self.config = config or QueueConfig()
        self._deliver = deliver
        self._to_json = to_json
        self._from_json = from_json
        self._redact = redact
        self._spool = Spool(Path(spool_dir).expanduser(), self.config.segment_bytes)
        self._cond = threading.Condition()
        self._mem: deque[tuple[int, Any, float]] = deque()
        self._next_seq = self._spool.last_seq + 1
        self._online = True
        self._closing_deadline: float | None = None
        self._stopped = False
        self._abort = threading.Event()
        self._wake = False
        self.sent = 0
        self.rejected = 0
        self.errors = 0
        self.last_error: str | None = None
        if self._spool.pending:
            log.info(
                "%s: %d items left by an earlier run in %s are sent first",
                name,
                self._spool.pending,
                self._spool.dir,
            )
        self._thread = threading.Thread(target=self._run, name=f"{name}-sender", daemon=True)
        self._thread.start()

    # -- producer side ----------------------------------------------------------------
    def put(self, items: Iterable[Any]) -> None:
        with self._cond:
            if self._stopped:
                raise RuntimeError(f"{self.name}: put() after close()")
            spill: list[Entry] = []
            now = time.monotonic()
            for item in items:
                seq = self._next_seq
                self._next_seq += 1
                if not self._online or self._spool.pending or spill:
                    # Offline, or the spool holds older items (from before, or from this
                    # very call): the spool is the log's tail, so this goes after them.
                    spill.append(Entry(seq, item))
                elif len(self._mem) >= self.config.max_queue:
                    spill.extend(Entry(s, i) for s, i, _ in self._mem)
                    self._mem.clear()
                    spill.append(Entry(seq, item))
                else:
                    self._mem.append((seq, item, now))
            if spill:
                self._spool_entries(spill)
            self._cond.notify_all()

    def wake(self) -> None:
        """Cut a retry backoff short (e.g. the connection just came back)."""
        with self._cond:
            self._wake = True
            self._cond.notify_all()

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                "connected": self._online,
                "queued": len(self._mem),
                "spooled": self._spool.pending,
                "backlog": len(self._mem) + self._spool.pending,
                "sent": self.sent,
                "rejected": self.rejected,
                "errors": self.errors,
                "last_error": self.last_error,
                "spool_dir": str(self._spool.dir),
            }

    def close(self, timeout: float = 5.0) -> int:
        """Send for up to ``timeout`` s, spool the rest; returns how many were left."""
        with self._cond:
            if self._stopped:
                return self._spool.pending
            self._closing_deadline = time.monotonic() + max(0.0, timeout)
            self._cond.notify_all()
        self._thread.join(max(0.0, timeout) + 0.2)
        if self._thread.is_alive():
            # Stuck in a network call: tell it to give up, it is a daemon thread anyway.
            self._abort.set()
            self._thread.join(1.0)
        with self._cond:
            self._stopped = True
            self._abort.set()
            if self._mem:
                self._spool_entries([Entry(s, i) for s, i, _ in self._mem])
                self._mem.clear()
            left = self._spool.pending
            self._spool.close()
        if left:
            log.warning(
                "%s: %d items not delivered; kept in %s and sent first next run",
                self.name,
                left,
                self._spool.dir,
            )
        return left

    # -- sender thread ------------------------------------------------------------------
    def _run(self) -> None:
        backoff = self.config.backoff_min_s
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._deliver(batch, self._abort)
            except PermanentError as err:
                refused = len(batch) if err.count is None else err.count
                with self._cond:
                    self.rejected += refused
                    self.sent += len(batch) - refused
                    self.last_error = self._redact(str(err))
                    self._ack(batch[-1].seq)
                log.error("%s: server refused %d items: %s", self.name, refused, err)
                continue
            except Exception as err:
                with self._cond:
                    self.errors += 1
                    self.last_error = self._redact(f"{type(err).__name__}: {err}")
                    if self._online:
                        log.warning("%s: server unreachable, spooling: %s", self.name, err)
                    self._go_offline()
                    self._backoff_wait(backoff)
                backoff = min(backoff * 2, self.config.backoff_max_s)
                continue
            with self._cond:
                self.sent += len(batch)
                if not self._online:
                    log.info("%s: server back, sending the backlog", self.name)
                self._online = True
                self._ack(batch[-1].seq)
                self._cond.notify_all()
            backoff = self.config.backoff_min_s

    def _next_batch(self) -> list[Entry] | None:
        """Wait for a batch worth sending (size or age); None when it is time to stop."""
        cfg = self.config
        with self._cond:
            while True:
                if self._stopped or self._past_deadline():
                    return None
                pending = self._spool.pending + len(self._mem)
                if pending == 0:
                    if self._closing_deadline is not None:
                        return None
                    self._cond.wait()
                    continue
                if self._spool.pending:
                    return [
                        Entry(s, self._from_json(obj))
                        for s, obj in self._spool.read(cfg.batch_size)
                    ]
                wait_s = cfg.max_delay_s - (time.monotonic() - self._mem[0][2])
                if len(self._mem) >= cfg.batch_size or wait_s <= 0 or self._closing_deadline:
                    return [Entry(s, i) for s, i, _ in itertools.islice(self._mem, cfg.batch_size)]
                self._cond.wait(wait_s)

    def _past_deadline(self) -> bool:
        return self._closing_deadline is not None and time.monotonic() >= self._closing_deadline

    def _backoff_wait(self, backoff_s: float) -> None:
        # Jitter keeps many clients from hammering a server that just came back in step.
        end = time.monotonic() + backoff_s * random.uniform(0.8, 1.2)
        while not self._wake and not self._stopped and not self._past_deadline():
            left = end - time.monotonic()
            if self._closing_deadline is not None:
                left = min(left, self._closing_deadline - time.monotonic())
            if left <= 0:
                break
            self._cond.wait(left)
        self._wake = False

    # -- bookkeeping (lock held) ------------------------------------------------------------
    def _go_offline(self) -> None:
        self._online = False
        if self._stopped:
            return
        if self._mem:
            self._spool_entries([Entry(s, i) for s, i, _ in self._mem])
            self._mem.clear()

    def _ack(self, seq: int) -> None:
        if self._stopped:
            return  # a late answer after close(): the spool keeps it, resent next run
        while self._mem and self._mem[0][0] <= seq:
            self._mem.popleft()
        self._spool.ack(seq)

    def _spool_entries(self, entries: list[Entry]) -> None:
        self._spool.append((e.seq, self._to_json(e.item)) for e in entries)


class _Segment:
    __slots__ = ("first", "last", "path", "size")

    def __init__(self, path: Path, first: int, last: int, size: int) -> None:
        self.path, self.first, self.last, self.size = path, first, last, size


class Spool:
    """Append-only JSON-lines segments ``seg-<first seq>.jsonl`` plus an ``acked`` file.

    Each line is ``[seq, item]``. ``acked`` holds the highest delivered sequence number;
    a segment is deleted once every line in it is delivered. Not thread-safe: the
    :class:`DeliveryQueue` calls it with its lock held.
    """

    def __init__(self, directory: Path, segment_bytes: int = 8 * 1024 * 1024) -> None:
        self.dir = directory
        self.segment_bytes = segment_bytes
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock(self.dir)
        self.acked = _read_int(self.dir / "acked")
        self._segments: list[_Segment] = []
        #: runs [first, last] of unacknowledged sequence numbers, oldest first
        self._runs: deque[list[int]] = deque()
        self.pending = 0
        self.last_seq = self.acked
        self.corrupt_lines = 0
        self._writer: Any = None
        #: (segment index, byte offset) at or before the first unacknowledged line
        self._cursor = (0, 0)
        self._tentative: tuple[int, tuple[int, int]] | None = None
        self._scan()

    def append(self, entries: Iterable[tuple[int, Any]]) -> None:
        lines = []
        first_seq: int | None = None
        for seq, obj in entries:
            lines.append(json.dumps([seq, obj], separators=(",", ":")) + "\n")
            self._note_unacked(seq)
            self.last_seq = max(self.last_seq, seq)
            first_seq = seq if first_seq is None else first_seq
        if first_seq is None:
            return
        data = "".join(lines).encode("utf-8")
        seg = self._segments[-1] if self._segments and self._writer is not None else None
        if seg is None or seg.size >= self.segment_bytes:
            seg = self._new_segment(first_seq)
        self._writer.write(data)
        self._writer.flush()  # in the OS cache: survives a crash of this process
        seg.size += len(data)
        seg.last = self.last_seq

    def read(self, n: int) -> list[tuple[int, Any]]:
        """Up to ``n`` oldest unacknowledged entries (not removed until :meth:`ack`)."""
        out: list[tuple[int, Any]] = []
        idx, offset = self._cursor
        while idx < len(self._segments) and len(out) < n:
            with open(self._segments[idx].path, "rb") as f:
                f.seek(offset)
                for raw in f:
                    offset += len(raw)
                    entry = self._parse(raw)
                    if entry is None or entry[0] <= self.acked:
                        continue
                    out.append(entry)
                    if len(out) >= n:
                        break
            if len(out) < n:
                if idx == len(self._segments) - 1:
                    break  # stay in the newest segment: lines may still be appended to it
                idx, offset = idx + 1, 0
        if out:
            self._tentative = (out[-1][0], (idx, offset))
        return out

    def ack(self, seq: int) -> None:
        if seq <= self.acked:
            return
        self.acked = seq
        before = self.pending
        while self._runs and self._runs[0][1] <= seq:
            first, last = self._runs.popleft()
            self.pending -= last - first + 1
        if self._runs and self._runs[0][0] <= seq:
            self.pending -= seq - self._runs[0][0] + 1
            self._runs[0][0] = seq + 1
        if self._tentative is not None and self._tentative[0] <= seq:
            self._cursor = self._tentative[1]
            self._tentative = None
        if self.pending != before or self._segments:
            _write_int(self.dir / "acked", seq)
            self._drop_delivered_segments()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            os.fsync(self._writer.fileno())
            self._writer.close()
            self._writer = None
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    # -- helpers ------------------------------------------------------------------------
    def _scan(self) -> None:
        paths = sorted(self.dir.glob("seg-*.jsonl"))
        for i, path in enumerate(paths):
            if i == len(paths) - 1:
                _truncate_torn_tail(path)
            first = last = None
            with open(path, "rb") as f:
                for raw in f:
                    entry = self._parse(raw)
                    if entry is None:
                        continue
                    seq = entry[0]
                    first = seq if first is None else first
                    last = seq
                    self.last_seq = max(self.last_seq, seq)
                    if seq > self.acked:
                        self._note_unacked(seq)
            if last is None or first is None:
                path.unlink()
                continue
            self._segments.append(_Segment(path, first, last, path.stat().st_size))
        self._drop_delivered_segments()
        if self._segments:
            # Append to the newest segment rather than starting a new file per run.
            self._writer = open(self._segments[-1].path, "ab")  # noqa: SIM115 - kept open

    def _parse(self, raw: bytes) -> tuple[int, Any] | None:
        try:
            seq, obj = json.loads(raw)
            return int(seq), obj
        except (ValueError, TypeError):
            self.corrupt_lines += 1
            log.warning("spool %s: skipping a corrupt line", self.dir)
            return None

    def _note_unacked(self, seq: int) -> None:
        if self._runs and self._runs[-1][1] == seq - 1:
            self._runs[-1][1] = seq
        else:
            self._runs.append([seq, seq])
        self.pending += 1

    def _new_segment(self, first_seq: int) -> _Segment:
        if self._writer is not None:
            self._writer.close()
        path = self.dir / f"seg-{first_seq:020d}.jsonl"
        self._writer = open(path, "ab")  # noqa: SIM115 - closed by close()/rollover
        seg = _Segment(path, first_seq, first_seq, 0)
        self._segments.append(seg)
        return seg

    def _drop_delivered_segments(self) -> None:
        if self.pending == 0:
            drop = len(self._segments)
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        else:
            # Never the newest one while it has unacknowledged lines (it is being written).
            drop = 0
            while drop < len(self._segments) - 1 and self._segments[drop].last <= self.acked:
                drop += 1
        for seg in self._segments[:drop]:
            with contextlib.suppress(FileNotFoundError):
                seg.path.unlink()
        if drop:
            del self._segments[:drop]
            idx, offset = self._cursor
            self._cursor = (idx - drop, offset) if idx >= drop else (0, 0)
            self._tentative = None


def _lock(directory: Path) -> Any:
    f = open(directory / ".lock", "a+")  # noqa: SIM115 - held open for the spool's life
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise SpoolBusyError(
            f"spool {directory} is in use by another running hipstride process; "
            "give each process its own spool directory (spool_dir)"
        ) from None
    return f


def _truncate_torn_tail(path: Path) -> None:
    """A crash mid-write leaves half a line; cut it so new lines start cleanly."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_int(path: Path, value: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)
