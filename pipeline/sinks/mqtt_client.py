"""One place that turns :class:`MqttSettings` into a connected paho client.

Used by the MQTT sink, the raw-chunk publisher and source, and ``hipstride watch``, so
authentication, TLS, protocol version, backoff and the optional-dependency message are
handled once. paho is imported here, lazily: the core installs without it.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from pipeline.sinks.config import MqttSettings, import_optional, usage_error

log = logging.getLogger("hipstride.mqtt")

#: paho's own log (every packet; never the password, only a "p1" flag). Attached only
#: when debugging: at other levels it adds nothing ours lacks, and after a clean
#: disconnect its loop logs a harmless "not connected" at ERROR.
PAHO_LOGGER = logging.getLogger("hipstride.mqtt.paho")


def paho() -> Any:
    return import_optional("paho.mqtt.client", "MQTT publishing")


def new_client_id(role: str) -> str:
    # Unique per connection: two clients with one id make the broker drop the older one.
    return f"hipstride-{role}-{os.getpid()}-{secrets.token_hex(3)}"


def make_client(
    s: MqttSettings,
    *,
    role: str,
    will: tuple[str, bytes] | None = None,
    persistent_session: bool = False,
) -> Any:
    """A configured, not yet connected client (call :func:`start`)."""
    mqtt = paho()
    v5 = s.protocol == "5"
    client_id = s.client_id or new_client_id(role)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent_session,
    )
    if s.username:
        client.username_pw_set(s.username, s.password.reveal() if s.password else None)
    if s.tls:
        try:
            client.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file)
        except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
            raise usage_error(f"MQTT TLS settings: {err}") from None
        client.tls_insecure_set(s.tls_insecure)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
    client.max_inflight_messages_set(100)
    if PAHO_LOGGER.isEnabledFor(logging.DEBUG):
        client.enable_logger(PAHO_LOGGER)
    return client


def start(client: Any, s: MqttSettings, *, persistent_session: bool = False) -> None:
    """Connect in paho's own thread, which also reconnects with backoff for ever."""
    mqtt = paho()
    kwargs: dict[str, Any] = {}
    if s.protocol == "5":
        props = mqtt.Properties(mqtt.PacketTypes.CONNECT)
        if persistent_session:
            # Keep subscriptions and queued QoS 1 messages across a short disconnect.
            props.SessionExpiryInterval = 300
        kwargs = {"clean_start": not persistent_session, "properties": props}
    client.connect_async(s.host, s.port, keepalive=s.keepalive_s, **kwargs)
    client.loop_start()


def publish_properties(expiry_s: int | None) -> Any:
    """MQTT 5 PUBLISH properties with a message expiry, or None."""
    if expiry_s is None:
        return None
    mqtt = paho()
    props = mqtt.Properties(mqtt.PacketTypes.PUBLISH)
    props.MessageExpiryInterval = max(1, int(expiry_s))
    return props


def reason_text(reason_code: Any) -> str:
    return str(getattr(reason_code, "getName", lambda: reason_code)())


def is_failure(reason_code: Any) -> bool:
    return bool(getattr(reason_code, "is_failure", False))
