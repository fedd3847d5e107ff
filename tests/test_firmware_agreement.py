"""The C packer in firmware_stubs/ and the Python side agree byte for byte.

Compiles firmware_stubs/test/pack_vectors.c with the host C compiler (strict C99,
warnings as errors), runs it, and for every packet it prints checks that the Python
decoder returns exactly the C program's input samples and that the Python packer (the
virtual sensor's) produces the same bytes from the same inputs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sensors.model import GRAVITY_MPS2
from sensors.protocols import hipstride_profile as hp

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "firmware_stubs"
CC = shutil.which("gcc") or shutil.which("cc")

pytestmark = pytest.mark.skipif(
    CC is None, reason="no C compiler (gcc/cc) on PATH: cannot build firmware_stubs/test"
)


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    assert CC is not None
    exe = tmp_path_factory.mktemp("fw") / "pack_vectors"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion"]
    sources = [STUBS / "test" / "pack_vectors.c", STUBS / "hipstride_pack.c"]
    build = subprocess.run(
        [CC, *flags, f"-I{STUBS}", *map(str, sources), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in run.stdout.splitlines()]


def packets(vectors: list[dict]) -> list[dict]:
    return [v for v in vectors if v["kind"] == "packet"]


def config_of(v: dict) -> hp.StreamConfig:
    return hp.StreamConfig(v["rate_hz"], v["acc_range_g"], v["gyr_range_dps"])


def test_c_program_covers_the_cases(vectors: list[dict]) -> None:
    assert [v["name"] for v in packets(vectors)] == ["spec_vector", "full_6axis", "acc_only"]


def test_c_bytes_match_the_hand_written_spec_vector(vectors: list[dict]) -> None:
    spec = packets(vectors)[0]
    # Same bytes as PROTOCOL.md's worked example and tests/test_protocol_hipstride.py.
    assert spec["hex"] == (
        "01010110d007d000ffffffff04030201" + "0008" + "00f8" + "ff7f" + "0080" + "0000" + "0040"
    )


def test_python_decodes_c_packets_exactly(vectors: list[dict]) -> None:
    for v in packets(vectors):
        out = hp.decode_packet(bytes.fromhex(v["hex"]))
        acc_scale = v["acc_range_g"] * GRAVITY_MPS2 / 32768.0
        np.testing.assert_array_equal(out.acc_mps2, np.array(v["acc"]) * acc_scale)
        if v["gyr"] is None:
            assert out.gyr_dps is None
        else:
            np.testing.assert_array_equal(
                out.gyr_dps, np.array(v["gyr"]) * (v["gyr_range_dps"] / 32768.0)
            )
        assert out.sample_counter == v["counter"]
        assert out.sensor_time_s == pytest.approx(v["timestamp_us"] * 1e-6, abs=1e-9)
        assert out.rate_hz == v["rate_hz"]


def test_python_packer_matches_c_byte_for_byte(vectors: list[dict]) -> None:
    for v in packets(vectors):
        gyr = None if v["gyr"] is None else np.array(v["gyr"], dtype=np.int16)
        py = hp.pack_packet(
            config_of(v), v["counter"], v["timestamp_us"], np.array(v["acc"], dtype=np.int16), gyr
        )
        assert py.hex() == v["hex"], v["name"]


def test_batching_helper_counts_and_stamps_first_samples(vectors: list[dict]) -> None:
    batches = [hp.decode_packet(bytes.fromhex(v["hex"])) for v in vectors if v["kind"] == "packer"]
    assert [b.sample_counter for b in batches] == [0, 4]
    assert [round((b.sensor_time_s or 0) * 1e6) for b in batches] == [1_000_000, 1_019_232]
    assert all(len(b) == 4 for b in batches)


def test_commands_agree(vectors: list[dict]) -> None:
    (start,) = [v for v in vectors if v["kind"] == "start"]
    assert bytes.fromhex(start["hex"]) == hp.start_command(config_of(start))
    (parse,) = [v for v in vectors if v["kind"] == "parse"]
    assert parse == {"kind": "parse", "start": 1, "same": 1, "stop": 1}


def test_c_refuses_what_python_refuses(vectors: list[dict]) -> None:
    (refused,) = [v for v in vectors if v["kind"] == "refused"]
    assert refused == {
        "kind": "refused",
        "n0": 0,
        "n20": 0,
        "cap": 0,
        "config": 0,
        "command": 0,
        "mtu23": 0,  # default MTU: nothing fits, the firmware must negotiate a larger one
        "mtu247": hp.MAX_SAMPLES,
    }
