"""The shared queue + disk spool of every network sink, against a fake server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline.sinks.spool import (
    DeliveryQueue,
    Entry,
    PermanentError,
    QueueConfig,
    Spool,
    SpoolBusyError,
)

FAST = QueueConfig(max_queue=50, batch_size=20, backoff_min_s=0.01, backoff_max_s=0.05)


class FakeServer:
    """Accepts batches while ``up``; records what it got, in order."""

    def __init__(self) -> None:
        self.up = True
        self.got: list[object] = []
        self.calls = 0
        self.block = threading.Event()
        self.block.set()

    def deliver(self, entries: Sequence[Entry], abort: threading.Event) -> None:
        self.calls += 1
        self.block.wait()
        if not self.up:
            raise ConnectionError("connection refused")
        self.got.extend(e.item for e in entries)


def wait_until(cond, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return bool(cond())


def test_items_arrive_in_order_exactly_once(tmp_path: Path) -> None:
    server = FakeServer()
    q = DeliveryQueue("t", server.deliver, tmp_path, FAST)
    for i in range(0, 1000, 7):
        q.put(range(i, min(i + 7, 1000)))
    assert q.close(5.0) == 0
    assert server.got == list(range(1000))
    assert not list(tmp_path.glob("seg-*"))


def test_outage_spools_to_disk_and_resends_in_order(tmp_path: Path) -> None:
    server = FakeServer()
    q = DeliveryQueue("t", server.deliver, tmp_path, FAST)
    q.put(range(100))
    assert wait_until(lambda: len(server.got) == 100)
    server.up = False
    q.put(range(100, 200))
    assert wait_until(lambda: q.status()["spooled"] == 100 and not q.status()["connected"])
    assert q.status()["backlog"] == 100
    assert list(tmp_path.glob("seg-*.jsonl")), "an outage must put the backlog on disk"
    q.put(range(200, 300))  # while offline, straight to the spool
    server.up = True
    assert q.close(5.0) == 0
    assert server.got == list(range(300))
    assert q.status()["errors"] >= 1


def test_full_memory_queue_spills_without_blocking(tmp_path: Path) -> None:
    server = FakeServer()
    server.block.clear()  # the server hangs: the sender thread is stuck in deliver
    q = DeliveryQueue("t", server.deliver, tmp_path, FAST)
    t0 = time.monotonic()
    for i in range(500):
        q.put([i])
    assert time.monotonic() - t0 < 1.0, "put() must not wait for the server"
    assert q.status()["spooled"] > 0
    server.block.set()
    assert q.close(5.0) == 0
    assert server.got == list(range(500))


def test_close_leaves_the_rest_for_the_next_run(tmp_path: Path) -> None:
    server = FakeServer()
    server.up = False
    q = DeliveryQueue("t", server.deliver, tmp_path, FAST)
    q.put({"n": i} for i in range(30))
    assert q.close(0.2) == 30
    q2 = DeliveryQueue("t", server.deliver, tmp_path, FAST)
    assert q2.status()["spooled"] == 30
    q2.put([{"n": 30}])
    server.up = True
    assert q2.close(5.0) == 0
    assert server.got == [{"n": i} for i in range(31)]


def test_spool_survives_a_killed_process(tmp_path: Path) -> None:
    """A torn last line (killed mid-write) is cut; every complete line is resent."""
    server = FakeServer()
    server.up = False
    q = DeliveryQueue("t", server.deliver, tmp_path, FAST)
    q.put(range(10))
    assert wait_until(lambda: q.status()["spooled"] == 10)
    # Simulate the kill: the sender stops, the lock dies with the "process", and a half
    # line stays in the file. (tests/test_mqtt_sink.py kills a real process.)
    q._stopped = True
    q._spool._lock_file.close()  # type: ignore[union-attr]
    seg = sorted(tmp_path.glob("seg-*.jsonl"))[-1]
    with open(seg, "ab") as f:
        f.write(b'[11,"half')
    server.up = True
    q2 = DeliveryQueue("t", server.deliver, tmp_path, FAST)
    q2.put([10])
    assert q2.close(5.0) == 0
    assert server.got == list(range(11))


def test_rejected_batch_is_dropped_and_counted(tmp_path: Path) -> None:
    got: list[object] = []

    def deliver(entries: Sequence[Entry], abort: threading.Event) -> None:
        if any(e.item == "bad" for e in entries):
            raise PermanentError("HTTP 400: bad line")
        got.extend(e.item for e in entries)

    q = DeliveryQueue("t", deliver, tmp_path, QueueConfig(batch_size=1))
    q.put(["a", "bad", "b"])
    assert q.close(5.0) == 0
    assert got == ["a", "b"]
    assert q.status()["rejected"] == 1
    assert "HTTP 400" in (q.status()["last_error"] or "")


def test_partly_rejected_batch_counts_what_was_refused(tmp_path: Path) -> None:
    def deliver(entries: Sequence[Entry], abort: threading.Event) -> None:
        raise PermanentError("broker refused 1 message", 1)

    q = DeliveryQueue("t", deliver, tmp_path, QueueConfig(batch_size=3, max_delay_s=0.5))
    q.put(["a", "b", "c"])
    assert q.close(5.0) == 0
    assert (q.status()["sent"], q.status()["rejected"]) == (2, 1)


def test_batches_by_size_and_age(tmp_path: Path) -> None:
    sizes: list[int] = []

    def deliver(entries: Sequence[Entry], abort: threading.Event) -> None:
        sizes.append(len(entries))

    cfg = QueueConfig(batch_size=10, max_delay_s=0.3)
    q = DeliveryQueue("t", deliver, tmp_path, cfg)
    q.put(range(25))  # two full batches go at once
    assert wait_until(lambda: sizes[:2] == [10, 10], 1.0)
    time.sleep(0.1)
    assert sizes == [10, 10], "a partial batch waits for company"
    assert wait_until(lambda: sizes == [10, 10, 5], 1.0), "...but no longer than max_delay_s"
    q.close(1.0)


def test_one_spool_per_process(tmp_path: Path) -> None:
    q = DeliveryQueue("t", FakeServer().deliver, tmp_path, FAST)
    with pytest.raises(SpoolBusyError, match="in use by another"):
        DeliveryQueue("t", FakeServer().deliver, tmp_path, FAST)
    q.close(1.0)


def test_spool_segments_roll_over_and_are_deleted_when_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    spool.append((i, {"x": "y" * 20}) for i in range(1, 6))
    spool.append((i, {"x": "y" * 20}) for i in range(6, 11))
    spool.append((i, {"x": "y" * 20}) for i in range(11, 16))
    assert len(list(tmp_path.glob("seg-*.jsonl"))) == 2
    assert spool.pending == 15
    batch = spool.read(7)
    assert [s for s, _ in batch] == list(range(1, 8))
    spool.ack(7)
    assert spool.pending == 8
    assert [s for s, _ in spool.read(100)] == list(range(8, 16))
    spool.ack(10)
    assert len(list(tmp_path.glob("seg-*.jsonl"))) == 1, "delivered segment deleted"
    spool.ack(15)
    assert spool.pending == 0
    assert not list(tmp_path.glob("seg-*.jsonl"))
    assert (tmp_path / "acked").read_text().strip() == "15"
    spool.close()


def test_spool_lines_are_json_a_person_can_read(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([(1, {"topic": "a/b", "payload": "{}"})])
    spool.close()
    line = next(tmp_path.glob("seg-*.jsonl")).read_text().strip()
    assert json.loads(line) == [1, {"topic": "a/b", "payload": "{}"}]


@pytest.mark.parametrize("seed", range(4))
def test_random_outages_never_lose_or_reorder(tmp_path: Path, seed: int) -> None:
    """Producer, flapping server, overflowing memory, rolling segments and a restart in
    the middle, all at once: the server still gets 0..n-1 once each, in order."""
    import random

    rng = random.Random(seed)
    server = FakeServer()
    cfg = QueueConfig(
        max_queue=rng.choice([5, 30, 200]),
        batch_size=rng.choice([1, 7, 50]),
        backoff_min_s=0.001,
        backoff_max_s=0.01,
        segment_bytes=rng.choice([64, 1000, 10**6]),
    )
    stop = threading.Event()

    def flap() -> None:
        while not stop.is_set():
            server.up = rng.random() < 0.6
            time.sleep(rng.uniform(0.001, 0.02))

    flapper = threading.Thread(target=flap)
    flapper.start()
    n, sent = 3000, 0
    q = DeliveryQueue("t", server.deliver, tmp_path, cfg)
    while sent < n:
        k = min(n - sent, rng.randint(1, 40))
        q.put(range(sent, sent + k))
        sent += k
        if sent > n // 2 and q is not None and rng.random() < 0.02:
            q.close(rng.choice([0.0, 0.01]))  # a restart mid-run
            q = DeliveryQueue("t", server.deliver, tmp_path, cfg)
        if rng.random() < 0.1:
            time.sleep(0.001)
    stop.set()
    flapper.join()
    server.up = True
    assert q.close(10.0) == 0
    assert server.got == list(range(n))
