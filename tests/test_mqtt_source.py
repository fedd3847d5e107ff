"""Raw chunks over MQTT: several athletes through one broker into per-athlete pipelines."""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.publish as paho_publish

from pipeline.commands import run as run_cmd
from pipeline.live import AthleteRouter
from pipeline.mqtt_raw import RawChunkPublisher
from pipeline.sinks.config import MqttSettings
from sensors.model import Chunk
from sensors.mqtt_codec import encode_chunk
from tests.servers import Mosquitto, Subscriber


def settings(port: int) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=port, reconnect_min_s=1, reconnect_max_s=1)


def random_chunks(seed: int, n: int) -> list[Chunk]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        for placement in ("pelvis", "left_foot"):
            t = i + np.arange(50) / 50.0
            gyr = rng.normal(size=(50, 3)) if placement == "pelvis" else None
            out.append(Chunk(placement, t, rng.normal(size=(50, 3)), gyr, f"dev-{seed}"))
    return out


def publish_all(port: int, tmp_path: Path, streams: dict[str, list[Chunk]]) -> None:
    """Each athlete's collector publishes its chunks, athletes interleaved, then ends."""
    pubs = {
        a: RawChunkPublisher(settings(port), a, spool_dir=tmp_path / f"raw-{a}") for a in streams
    }
    tees = [pubs[a].tee(chunks) for a, chunks in streams.items()]
    for _ in itertools.zip_longest(*tees):  # athletes interleaved; ends after each stream
        pass
    for pub in pubs.values():
        assert pub.close(10.0) == 0


def test_athletes_stay_apart_and_in_order(
    mosquitto: Mosquitto, tmp_path: Path, caplog: Any
) -> None:
    streams = {
        "anna": random_chunks(1, 30),
        "ben": random_chunks(2, 20),
        "cleo": random_chunks(3, 25),
    }
    received: dict[str, list[Chunk]] = {}

    def runner(athlete: str, chunks: Iterator[Chunk]) -> int:
        received[athlete] = list(chunks)
        return len(received[athlete])

    router = AthleteRouter(runner)
    done = run_cmd_serve(mosquitto.port, router, tmp_path, streams)
    assert done, "the run ends by itself once every athlete sent its end markers"
    assert "hipstride/anna/raw/pelvis: dropped message 1: raw chunk: 7 bytes" in caplog.text
    assert "hipstride/../raw/pelvis: dropped message 2: athlete name '..'" in caplog.text
    assert sorted(received) == sorted(streams)
    for athlete, sent in streams.items():
        got = received[athlete]
        assert len(got) == len(sent)
        assert all(
            a.equals(b) and a.device_id == b.device_id for a, b in zip(got, sent, strict=True)
        )


def run_cmd_serve(
    port: int, router: AthleteRouter, tmp_path: Path, streams: dict[str, list[Chunk]]
) -> bool:
    import threading

    # A broken message on a raw topic is counted and skipped, never fatal.
    thread = threading.Thread(
        target=run_cmd.serve,
        args=(settings(port), router),
        kwargs={"until_done": True, "duration_s": 60.0},
    )
    thread.start()
    wait_subscribed(port)
    paho_publish.single("hipstride/anna/raw/pelvis", b"garbage", qos=1, port=port)
    good = encode_chunk(random_chunks(9, 1)[0])
    paho_publish.single("hipstride/../raw/pelvis", good, qos=1, port=port)  # no '..' dirs
    publish_all(port, tmp_path, streams)
    thread.join(70)
    return router.all_done()


def wait_subscribed(port: int, n: int = 1) -> None:
    """Until ``n`` other subscriptions exist (the broker's $SYS count, every second)."""
    import time

    probe = Subscriber(port, ["$SYS/broker/subscriptions/count"])
    end = time.monotonic() + 10
    while time.monotonic() < end:
        counts = [p for t, p, _ in probe.messages]
        if counts and int(counts[-1]) >= n + 1:  # + the probe's own
            break
        time.sleep(0.05)
    probe.close()


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    run_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


def steps_csv(path: Path) -> str:
    return (path / "steps.csv").read_text()


def test_run_command_end_to_end_matches_each_athlete_alone(
    mosquitto: Mosquitto, tmp_path: Path, capsys: Any
) -> None:
    """Two simulated runners through ``hipstride run``: each one's steps equal a replay of
    that runner alone, and the steps are published to the broker."""
    import threading

    from pipeline.driver import drive
    from pipeline.engine import Pipeline
    from pipeline.sinks.files import RunDirSink
    from sensors.simulator import SimConfig, simulate

    sims = {
        "anna": simulate(SimConfig(duration_s=20, cadence_spm=170, seed=1)),
        "ben": simulate(SimConfig(duration_s=16, cadence_spm=182, hip_drop_deg=(4.0, 7.0), seed=2)),
    }
    for name, sim in sims.items():
        drive(sim.chunks(), Pipeline(sim.config.sensors), [RunDirSink(tmp_path / "alone" / name)])

    results = Subscriber(mosquitto.port, ["hipstride/+/steps", "hipstride/+/summary"])
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    argv = ["run", "--source", url, "--mqtt", url, "--out", str(tmp_path / "live"),
            "--until-done", "--duration", "90", "--spool-dir", str(tmp_path / "spool")]  # fmt: skip
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(cli(argv)))
    thread.start()
    wait_subscribed(mosquitto.port, 2)  # the results subscriber and run's source
    publish_all(mosquitto.port, tmp_path, {n: list(s.chunks()) for n, s in sims.items()})
    thread.join(100)
    assert codes == [0]
    out = capsys.readouterr().out
    for name in sims:
        alone = steps_csv(tmp_path / "alone" / name)
        assert steps_csv(tmp_path / "live" / name) == alone
        n_steps = alone.count("\n") - 1
        assert n_steps > 30 and f"{name}: {n_steps} steps" in out
        published = results.wait_count(f"/{name}/steps", n_steps, 10)
        assert [p["index"] for p in published] == list(range(n_steps))
    finals = [p for p in results.payloads("/summary") if p.get("final")]
    assert sorted(p["athlete"] for p in finals) == ["anna", "ben"]
    results.close()


def test_publisher_status_names_no_secret(tmp_path: Path) -> None:
    from pipeline.sinks.config import Secret

    s = MqttSettings(host="127.0.0.1", port=9, username="u", password=Secret("pw-77x"))
    pub = RawChunkPublisher(s, "anna", spool_dir=tmp_path)
    pub.publish(random_chunks(0, 1)[0])
    status = pub.status()
    pub.close(0.1)
    assert (
        "pw-77x" not in json.dumps(status) and status["target"] == "mqtt://u@127.0.0.1:9/hipstride"
    )
