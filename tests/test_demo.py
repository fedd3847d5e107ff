"""``hipstride demo``: runs on its embedded default, shows the live view, stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from pipeline.cli import main


def test_demo_runs_fast_and_writes_the_run(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--duration", "20", "--speed", "0", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "hip drop (deg)" in text and "contact (ms)" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] > 40
    assert (
        summary["medians"]["right"]["pelvic_drop_deg"]
        > summary["medians"]["left"]["pelvic_drop_deg"]
    )


def test_demo_exits_cleanly_on_ctrl_c_with_summary(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "demo", "--duration", "60", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    # Wait until the run is under way (steps written), then press Ctrl-C. The deadline
    # is generous because a loaded 2-core CI machine can take long to start Python.
    deadline = time.monotonic() + 120
    steps = out / "steps.csv"
    while time.monotonic() < deadline:
        if steps.exists() and steps.read_text().count("\n") > 5:
            break
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("the demo wrote no steps within 120 s")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert summary["steps"] > 0
