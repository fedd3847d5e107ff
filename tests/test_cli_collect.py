"""``hipstride collect`` and ``hipstride scan`` as a user runs them.

``collect --virtual`` goes through everything but the radio hardware: virtual sensors
on bumble, the bleak API, the collector thread, the pipeline, the native recording.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.commands.collect import load_specs
from sensors.model import Chunk
from sensors.recording import open_recording

CONFIG = """
athlete = "anna"

[sensors.pelvis]
address = "C0:FF:EE:00:00:01"
protocol = "polar-pmd"

[sensors.left_foot]
address = "C0:FF:EE:00:00:02"
protocol = "movesense"

[sensors.right_foot]
address = "C0:FF:EE:00:00:03"
protocol = "hipstride"

[sensors.pod]
placement = "left_foot"
address = "C0:FF:EE:00:00:04"
protocol = "rsc"
"""


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    pytest.importorskip("bumble")
    root = tmp_path_factory.mktemp("collect")
    config, record = root / "run.toml", root / "run.hsr"
    config.write_text(CONFIG)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            ["collect", "--config", str(config), "--record", str(record), "--virtual",
             "--speed", "4", "--duration", "12", "--out", str(root / "out")]
        )  # fmt: skip
    assert code == 0, out.getvalue()
    return config, record, out.getvalue()


def test_collect_prints_status_and_finds_steps(collected: tuple[Path, Path, str]) -> None:
    _, _, out = collected
    lines = out.splitlines()
    assert len(lines) == 5
    assert all("decode errors 0" in line and "battery 87%" in line for line in lines[:4])
    steps = int(lines[-1].split()[0])
    assert 15 <= steps <= 40  # ~170 steps/min over 12 s, minus the settling at the start


def test_recording_holds_raw_packets_and_samples(collected: tuple[Path, Path, str]) -> None:
    _, record, _ = collected
    recording = open_recording(record)
    assert set(recording.placements) == {"pelvis", "left_foot", "right_foot"}
    protocols = Counter((p[1], p[2]) for p in recording.raw_packets())
    assert set(protocols) == {
        ("pelvis", "polar-pmd"),
        ("left_foot", "movesense"),
        ("left_foot", "rsc"),
        ("right_foot", "hipstride"),
    }


def test_raw_packets_redecode_to_the_recorded_samples(collected: tuple[Path, Path, str]) -> None:
    from sensors.ble.replay import chunks_from_raw

    config, record, _ = collected
    recording = open_recording(record)
    redecoded = list(chunks_from_raw(recording.raw_packets(), load_specs(config)))
    for placement in recording.placements:
        live = Chunk.concat([c for c in recording.chunks() if c.placement == placement])
        again = Chunk.concat([c for c in redecoded if c.placement == placement])
        assert len(again) == len(live)
        np.testing.assert_array_equal(again.t_s, live.t_s)
        np.testing.assert_array_equal(again.acc_mps2, live.acc_mps2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no [sensors.<placement>] tables"),
        ("[sensors.hip]\naddress='x'\nprotocol='rsc'", "placement 'hip' is not one of"),
        ("[sensors.pelvis]\nprotocol='rsc'", "'address' is required"),
        ("[sensors.pelvis]\naddress='x'\nprotocol='ant'", "protocol 'ant' is not one of"),
        ("[sensors.pelvis]\naddress='x'\nprotocol='rsc'\nrate=1", "unknown key(s) ['rate']"),
        ("[sensors.pelvis]\naddress='x'\nprotocol='rsc'", "no motion sensor"),
        ("[sensors.pelvis\n", "config file"),
    ],
)
def test_config_mistakes_are_one_line(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["collect", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_collect_without_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect"]) == 2
    assert "collect needs --config FILE" in capsys.readouterr().err


def test_scan_without_bluetooth_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    # This test machine has no adapter / BlueZ; with one, scan lists what it finds.
    code = main(["scan", "--timeout", "0.5"])
    captured = capsys.readouterr()
    if code == 0:
        pytest.skip("a Bluetooth adapter is present here")
    assert code == 2
    assert captured.err.startswith("hipstride: error: Bluetooth unavailable")
    assert captured.err.count("\n") == 1
