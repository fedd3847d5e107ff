"""Command-line options for the network sinks, shared by ``replay``, ``demo`` and ``run``.

``add_sink_arguments(parser)`` adds ``--mqtt``, ``--influx``, ``--athlete``,
``--session``, ``--config`` and ``--spool-dir``; ``sinks_from_args(args)`` builds the
sinks they ask for (none when neither a URL nor a config file section names one).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipeline.sinks.base import Sink
from pipeline.sinks.config import Settings, load_settings, usage_error
from pipeline.sinks.spool import SpoolBusyError


def add_sink_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "publishing", "send results live to MQTT and/or InfluxDB (docs/publishing.md)"
    )
    g.add_argument(
        "--mqtt",
        metavar="URL",
        help="MQTT broker: mqtt[s]://[user@]host[:port][/prefix]; "
        "password from HIPSTRIDE_MQTT_PASSWORD",
    )
    g.add_argument(
        "--influx",
        metavar="URL",
        help="InfluxDB: http[s]://host:8086?bucket=B&org=O (v2, token from "
        "HIPSTRIDE_INFLUX_TOKEN) or http://host:8086?db=D (v1)",
    )
    g.add_argument("--athlete", metavar="NAME", help="athlete name in topics and tags")
    g.add_argument("--session", metavar="ID", help="session id (default: start time)")
    g.add_argument("--config", metavar="FILE", help="TOML file with [mqtt]/[influx] settings")
    g.add_argument(
        "--spool-dir",
        metavar="DIR",
        help="where undelivered results wait (default ~/.cache/hipstride/spool)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    return load_settings(
        config_file=getattr(args, "config", None),
        mqtt_url=getattr(args, "mqtt", None),
        influx_url=getattr(args, "influx", None),
        athlete=getattr(args, "athlete", None),
        session=getattr(args, "session", None),
        spool_dir=getattr(args, "spool_dir", None),
    )


def sinks_from_args(
    args: argparse.Namespace,
    *,
    athlete: str | None = None,
    session_start_unix_s: float | None = None,
) -> list[Sink]:
    """The sinks ``args`` ask for. ``session_start_unix_s`` is the wall-clock time of
    sample time 0 (InfluxDB timestamps); by default "now"."""
    return make_sinks(
        settings_from_args(args), athlete=athlete, session_start_unix_s=session_start_unix_s
    )


def make_sinks(
    settings: Settings,
    *,
    athlete: str | None = None,
    session_start_unix_s: float | None = None,
) -> list[Sink]:
    athlete = athlete or settings.athlete
    spool_root = Path(settings.spool_dir).expanduser()
    redact = settings.redactor()
    sinks: list[Sink] = []
    try:
        if settings.mqtt is not None:
            from pipeline.sinks.mqtt import MqttSink

            sinks.append(
                MqttSink(
                    settings.mqtt,
                    athlete,
                    spool_dir=spool_root / f"mqtt-{athlete}",
                    session=settings.session,
                    redact=redact,
                )
            )
        if settings.influx is not None:
            from pipeline.sinks.influx import InfluxSink

            sinks.append(
                InfluxSink(
                    settings.influx,
                    athlete,
                    spool_dir=spool_root / f"influx-{athlete}",
                    session=settings.session,
                    start_unix_s=time.time()
                    if session_start_unix_s is None
                    else session_start_unix_s,
                    redact=redact,
                )
            )
    except BaseException as err:
        for sink in sinks:  # e.g. MQTT is up but InfluxDB's package is missing
            sink.close()
        if isinstance(err, SpoolBusyError):
            raise usage_error(str(err)) from None
        raise
    return sinks
