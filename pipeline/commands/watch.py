"""``hipstride watch --mqtt URL``: a live table of every athlete on the broker."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

from pipeline.live_table import WatchState, render
from pipeline.sinks.config import load_settings, usage_error

CLEAR = "\x1b[H\x1b[2J"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "watch",
        help="live table of every athlete publishing to an MQTT broker",
        description=__doc__,
    )
    p.add_argument("--mqtt", metavar="URL", help="broker: mqtt[s]://host[:port][/prefix]")
    p.add_argument("--config", metavar="FILE", help="TOML file with an [mqtt] section")
    p.add_argument("--athlete", metavar="NAME", help="only this athlete")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="refresh (1 s)")
    p.add_argument(
        "--once", action="store_true", help="listen for --duration (default 2 s), print, exit"
    )
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.sinks.mqtt_client import is_failure, make_client, reason_text, start

    settings = load_settings(config_file=args.config, mqtt_url=args.mqtt).mqtt
    if settings is None:
        raise usage_error("watch needs --mqtt URL (or [mqtt] url in --config)")
    state = WatchState(settings.prefix)
    lock = threading.Lock()
    who = args.athlete or "+"

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if is_failure(reason):
            print(f"hipstride: broker refused: {reason_text(reason)}", file=sys.stderr)
            return
        for leaf in ("steps", "summary", "alerts", "status"):
            client.subscribe(f"{settings.prefix}/{who}/{leaf}", qos=1)

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        with lock:
            state.on_message(msg.topic, msg.payload)

    client = make_client(settings, role="watch")
    client.on_connect = on_connect
    client.on_message = on_message
    start(client, settings)
    duration = args.duration if args.duration is not None else (2.0 if args.once else None)
    end = None if duration is None else time.monotonic() + duration
    tty = sys.stdout.isatty()
    try:
        while True:
            now = time.monotonic()
            pause = args.interval if end is None else min(args.interval, end - now)
            if args.once:
                pause = max(0.0, (end or now) - now)
            time.sleep(max(0.0, pause))
            with lock:
                table = render(state)
            done = end is not None and time.monotonic() >= end
            sys.stdout.write((CLEAR if tty and not args.once else "") + table)
            if not tty and not done:
                sys.stdout.write("\n")
            sys.stdout.flush()
            if done:
                return 0
    except KeyboardInterrupt:
        return 0
    finally:
        client.disconnect()
        client.loop_stop()
