"""The installed wheel, not the source tree, imports and runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    wheels = list((tmp / "dist").glob("hipstride-*.whl"))
    assert len(wheels) == 1
    site = tmp / "site"
    inst = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheels[0]),
        ],
        capture_output=True,
        text=True,
    )
    assert inst.returncode == 0, inst.stderr
    return tmp, site


def _env(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(site)  # ahead of the editable install of the source tree
    return env


def test_wheel_imports_from_its_own_files(installed_wheel):
    tmp, site = installed_wheel
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sensors, pipeline, sensors.recording, sensors.simulator, pipeline.engine;"
            "print(sensors.__file__); print(pipeline.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=_env(site),
    )
    assert out.returncode == 0, out.stderr
    for line in out.stdout.split():
        assert line.startswith(str(site)), line


def test_wheel_console_script_runs_the_pipeline(installed_wheel):
    tmp, site = installed_wheel
    script = site / "bin" / "hipstride"
    assert script.exists()
    env = _env(site)
    ver = subprocess.run(
        [sys.executable, str(script), "--version"], capture_output=True, text=True, cwd=tmp, env=env
    )
    assert ver.returncode == 0 and "hipstride" in ver.stdout
    rec = tmp / "r.hsr"
    sim = subprocess.run(
        [sys.executable, str(script), "simulate", "--duration-s", "10", str(rec)],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env,
    )
    assert sim.returncode == 0, sim.stderr
    rep = subprocess.run(
        [sys.executable, str(script), "replay", str(rec), "--out", str(tmp / "o")],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env,
    )
    assert rep.returncode == 0, rep.stderr
    assert (tmp / "o" / "steps.csv").read_text().count("\n") > 20
