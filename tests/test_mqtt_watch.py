"""``hipstride watch``: the live table, pure and against a real broker."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.commands import watch as watch_cmd
from pipeline.live_table import WatchState, render
from pipeline.records import Alert, StepRecord
from pipeline.sinks.config import MqttSettings
from pipeline.sinks.mqtt import MqttSink
from tests.servers import Mosquitto
from tests.test_mqtt_sink import wait_until


def step(side: str, contact_ms: float, drop: float, cadence: float) -> bytes:
    rec = StepRecord(side, 1.0, 1.25, contact_ms, cadence_spm=cadence, pelvic_drop_deg=drop)
    return json.dumps(rec.as_dict()).encode()


def test_table_uses_recent_steps_per_side() -> None:
    state = WatchState("hipstride", window_steps=3)
    state.on_message("hipstride/anna/status", b"online")
    for contact in (300.0, 250.0, 252.0, 254.0):  # the 300 ms step left the window
        state.on_message("hipstride/anna/steps", step("left", contact, 6.0, 170.0))
    state.on_message("hipstride/anna/steps", step("right", 240.0, 4.5, 174.0))
    alert = Alert(9.0, "hip_drop_high", "warning", "pelvic_drop_deg", 9.0, 8.0, "Left hip drops")
    state.on_message("hipstride/anna/alerts", json.dumps(alert.as_dict()).encode())
    state.on_message("hipstride/anna/raw/pelvis", b"\x00binary")  # ignored
    table = render(state)
    header, row = table.splitlines()
    assert header.split()[:2] == ["ATHLETE", "STATE"]
    cells = row.split()
    assert cells[:6] == ["anna", "online", "5", "172", "252/240", "6.0/4.5"]
    assert row.endswith("[warning] Left hip drops")


def test_table_falls_back_to_the_retained_summary() -> None:
    state = WatchState("club/x")
    summary = {
        "kind": "summary",
        "steps": 120,
        "medians": {
            "left": {"contact_ms": 251.0, "cadence_spm": 168.0, "pelvic_drop_deg": 5.5},
            "right": {"contact_ms": 249.0, "cadence_spm": 170.0, "pelvic_drop_deg": None},
        },
    }
    state.on_message("club/x/ben/summary", json.dumps(summary).encode())
    state.on_message("hipstride/other/steps", step("left", 1.0, 1.0, 1.0))  # other prefix
    row = render(state).splitlines()[1].split()
    assert row == ["ben", "?", "120", "169", "251/249", "5.5/-"]
    assert render(WatchState()) == "no athletes on the broker yet\n"


def test_watch_once_shows_every_athlete(mosquitto: Mosquitto, tmp_path: Path, capsys: Any) -> None:
    settings = MqttSettings(host="127.0.0.1", port=mosquitto.port)
    sinks = {a: MqttSink(settings, a, spool_dir=tmp_path / a) for a in ("anna", "ben")}
    for i, sink in enumerate(sinks.values()):
        summary = {
            "kind": "summary",
            "time_s": 10.0,
            "steps": 30 + i,
            "medians": {
                s: {"contact_ms": 240.0 + i, "cadence_spm": 170.0} for s in ("left", "right")
            },
        }
        sink.add([summary])
    assert wait_until(lambda: all(s.status()["sent"] == 1 for s in sinks.values()))
    parser = argparse.ArgumentParser()
    watch_cmd.register(parser.add_subparsers())
    args = parser.parse_args(
        ["watch", "--mqtt", f"mqtt://127.0.0.1:{mosquitto.port}", "--once", "--duration", "1"]
    )
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ATHLETE")
    assert lines[1].split()[:5] == ["anna", "online", "30", "170", "240/240"]
    assert lines[2].split()[:5] == ["ben", "online", "31", "170", "241/241"]
    for sink in sinks.values():
        sink.close()
