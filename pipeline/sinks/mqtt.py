"""MQTT publishing: a reliable publisher (queue + spool + acknowledgements) and the sink.

Topic tree (``<prefix>`` is ``hipstride`` unless the URL path sets another)::

    <prefix>/<athlete>/steps                      every step record      QoS 1
    <prefix>/<athlete>/alerts                     every alert            QoS 1
    <prefix>/<athlete>/summary                    rolling/final summary  QoS 1, retained, expiry
    <prefix>/<athlete>/sensors/<placement>/status sensor health          QoS 1, retained, expiry
    <prefix>/<athlete>/status                     "online" / "offline"   QoS 1, retained, last will
    <prefix>/<athlete>/<kind>                     any other record kind  QoS 1

Payloads are JSON objects: the record's flat dict (units in the key names) plus
``schema_version``, ``athlete`` and ``session``. Records are routed by their ``kind``
only, so a record kind added later is published without changing this module.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.records import SCHEMA_VERSION
from pipeline.sinks.base import Record
from pipeline.sinks.config import MqttSettings, check_athlete
from pipeline.sinks.mqtt_client import (
    is_failure,
    make_client,
    publish_properties,
    reason_text,
    start,
)
from pipeline.sinks.spool import DeliveryQueue, Entry, PermanentError, QueueConfig

log = logging.getLogger("hipstride.mqtt")


@dataclass(frozen=True, slots=True)
class TopicRule:
    #: levels below ``<prefix>/<athlete>/``; ``{field}`` is filled from the record
    path: str
    retain: bool = False
    #: live metrics expire (MQTT 5) so a late subscriber never sees a stale value
    live: bool = False

    def levels(self, record: Record, kind: str) -> str:
        """The path with ``{field}`` filled from the record, made safe as topic levels."""
        names = [name for _, name, _, _ in string.Formatter().parse(self.path) if name]
        values = {n: _UNSAFE_LEVEL.sub("_", str(record.get(n, "unknown"))) for n in names}
        return self.path.format_map({**values, "kind": kind})


TOPIC_RULES: dict[str, TopicRule] = {
    "step": TopicRule("steps"),
    "alert": TopicRule("alerts"),
    "summary": TopicRule("summary", retain=True, live=True),
    "status": TopicRule("sensors/{placement}/status", retain=True, live=True),
}
DEFAULT_RULE = TopicRule("{kind}")

_UNSAFE_LEVEL = re.compile(r"[/+#\s]")

#: how long a delivery waits for a connection before counting the broker as down
CONNECT_GRACE_S = 1.0


def topic(prefix: str, athlete: str, *levels: str) -> str:
    return "/".join((prefix, athlete, *levels))


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    #: MQTT 5 message expiry, counted from ``created_unix_s`` (also when sent late)
    expiry_s: int | None = None
    created_unix_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Spool form: JSON payloads stay readable, binary ones become base64."""
        obj: dict[str, Any] = {"t": self.topic, "q": self.qos, "r": self.retain}
        try:
            obj["p"] = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            obj["b64"] = base64.b64encode(self.payload).decode("ascii")
        if self.expiry_s is not None:
            obj["e"], obj["c"] = self.expiry_s, self.created_unix_s
        return obj

    @staticmethod
    def from_json(obj: dict[str, Any]) -> Message:
        payload = base64.b64decode(obj["b64"]) if "b64" in obj else str(obj["p"]).encode("utf-8")
        return Message(obj["t"], payload, obj["q"], obj["r"], obj.get("e"), obj.get("c", 0.0))


def json_payload(record: Record, **extra: Any) -> bytes:
    body = {"schema_version": SCHEMA_VERSION, **extra, **record}
    try:  # the common case, plain Python values: one pass
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError):  # NaN/inf or numpy values somewhere
        text = json.dumps(_jsonable(body), separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


def _jsonable(value: Any) -> Any:
    """NaN/inf become null (not valid JSON); numpy scalars and arrays become Python."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _jsonable(value.tolist())
    return value


def record_message(
    record: Record,
    *,
    prefix: str,
    athlete: str,
    session: str | None,
    live_expiry_s: int | None,
    now_unix_s: float | None = None,
) -> Message:
    """The message for one record, routed by its ``kind`` (see TOPIC_RULES)."""
    kind = _UNSAFE_LEVEL.sub("_", str(record.get("kind", "record")))
    rule = TOPIC_RULES.get(kind, DEFAULT_RULE)
    return Message(
        topic(prefix, athlete, rule.levels(record, kind)),
        json_payload(record, athlete=athlete, session=session),
        qos=1,
        retain=rule.retain,
        expiry_s=live_expiry_s if rule.live else None,
        created_unix_s=time.time() if now_unix_s is None else now_unix_s,
    )


class MqttPublisher:
    """Hands messages to the broker in order, each acknowledged (QoS 1) once.

    paho keeps unacknowledged QoS 1 messages across reconnects and resends them itself,
    so a batch interrupted by a disconnect is *not* published again: the sequence
    numbers of messages already given to paho are remembered and only awaited.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        name: str,
        spool_dir: str | Path,
        presence_topic: str | None = None,
        role: str = "sink",
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.settings = settings
        self.presence_topic = presence_topic
        self._cond = threading.Condition()
        #: mid -> (reason code, monotonic time of the PUBACK)
        self._acks: dict[int, tuple[Any, float]] = {}
        #: sequence number -> (mid, monotonic time it was handed to paho)
        self._inflight: dict[int, tuple[int, float]] = {}
        #: the mid whose PUBACK the sender waits for (the last of its batch, usually)
        self._awaiting: int | None = None
        self._connected = threading.Event()
        self.connect_error: str | None = None
        will = (presence_topic, b"offline") if presence_topic else None
        self._client = make_client(settings, role=role, will=will)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        config = QueueConfig(max_queue=settings.max_queue, batch_size=settings.batch_size)
        self.queue = DeliveryQueue(
            name,
            self._deliver,
            spool_dir,
            config,
            to_json=Message.to_json,
            from_json=Message.from_json,
            redact=redact,
        )
        start(self._client, settings)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, messages: Iterable[Message]) -> None:
        self.queue.put(messages)

    def status(self) -> dict[str, Any]:
        out = self.queue.status()
        out["connected"] = self.connected
        if self.connect_error and not self.connected:
            out["last_error"] = self.connect_error
        return out

    def close(self, timeout: float = 5.0) -> int:
        left = self.queue.close(timeout)
        if self.presence_topic and self.connected:
            # A clean exit: say so ourselves (the broker sends the will only on a crash).
            info = self._client.publish(self.presence_topic, b"offline", qos=1, retain=True)
            self._wait_quietly(info, 1.0)
        self._client.disconnect()
        self._client.loop_stop()
        return left

    # -- paho callbacks (paho's thread) ------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if is_failure(reason):
            self.connect_error = f"broker refused the connection: {reason_text(reason)}"
            log.warning("%s: %s", self.settings.target(), self.connect_error)
            return
        self.connect_error = None
        self._connected.set()
        if self.presence_topic:
            client.publish(self.presence_topic, b"online", qos=1, retain=True)
        self.queue.wake()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected.clear()
        with self._cond:
            self._cond.notify_all()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._cond:
            self._acks[mid] = (reason, time.monotonic())
            # Wake the sender only for the ack it waits for: one wake-up per message
            # would cost more GIL hand-overs than the publishing itself.
            if mid == self._awaiting:
                self._cond.notify_all()

    # -- delivery (the queue's sender thread) -------------------------------------------------
    def _deliver(self, entries: Sequence[Entry], abort: threading.Event) -> None:
        # A moment's grace: right after start the first connection is usually on its way,
        # and treating that as an outage would spool and back off for nothing.
        end = time.monotonic() + CONNECT_GRACE_S
        while not self.connected and time.monotonic() < end and not abort.is_set():
            self._connected.wait(0.05)
        if not self.connected:
            raise ConnectionError(self.connect_error or "not connected to the broker")
        for e in entries:
            if e.seq not in self._inflight:
                m: Message = e.item
                handed_s = time.monotonic()
                info = self._client.publish(
                    m.topic, m.payload, qos=m.qos, retain=m.retain, properties=self._props(m)
                )
                if m.qos > 0:
                    # Also when rc is NO_CONN: paho keeps a QoS 1 message and sends it later.
                    self._inflight[e.seq] = (info.mid, handed_s)
                elif info.rc:
                    raise ConnectionError(f"publish failed (rc {info.rc})")
        self._await_acks(entries, abort)

    def _await_acks(self, entries: Sequence[Entry], abort: threading.Event) -> None:
        waiting = [e.seq for e in entries if e.seq in self._inflight]
        rejected: list[str] = []
        with self._cond:
            while waiting:
                seq = waiting[-1]
                mid, handed_s = self._inflight[seq]
                ack = self._acks.get(mid)
                # mids are reused after 65535 messages: an ack older than the hand-over
                # belongs to an earlier message with the same mid.
                if ack is not None and ack[1] >= handed_s:
                    waiting.pop()
                    continue
                if abort.is_set():
                    raise TimeoutError("closing before the broker acknowledged")
                if not self.connected:
                    raise ConnectionError("connection lost; paho resends on reconnect")
                self._awaiting = mid
                self._cond.wait(0.5)
            self._awaiting = None
            for e in entries:
                mid_handed = self._inflight.pop(e.seq, None)
                if mid_handed is None:
                    continue
                reason = self._acks.pop(mid_handed[0], (None, 0.0))[0]
                if reason is not None and is_failure(reason):
                    rejected.append(f"{e.item.topic}: {reason_text(reason)}")
        if rejected:
            raise PermanentError(
                f"broker refused {len(rejected)} messages, first {rejected[0]}", len(rejected)
            )

    def _props(self, m: Message) -> Any:
        if m.expiry_s is None or self.settings.protocol != "5":
            return None
        left = m.expiry_s - (time.time() - m.created_unix_s)
        return publish_properties(max(1, math.ceil(left)))

    @staticmethod
    def _wait_quietly(info: Any, timeout: float) -> None:
        with contextlib.suppress(RuntimeError, ValueError):  # not queued: nothing to wait for
            info.wait_for_publish(timeout)


class MqttSink:
    """Publishes every record of one athlete under ``<prefix>/<athlete>/``."""

    def __init__(
        self,
        settings: MqttSettings,
        athlete: str,
        *,
        spool_dir: str | Path,
        session: str | None = None,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.settings = settings
        self.athlete = check_athlete(athlete)
        self.session = session
        self.publisher = MqttPublisher(
            settings,
            name=f"mqtt-{athlete}",
            spool_dir=spool_dir,
            presence_topic=topic(settings.prefix, athlete, "status"),
            redact=redact,
        )

    def message_for(self, record: Record) -> Message:
        return record_message(
            record,
            prefix=self.settings.prefix,
            athlete=self.athlete,
            session=self.session,
            live_expiry_s=self.settings.live_expiry_s,
        )

    def add(self, records: Iterable[Record]) -> None:
        self.publisher.publish([self.message_for(r) for r in records])

    def status(self) -> dict[str, Any]:
        return {
            "sink": "mqtt",
            "target": self.settings.target(),
            "athlete": self.athlete,
            **self.publisher.status(),
        }

    def close(self, timeout: float = 5.0) -> None:
        self.publisher.close(timeout)
