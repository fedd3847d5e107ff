"""docker-compose.yml and docker/: validated without a Docker engine.

* the Compose Specification's JSON schema (vendored: tests/data/compose-spec.json);
* Debian's docker-compose 1.29 ``config``, when installed (apt-get install docker-compose);
* what the stack promises: its services, pinned images, health checks, named volumes,
  secrets only from .env;
* the Mosquitto configuration, run by a real Mosquitto 2 with the stack's password and
  ACL set-up: authentication and topic rights as a client sees them;
* the demo entrypoint's replay command, parsed by hipstride's own command line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="pip install 'hipstride[test]' (pyyaml)")

from tests.servers import Server, find_binary, running  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
SERVICES = {"mosquitto", "influxdb", "grafana", "hipstride"}
SECRET = re.compile(r"PASSWORD|TOKEN|SECRET")
#: an image reference pinned to a version: name:1.2 or name:1.2.3 (optionally -variant)
PINNED = re.compile(r"^[a-z0-9][a-z0-9._/-]*:\d+(\.\d+)+(-[a-z0-9.-]+)?$")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text("utf-8")))


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text("utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=value: {line!r}"
            out[key.strip()] = value.strip()
    return out


def env_with_secrets() -> dict[str, str]:
    """.env.example with every empty secret filled in (what a user's .env looks like)."""
    return {k: v or f"test-{k.lower()}-value" for k, v in env_example().items()}


# ---------------------------------------------------------------------------------
# Schema and docker-compose
# ---------------------------------------------------------------------------------
def schema_errors(doc: dict[str, Any]) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema", reason="pip install 'hipstride[test]'")
    schema = json.loads(SCHEMA.read_text("utf-8"))
    # The schema names draft 2019-09 by a URI jsonschema does not know ("http://...#"),
    # so the draft is chosen here rather than guessed from "$schema".
    validator = jsonschema.Draft201909Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_compose_file_follows_the_compose_specification_schema() -> None:
    assert schema_errors(compose()) == []


def test_the_schema_check_catches_mistakes() -> None:
    bad = compose()
    bad["services"]["grafana"]["healthcheck"]["interval"] = 10  # must be a duration string
    bad["services"]["mosquitto"]["restart_policy"] = "always"  # not a service key
    errors = schema_errors(bad)
    assert any("grafana/healthcheck/interval" in e for e in errors), errors
    assert any("restart_policy" in e for e in errors), errors


def docker_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose 1.29 not installed (apt-get install docker-compose)")
    # Only the env file: neither a developer's .env nor this shell's variables count.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)}
    cmd = [binary, "--project-directory", str(ROOT), "--env-file", str(env_file)]
    cmd += ["-f", str(COMPOSE_FILE), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_docker_compose_config_accepts_it_once_secrets_are_set(tmp_path: Path) -> None:
    env_file = tmp_path / "filled.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env_with_secrets().items()))
    result = docker_compose(env_file, "config")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == SERVICES
    grafana_env = resolved["services"]["grafana"]["environment"]
    assert grafana_env["GF_SECURITY_ADMIN_PASSWORD"] == "test-grafana_admin_password-value"


def test_docker_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / "example.env"
    shutil.copy(ENV_EXAMPLE, env_file)  # as committed: every secret empty
    result = docker_compose(env_file, "config", "-q")
    assert result.returncode != 0
    assert re.search(r"set \w+(PASSWORD|TOKEN) in \.env", result.stderr), result.stderr


# ---------------------------------------------------------------------------------
# What the stack promises
# ---------------------------------------------------------------------------------
def test_services_images_health_checks_and_volumes() -> None:
    doc = compose()
    services = doc["services"]
    assert set(services) == SERVICES
    for name, svc in services.items():
        image = svc["image"]
        assert PINNED.match(image) and not image.endswith(":latest"), f"{name}: {image}"
        test = svc["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
        assert svc.get("restart") == "unless-stopped", name
    assert services["hipstride"]["build"]["dockerfile"] == "docker/Dockerfile"
    for name in ("grafana", "hipstride"):
        for dep, cond in services[name]["depends_on"].items():
            assert cond == {"condition": "service_healthy"}, (name, dep)
    # data lives in named volumes, all declared, all used
    declared = set(doc["volumes"])
    used = set()
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source, _target, *mode = volume.split(":")
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
                assert mode == ["ro"], f"{name}: {source} must be mounted read-only"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared
    data_dirs = {
        "mosquitto": "/mosquitto/data",
        "influxdb": "/var/lib/influxdb2",
        "grafana": "/var/lib/grafana",
        "hipstride": "/var/lib/hipstride",
    }
    for name, path in data_dirs.items():
        targets = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        assert targets.get(path) in declared, f"{name}: {path} is not a named volume"
    # ports only on HIPSTRIDE_BIND_ADDRESS, which defaults to this machine
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("${HIPSTRIDE_BIND_ADDRESS:-127.0.0.1}:"), (name, port)


def all_strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in all_strings(v, f"{path}/{k}")]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in all_strings(v, f"{path}/{i}")]
    return [(path, str(node))]


def test_no_secret_is_inline_and_every_one_is_required() -> None:
    doc = compose()
    example = env_example()
    for name, svc in doc["services"].items():
        for key, value in svc.get("environment", {}).items():
            if SECRET.search(key):
                # ${NAME:?message}: compose stops when it is unset or empty; no default
                m = re.fullmatch(r"\$\{(\w+):\?[^}]+\}", str(value))
                assert m, f"{name}: {key} must come from .env, required, without default"
                assert SECRET.search(m.group(1)) and example.get(m.group(1)) == "", (
                    f"{m.group(1)} must be in .env.example with an empty value"
                )
    for where, value in all_strings(doc):
        for var in re.findall(r"(?<!\$)\$\{(\w+)", value):
            assert var in example, f"{where}: {var} is not in .env.example"
        assert not re.search(r"://[^/@:\s]+:[^/@\s]+@", value), f"password in a URL at {where}"
    for key, value in example.items():
        if SECRET.search(key):
            assert value == "", f".env.example: {key} must be empty (no default password)"
    assert ".env" in (ROOT / ".gitignore").read_text().split(), ".env must stay git-ignored"


def test_grafana_provisioning_reads_its_secrets_from_the_environment() -> None:
    grafana_env = compose()["services"]["grafana"]["environment"]
    provisioning = ROOT / "dashboards" / "provisioning"
    for path in sorted(provisioning.rglob("*.yaml")):
        for var in re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", path.read_text("utf-8")):
            assert var in grafana_env, f"{path.name} uses ${var}, not passed to Grafana"
    ds = yaml.safe_load((provisioning / "datasources" / "hipstride.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["secureJsonData"]["password"].startswith("$")


def test_dockerfile_is_pinned_and_runs_as_a_user() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text("utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(PINNED.match(b) for b in bases), bases
    assert re.search(r"^USER\s+(?!root)\w+", text, re.M)
    for line in re.findall(r"^COPY\s+(.+)$", text, re.M):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_scripts_are_executable_and_parse() -> None:
    for rel in (
        "docker/influxdb/init/10-hipstride.sh",  # the influxdb image runs only +x scripts
        "docker/hipstride/entrypoint.sh",
        "docker/mosquitto/start.sh",
    ):
        path = ROOT / rel
        assert path.stat().st_mode & stat.S_IXUSR, f"{rel} is not executable"
        shell = "bash" if path.read_text().startswith("#!/bin/bash") else "sh"
        assert subprocess.run([shell, "-n", str(path)]).returncode == 0, rel


def test_influx_init_script_gets_the_variables_it_needs() -> None:
    influx_env = compose()["services"]["influxdb"]["environment"]
    script = (ROOT / "docker" / "influxdb" / "init" / "10-hipstride.sh").read_text()
    for var in set(re.findall(r"\$\{?(INFLUXDB_\w+)", script)):
        assert var in influx_env, var
    assert "influx v1 dbrp create --db hipstride" in script
    # hipstride and Grafana get the least-privilege v1 users, never the admin token
    hip_env = compose()["services"]["hipstride"]["environment"]
    assert hip_env["HIPSTRIDE_INFLUX_URL"].endswith("?db=hipstride")
    assert not any("ADMIN" in str(v) for v in hip_env.values())


# ---------------------------------------------------------------------------------
# Mosquitto with the stack's configuration
# ---------------------------------------------------------------------------------
class StackMosquitto(Server):
    """docker/mosquitto/ as the container runs it, with its paths moved to a temporary
    directory and the listener to a free port."""

    name = "mosquitto"

    def __init__(self, binary: str, workdir: Path, passwords: dict[str, str]) -> None:
        super().__init__(binary, workdir)
        src = ROOT / "docker" / "mosquitto"
        conf = (src / "mosquitto.conf").read_text()
        assert re.search(r"^listener 1883$", conf, re.M), "one listener, on all interfaces"
        conf = conf.replace("/mosquitto/auth/", f"{workdir}/auth/")
        conf = conf.replace("/mosquitto/data/", f"{workdir}/data/")
        conf = conf.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        conf = conf.replace("log_dest stdout", f"log_dest file {workdir}/broker.log")
        # as root, mosquitto would switch to the 'mosquitto' user (see tests/servers.py)
        import pwd

        conf += f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
        (workdir / "data").mkdir()
        (workdir / "auth").mkdir(mode=0o700)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(conf)
        # what start.sh does, with the same tool
        start = (src / "start.sh").read_text()
        passwd = find_binary("mosquitto_passwd", "mosquitto")
        pwfile = workdir / "auth" / "passwd"
        pwfile.write_text("")
        for user, var in re.findall(r'mosquitto_passwd -b "\$auth/passwd" (\w+) "\$(\w+)"', start):
            subprocess.run([passwd, "-b", str(pwfile), user, passwords[var]], check=True)
        shutil.copy(src / "acl", workdir / "auth" / "acl")
        os.chmod(pwfile, 0o600)
        os.chmod(workdir / "auth" / "acl", 0o600)

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.conf)]


@pytest.fixture
def stack_mosquitto(tmp_path: Path) -> Iterator[tuple[StackMosquitto, dict[str, str]]]:
    pytest.importorskip("paho.mqtt.client", reason="pip install 'hipstride[publish]'")
    passwords = {"MQTT_HIPSTRIDE_PASSWORD": "pub-s3cret", "MQTT_COACH_PASSWORD": "coach-s3cret"}
    binary = find_binary("mosquitto", "mosquitto")
    with running(StackMosquitto(binary, tmp_path / "mq", passwords)) as server:
        assert isinstance(server, StackMosquitto)
        yield server, passwords


def connect(port: int, user: str | None, password: str | None) -> tuple[Any, int]:
    """A connected client and its CONNACK reason code (0: accepted)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if user:
        client.username_pw_set(user, password)
    done = threading.Event()
    code: list[int] = []

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        code.append(reason.value)
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    assert done.wait(10), "no CONNACK"
    return client, code[0]


def test_broker_needs_a_password_and_keeps_coaches_read_only(
    stack_mosquitto: tuple[StackMosquitto, dict[str, str]],
) -> None:
    broker, pw = stack_mosquitto
    clients = []
    try:
        for user, password in ((None, None), ("coach", "wrong"), ("hipstride", "")):
            client, code = connect(broker.port, user, password)
            clients.append(client)
            assert code != 0, f"{user or 'anonymous'} must be refused"
        coach, code = connect(broker.port, "coach", pw["MQTT_COACH_PASSWORD"])
        clients.append(coach)
        assert code == 0
        got: list[tuple[str, bytes]] = []
        arrived = threading.Condition()

        def on_message(c: Any, userdata: Any, msg: Any) -> None:
            with arrived:
                got.append((msg.topic, bytes(msg.payload)))
                arrived.notify_all()

        coach.on_message = on_message
        subscribed = threading.Event()
        coach.on_subscribe = lambda *a: subscribed.set()
        coach.subscribe("hipstride/#", qos=1)
        assert subscribed.wait(10)
        pub, code = connect(broker.port, "hipstride", pw["MQTT_HIPSTRIDE_PASSWORD"])
        clients.append(pub)
        assert code == 0
        # a coach cannot publish into the athletes' topics (dropped by the ACL) ...
        coach.publish("hipstride/anna/steps", b"forged", qos=1).wait_for_publish(5)
        # ... hipstride can, and the coach receives it
        pub.publish("hipstride/anna/steps", b"real", qos=1).wait_for_publish(5)
        with arrived:
            arrived.wait_for(lambda: got, timeout=10)
        time.sleep(0.3)  # would a forged message still arrive?
        assert got == [("hipstride/anna/steps", b"real")]
    finally:
        for c in clients:
            c.loop_stop()
            c.disconnect()


def test_broker_health_check_command_passes(
    stack_mosquitto: tuple[StackMosquitto, dict[str, str]],
) -> None:
    broker, pw = stack_mosquitto
    find_binary("mosquitto_sub", "mosquitto-clients")
    test = compose()["services"]["mosquitto"]["healthcheck"]["test"]
    command = test[1].replace("$$", "$").replace("-h localhost", f"-h 127.0.0.1 -p {broker.port}")
    env = {"PATH": os.environ["PATH"], "MQTT_COACH_PASSWORD": pw["MQTT_COACH_PASSWORD"]}
    ok = subprocess.run(["sh", "-c", command], env=env, timeout=20)
    assert ok.returncode == 0, "healthy broker reported unhealthy"
    env["MQTT_COACH_PASSWORD"] = "wrong"
    bad = subprocess.run(["sh", "-c", command], env=env, timeout=20, capture_output=True)
    assert bad.returncode != 0, "the health check must really log in"


# ---------------------------------------------------------------------------------
# The demo entrypoint
# ---------------------------------------------------------------------------------
def test_demo_entrypoint_replays_each_runner_with_a_valid_command(tmp_path: Path) -> None:
    """One pass of the demo with a stand-in ``hipstride`` that records its arguments,
    which hipstride's real command line must then accept."""
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for athlete in ("anna", "ben"):
        (recordings / f"{athlete}.hsr").write_bytes(b"")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "argv.jsonl"
    fake = bin_dir / "hipstride"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(0o755)
    svc_env = compose()["services"]["hipstride"]["environment"]
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HIPSTRIDE_MQTT_URL": svc_env["HIPSTRIDE_MQTT_URL"],
        "HIPSTRIDE_INFLUX_URL": svc_env["HIPSTRIDE_INFLUX_URL"],
        "HIPSTRIDE_DEMO_RECORDINGS": str(recordings),
        "HIPSTRIDE_DEMO_OUT": str(tmp_path / "out"),
        "HIPSTRIDE_STATE_DIR": str(tmp_path),
        "HIPSTRIDE_DEMO_HISTORY": "0",
        "HIPSTRIDE_DEMO_ONCE": "1",
    }
    entry = ROOT / "docker" / "hipstride" / "entrypoint.sh"
    result = subprocess.run(["sh", str(entry)], env=env, timeout=30, capture_output=True)
    assert result.returncode == 0, result.stderr
    calls = sorted(json.loads(line) for line in log.read_text().splitlines())
    assert [c[c.index("--athlete") + 1] for c in calls] == ["anna", "ben"]
    for argv in calls:
        assert argv[0] == "replay" and argv[argv.index("--speed") + 1] == "1"
        assert argv[argv.index("--mqtt") + 1] == svc_env["HIPSTRIDE_MQTT_URL"]
        assert argv[argv.index("--influx") + 1] == svc_env["HIPSTRIDE_INFLUX_URL"]
        from pipeline.cli import build_parser

        try:
            args = build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"hipstride does not accept: hipstride {shlex.join(argv)}")
        assert args.speed == 1.0


def test_readme_gives_the_commands_to_bring_the_stack_up() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("\n## Dashboards\n", 1)[1].split("\n## ", 1)[0]
    for command in ("cp .env.example .env", "docker compose up -d", "http://localhost:3000"):
        assert command in section, command
    for var in (k for k, v in env_example().items() if SECRET.search(k)):
        assert var in section, f"README does not say how to set {var}"
