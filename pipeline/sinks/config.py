"""Publishing settings: MQTT and InfluxDB targets from URL, TOML file and environment.

Layers, later wins: defaults < config file (TOML) < environment < command line.
Every key of a section can come from the environment as ``HIPSTRIDE_<SECTION>_<KEY>``
(``HIPSTRIDE_MQTT_PASSWORD``, ``HIPSTRIDE_INFLUX_TOKEN``, ...), which is where secrets
belong. Secrets are held in :class:`Secret`, whose ``str``/``repr`` never show the
value, so a settings object can be logged or printed without leaking them.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

INSTALL_HINT = "pip install 'hipstride[publish]'"

#: athlete names become MQTT topic levels and InfluxDB tag values
ATHLETE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def usage_error(message: str) -> Exception:
    from pipeline.cli import UsageError  # lazy: pipeline.cli imports the commands

    return UsageError(message)


def import_optional(module: str, feature: str) -> ModuleType:
    """Import an optional dependency, or fail with one line naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise usage_error(
            f"{feature} needs the '{module.split('.')[0]}' package: {INSTALL_HINT}"
        ) from None


class Secret:
    """A password or token: prints as ``***``; ``reveal()`` only where it is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = "localhost"
    port: int = 1883
    #: first topic level; the URL path sets it (``mqtt://host/teamA`` -> ``teamA/...``)
    prefix: str = "hipstride"
    tls: bool = False
    protocol: str = "5"  # "5" or "3.1.1"
    client_id: str = ""  # empty: generated per connection
    username: str | None = None
    password: Secret | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False
    keepalive_s: int = 30
    #: MQTT 5 message expiry of live metrics (summary, sensor status)
    live_expiry_s: int = 60
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    max_queue: int = 10_000
    #: messages per acknowledged batch: large, because Mosquitto's default Nagle delay
    #: (set_tcp_nodelay false) stalls the last PUBACKs of each batch by ~40 ms
    batch_size: int = 1000

    def target(self) -> str:
        """Where it publishes, for status lines: never the password."""
        user = f"{self.username}@" if self.username else ""
        return f"mqtt{'s' if self.tls else ''}://{user}{self.host}:{self.port}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    url: str = "http://localhost:8086"
    api: str = "v2"  # "v2" (/api/v2/write: InfluxDB 2/3, VictoriaMetrics) or "v1" (/write)
    org: str = ""
    bucket: str = "hipstride"
    token: Secret | None = None
    database: str = "hipstride"
    retention_policy: str | None = None
    username: str | None = None
    password: Secret | None = None
    ca_file: str | None = None
    verify_tls: bool = True
    timeout_s: float = 10.0
    batch_size: int = 1000
    flush_interval_s: float = 1.0
    max_queue: int = 10_000

    def target(self) -> str:
        where = f"db={self.database}" if self.api == "v1" else f"bucket={self.bucket}"
        return f"{self.url} ({self.api}, {where})"


@dataclass(frozen=True, slots=True)
class Settings:
    athlete: str = "athlete"
    session: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))
    #: root of the per-sink spool directories
    spool_dir: str = "~/.cache/hipstride/spool"
    mqtt: MqttSettings | None = None
    influx: InfluxSettings | None = None

    def secrets(self) -> list[str]:
        out = []
        for section in (self.mqtt, self.influx):
            for f in dataclasses.fields(section) if section is not None else ():
                value = getattr(section, f.name)
                if isinstance(value, Secret) and value.reveal():
                    out.append(value.reveal())
        return out

    def redactor(self) -> Callable[[str], str]:
        """Masks every secret value in a text (error messages can quote a URL)."""
        secrets = sorted(self.secrets(), key=len, reverse=True)

        def redact(text: str) -> str:
            for s in secrets:
                text = text.replace(s, "***")
            return text

        return redact


def check_athlete(name: str) -> str:
    if not ATHLETE_RE.match(name):
        raise usage_error(
            f"athlete name {name!r} must be 1-64 letters, digits, '_', '.' or '-' "
            "(it becomes an MQTT topic level and an InfluxDB tag)"
        )
    return name


# -- URLs ---------------------------------------------------------------------------------
def mqtt_url_values(url: str) -> dict[str, Any]:
    """``mqtt[s]://[user[:password]@]host[:port][/prefix][?key=value...]`` -> settings."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise usage_error(
            f"MQTT URL {_redact_url(url)!r} must look like mqtt://host[:port][/prefix] "
            "(mqtts:// for TLS)"
        )
    tls = parts.scheme == "mqtts"
    values: dict[str, Any] = {"host": parts.hostname, "tls": tls}
    values["port"] = parts.port or (8883 if tls else 1883)
    prefix = parts.path.strip("/")
    if prefix:
        if any(c in prefix for c in "+#"):
            raise usage_error(f"MQTT topic prefix {prefix!r} must not contain '+' or '#'")
        values["prefix"] = prefix
    values.update(_userinfo(parts.username, parts.password))
    values.update(parse_qsl(parts.query))
    return values


def influx_url_values(url: str) -> dict[str, Any]:
    """``http[s]://[user@]host:port[/path]?bucket=B&org=O`` (v2) or ``?db=D`` (v1)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise usage_error(
            f"InfluxDB URL {_redact_url(url)!r} must look like "
            "http://host:8086?bucket=B&org=O (v2) or http://host:8086?db=D (v1)"
        )
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    values: dict[str, Any] = {"url": f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"}
    values.update(_userinfo(parts.username, parts.password))
    query = dict(parse_qsl(parts.query))
    if "db" in query:
        values["database"] = query.pop("db")
        values.setdefault("api", "v1")
    if "rp" in query:
        values["retention_policy"] = query.pop("rp")
    values.update(query)
    return values


def _userinfo(username: str | None, password: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if username:
        out["username"] = unquote(username)
    if password:
        out["password"] = unquote(password)
    return out


def _redact_url(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


# -- layering -----------------------------------------------------------------------------
_TOP_KEYS = ("athlete", "session", "spool_dir")


def load_settings(
    *,
    config_file: str | Path | None = None,
    mqtt_url: str | None = None,
    influx_url: str | None = None,
    athlete: str | None = None,
    session: str | None = None,
    spool_dir: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if env is None else env
    data = _read_toml(Path(config_file)) if config_file else {}
    # The file is shared (``collect`` keeps its [sensors.*] there too): other top-level
    # keys and tables belong to others; [mqtt] and [influx] are checked strictly.
    top: dict[str, Any] = {k: data[k] for k in _TOP_KEYS if k in data}
    top.update({k: env[v] for k in _TOP_KEYS if (v := f"HIPSTRIDE_{k.upper()}") in env})
    cli = {"athlete": athlete, "session": session, "spool_dir": spool_dir}
    top.update({k: v for k, v in cli.items() if v is not None})
    mqtt = _section(MqttSettings, "mqtt", data, env, mqtt_url, mqtt_url_values)
    influx = _section(InfluxSettings, "influx", data, env, influx_url, influx_url_values)
    settings = Settings(**top, mqtt=mqtt, influx=influx)
    check_athlete(settings.athlete)
    if influx is not None and influx.api not in ("v1", "v2"):
        raise usage_error(f"influx api must be 'v1' or 'v2', not {influx.api!r}")
    if mqtt is not None and mqtt.protocol not in ("5", "3.1.1"):
        raise usage_error(f"mqtt protocol must be '5' or '3.1.1', not {mqtt.protocol!r}")
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise usage_error(f"cannot read config file {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise usage_error(f"config file {path}: {err}") from None


def _section(
    cls: Any,
    name: str,
    data: Mapping[str, Any],
    env: Mapping[str, str],
    cli_url: str | None,
    url_values: Callable[[str], dict[str, Any]],
) -> Any:
    """One section's settings, or None when neither file, env nor command line name a URL."""
    known = tuple(f.name for f in dataclasses.fields(cls))
    file_values = dict(data.get(name, {}))
    _check_keys(name, file_values, (*known, "url"))
    env_values = {
        key: env[var]
        for key in (*known, "url")
        if (var := f"HIPSTRIDE_{name.upper()}_{key.upper()}") in env
    }
    layers = [file_values, env_values, {"url": cli_url} if cli_url else {}]
    if not any("url" in layer for layer in layers):
        return None
    merged: dict[str, Any] = {}
    for layer in layers:
        layer = dict(layer)
        if "url" in layer:
            merged.update(url_values(str(layer.pop("url"))))
        merged.update(layer)
    _check_keys(name, merged, known)
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    return cls(**{k: _coerce(name, k, str(types[k]), v) for k, v in merged.items()})


def _check_keys(section: str, values: Mapping[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise usage_error(
            f"unknown setting [{section}] {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )


def _coerce(section: str, key: str, type_name: str, value: Any) -> Any:
    """A TOML/env/URL value as the dataclass field's type (env and URLs give strings)."""
    if value is None:
        return None
    base = type_name.replace(" | None", "")
    try:
        if base == "Secret":
            return value if isinstance(value, Secret) else Secret(str(value))
        if base == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base == "int":
            return int(value)
        if base == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        shown = "***" if base == "Secret" else repr(value)
        raise usage_error(f"setting [{section}] {key}: {shown} is not a valid {base}") from None
