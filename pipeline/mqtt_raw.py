"""Raw sensor chunks over MQTT: the collector's publisher and ``hipstride run``'s source.

Topic: ``<prefix>/<athlete>/raw/<placement>``, payload :mod:`sensors.mqtt_codec`,
QoS 1. The publisher goes through the same queue and spool as the sinks, so a broker
outage between a collector and the processing host loses no samples either.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline.sinks.config import ATHLETE_RE, MqttSettings, check_athlete
from pipeline.sinks.mqtt import Message, MqttPublisher, topic
from pipeline.sinks.mqtt_client import is_failure, make_client, paho, reason_text, start
from sensors.errors import DecodeError
from sensors.model import Chunk
from sensors.mqtt_codec import RawPacket, decode, encode_chunk, encode_end

log = logging.getLogger("hipstride.mqtt")


class RawChunkPublisher:
    """Publishes one athlete's sensor chunks, in order, nothing lost (see module doc)."""

    def __init__(
        self,
        settings: MqttSettings,
        athlete: str,
        *,
        spool_dir: str | Path,
        float32: bool = False,
    ) -> None:
        self.settings = settings
        self.athlete = check_athlete(athlete)
        self.float32 = float32
        self.publisher = MqttPublisher(
            settings, name=f"mqtt-raw-{athlete}", spool_dir=spool_dir, role="collector"
        )

    def _topic(self, placement: str) -> str:
        return topic(self.settings.prefix, self.athlete, "raw", placement)

    def publish(self, chunk: Chunk) -> None:
        payload = encode_chunk(chunk, float32=self.float32)
        self.publisher.publish([Message(self._topic(chunk.placement), payload)])

    def tee(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        """Publish each chunk on its way through, then every sensor's end marker: a
        collector that analyses locally can feed ``drive`` with this and publish too."""
        seen: dict[str, str] = {}
        for chunk in chunks:
            self.publish(chunk)
            seen[chunk.placement] = chunk.device_id
            yield chunk
        for placement, device_id in seen.items():
            self.end(placement, device_id)

    def end(self, placement: str, device_id: str = "") -> None:
        """The sensor stopped for good: lets ``run`` finish that athlete's session."""
        self.publisher.publish([Message(self._topic(placement), encode_end(placement, device_id))])

    def status(self) -> dict[str, Any]:
        return {"sink": "mqtt-raw", "target": self.settings.target(), **self.publisher.status()}

    def close(self, timeout: float = 5.0) -> int:
        return self.publisher.close(timeout)


OnPacket = Callable[[str, RawPacket], None]


class MqttChunkSource:
    """Subscribes ``<prefix>/+/raw/+`` and calls ``on_packet(athlete, packet)`` per message.

    Calls come from paho's network thread in arrival order, which MQTT keeps per
    publisher and topic; ``on_packet`` should only hand the packet on (a queue). A
    persistent session (QoS 1) keeps messages queued at the broker while this client
    reconnects: with MQTT 5 always (it expires 5 min after a drop and is ended on
    ``stop``); with 3.1.1 only under a configured ``client_id``, since a 3.1.1 session
    never expires and one per random id would pile up in the broker. Broken payloads
    are counted and logged, never raised.
    """

    def __init__(
        self, settings: MqttSettings, on_packet: OnPacket, *, athlete: str | None = None
    ) -> None:
        self.settings = settings
        self.on_packet = on_packet
        self.filter = topic(settings.prefix, athlete or "+", "raw", "+")
        self.received = 0
        self.broken = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.error: str | None = None
        self._persistent = settings.protocol == "5" or bool(settings.client_id)
        self._client = make_client(settings, role="run", persistent_session=self._persistent)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = lambda *a: self.connected.clear()
        self._client.on_message = self._on_message

    def start(self) -> None:
        start(self._client, self.settings, persistent_session=self._persistent)

    def stop(self) -> None:
        props = None
        if self.settings.protocol == "5":
            props = paho().Properties(paho().PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0  # a clean stop: nothing left queued for us
        self._client.disconnect(properties=props)
        self._client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if is_failure(reason):
            self.error = f"broker refused the connection: {reason_text(reason)}"
            log.warning("%s: %s", self.settings.target(), self.error)
            return
        self.error = None
        self.connected.set()
        client.subscribe(self.filter, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        self.subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        levels = msg.topic.split("/")
        athlete, placement = levels[-3], levels[-1]
        try:
            if not ATHLETE_RE.match(athlete):
                # it names output directories and topics: '..' must not get that far
                raise DecodeError(f"athlete name {athlete!r} is not allowed")
            packet = decode(msg.payload)
            if packet.chunk.placement != placement:
                raise DecodeError(
                    f"raw chunk for {packet.chunk.placement!r} on the {placement!r} topic"
                )
        except DecodeError as err:
            self.broken += 1
            if self.broken <= 10 or self.broken % 1000 == 0:
                log.warning("%s: dropped message %d: %s", msg.topic, self.broken, err)
            return
        self.received += 1
        self.on_packet(athlete, packet)
