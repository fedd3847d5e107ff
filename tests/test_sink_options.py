"""Sink options: URLs, TOML config, environment, secrets, optional dependencies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import UsageError
from pipeline.sinks.config import Secret, load_settings
from pipeline.sinks.options import (
    add_sink_arguments,
    make_sinks,
    settings_from_args,
    sinks_from_args,
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    return parser.parse_args(argv)


def test_no_url_no_sinks() -> None:
    assert sinks_from_args(parse([])) == []


def test_mqtt_url_parts() -> None:
    s = load_settings(mqtt_url="mqtts://coach@broker.example/team-a?protocol=3.1.1", env={})
    assert s.mqtt is not None
    m = s.mqtt
    assert (m.host, m.port, m.tls, m.prefix, m.username) == (
        "broker.example",
        8883,
        True,
        "team-a",
        "coach",
    )
    assert m.protocol == "3.1.1" and m.password is None
    plain = load_settings(mqtt_url="mqtt://127.0.0.1", env={}).mqtt
    assert plain is not None and (plain.port, plain.prefix, plain.tls) == (1883, "hipstride", False)


def test_influx_url_picks_the_api() -> None:
    v2 = load_settings(influx_url="https://db.example:8086?bucket=runs&org=club", env={}).influx
    assert v2 is not None and (v2.api, v2.bucket, v2.org) == ("v2", "runs", "club")
    assert v2.url == "https://db.example:8086"
    v1 = load_settings(influx_url="http://u@localhost:8086?db=runs&rp=week", env={}).influx
    assert v1 is not None and (v1.api, v1.database, v1.retention_policy, v1.username) == (
        "v1",
        "runs",
        "week",
        "u",
    )


def test_config_file_env_and_command_line_layers(tmp_path: Path) -> None:
    config = tmp_path / "hipstride.toml"
    config.write_text(
        """
athlete = "anna"
session = "track-1"

[mqtt]
url = "mqtt://broker.local:1884/club"
username = "anna"
live_expiry_s = 30

[influx]
url = "http://tsdb.local:8086?bucket=runs&org=club"
batch_size = 200

[sensors.pelvis]  # the file is shared with ``collect``: its tables are not ours to check
address = "A0:9E:1A:12:34:56"
"""
    )
    env = {"HIPSTRIDE_MQTT_PASSWORD": "pw-from-env", "HIPSTRIDE_INFLUX_TOKEN": "tok-env"}
    s = load_settings(config_file=config, env=env)
    assert (s.athlete, s.session) == ("anna", "track-1")
    assert s.mqtt is not None and s.influx is not None
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.prefix, s.mqtt.live_expiry_s) == (
        "broker.local",
        1884,
        "club",
        30,
    )
    assert s.mqtt.password == Secret("pw-from-env")
    assert s.influx.token == Secret("tok-env") and s.influx.batch_size == 200
    # the command line wins over file and environment
    s2 = load_settings(config_file=config, mqtt_url="mqtt://other:1999", athlete="ben", env=env)
    assert s2.mqtt is not None and (s2.mqtt.host, s2.mqtt.port, s2.athlete) == (
        "other",
        1999,
        "ben",
    )
    assert s2.mqtt.live_expiry_s == 30, "keys the URL does not set stay from the file"


def test_args_reach_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIPSTRIDE_MQTT_PASSWORD", raising=False)
    args = parse(
        [
            "--mqtt",
            "mqtt://h:1",
            "--athlete",
            "cleo",
            "--session",
            "s9",
            "--spool-dir",
            str(tmp_path),
        ]
    )
    s = settings_from_args(args)
    assert (s.athlete, s.session, s.spool_dir) == ("cleo", "s9", str(tmp_path))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mqtt_url": "http://x"}, "must look like mqtt://"),
        ({"mqtt_url": "mqtt://h/a+b"}, "must not contain"),
        ({"influx_url": "mqtt://x"}, "must look like http"),
        ({"athlete": "a/b"}, "athlete name 'a/b'"),
        ({"mqtt_url": "mqtt://h?protocol=4"}, "protocol must be"),
        ({"mqtt_url": "mqtt://h?keepalive_s=soon"}, "keepalive_s: 'soon' is not a valid int"),
        ({"mqtt_url": "mqtt://h?colour=red"}, "unknown setting"),
        ({"influx_url": "http://h?db=x&api=v3"}, "api must be"),
    ],
)
def test_bad_settings_are_one_clear_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_settings(env={}, **kwargs)


def test_bad_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt]\nurl = \n")
    with pytest.raises(UsageError, match=r"bad\.toml"):
        load_settings(config_file=bad, env={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[mqtt]\nurl = "mqtt://h"\nhots = "typo"\n')
    with pytest.raises(UsageError, match="unknown setting \\[mqtt\\] 'hots'"):
        load_settings(config_file=unknown, env={})
    with pytest.raises(UsageError, match="cannot read config file"):
        load_settings(config_file=tmp_path / "missing.toml", env={})


def test_secrets_never_print() -> None:
    s = load_settings(
        mqtt_url="mqtt://u:url-pw-1@h",
        influx_url="http://h?bucket=b",
        env={"HIPSTRIDE_INFLUX_TOKEN": "tok-2", "HIPSTRIDE_INFLUX_PASSWORD": "pw-3"},
    )
    assert s.mqtt is not None and s.influx is not None
    text = repr(s) + str(s) + s.mqtt.target() + s.influx.target()
    for secret in ("url-pw-1", "tok-2", "pw-3"):
        assert secret not in text
    assert s.redactor()("failed for http://u:url-pw-1@h with tok-2") == (
        "failed for http://u:***@h with ***"
    )
    with pytest.raises(UsageError) as err:
        load_settings(mqtt_url="mqtx://u:url-pw-1@h", env={})
    assert "url-pw-1" not in str(err.value)


def test_missing_optional_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for module in ("paho", "paho.mqtt", "paho.mqtt.client", "influxdb_client"):
        monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like
    cases = {
        "--mqtt": ("mqtt://127.0.0.1:9", "MQTT publishing needs the 'paho' package"),
        "--influx": ("http://127.0.0.1:9?bucket=b", "needs the 'influxdb_client' package"),
    }
    for flag, (url, message) in cases.items():
        args = parse([flag, url, "--spool-dir", str(tmp_path)])
        with pytest.raises(UsageError) as err:
            sinks_from_args(args)
        assert message in str(err.value)
        assert str(err.value).endswith(": pip install 'hipstride[publish]'")
        assert "\n" not in str(err.value)


def test_unreadable_tls_file_is_one_line(tmp_path: Path) -> None:
    s = load_settings(
        mqtt_url=f"mqtts://127.0.0.1:9?ca_file={tmp_path / 'missing.pem'}",
        spool_dir=str(tmp_path),
        env={},
    )
    with pytest.raises(UsageError, match="MQTT TLS settings"):
        make_sinks(s)


def test_cli_never_prints_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.cli import main

    secret = "pw-Qz81x-secret"
    monkeypatch.setenv("HIPSTRIDE_INFLUX_TOKEN", secret)
    dead = "127.0.0.1:9"  # nothing listens: connection errors get reported
    runs = [
        ["run", "--source", f"http://u:{secret}@h"],  # a bad URL, quoted in the error
        ["watch", "--mqtt", f"mqtt://u:{secret}@{dead}", "--once", "--duration", "0.3"],
        [
            "run",
            "--source",
            f"mqtt://u:{secret}@{dead}",
            "--duration",
            "0.3",
            "--influx",
            f"http://{dead}?bucket=b",
            "--spool-dir",
            str(tmp_path),
        ],
    ]
    errors = []
    for argv in runs:
        main(argv)
        out, err = capsys.readouterr()
        assert secret not in out + err, argv
        errors.append(err)
    assert "'http://u:***@h' must look like mqtt://" in errors[0]
