"""``hipstride simulate`` -> ``replay``: the three output files, against the truth."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.records import StepRecord

REQUIRED = [
    *("side", "ic_s", "to_s", "contact_ms", "flight_ms", "step_ms", "cadence_spm"),
    "pelvic_drop_deg",
]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    rec = d / "run.hsr"
    code = main(["simulate", "--duration-s", "40", "--loss-pct", "1", "--seed", "4", str(rec)])
    assert code == 0
    return rec


def _read_steps(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("fmt", ["native", "csv"])
def test_replay_writes_three_files_matching_truth(simulated, tmp_path, fmt, capsys):
    rec = simulated
    if fmt == "csv":
        rec = tmp_path / "run.csv"
        assert main(["convert", str(simulated), str(rec)]) == 0
    out = tmp_path / "out"
    assert main(["replay", str(rec), "--out", str(out)]) == 0
    steps = _read_steps(out / "steps.csv")
    with open(out / "steps.csv") as f:
        header = f.readline().strip().split(",")
    assert header[: len(REQUIRED)] == REQUIRED
    assert header == list(StepRecord.CSV_COLUMNS)
    truth = _read_steps(simulated.with_suffix(".truth.csv"))
    assert abs(len(steps) - len(truth)) <= 2
    t_ic = np.array([float(r["ic_s"]) for r in truth])
    matched = 0
    for s in steps:
        k = int(np.argmin(np.abs(t_ic - float(s["ic_s"]))))
        if abs(t_ic[k] - float(s["ic_s"])) < 0.02 and s["side"] == truth[k]["side"]:
            matched += 1
    assert matched >= 0.97 * len(truth)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == len(steps)
    assert summary["medians"]["left"]["contact_ms"] == pytest.approx(250, abs=10)
    assert summary["sensors"]["left_foot"]["samples_lost"] > 0
    assert (out / "alerts.jsonl").exists()
    assert "steps" in capsys.readouterr().out


def test_replay_outputs_identical_for_csv_and_native(simulated, tmp_path):
    csv_rec = tmp_path / "run.csv"
    assert main(["convert", str(simulated), str(csv_rec)]) == 0
    for rec, name in ((simulated, "a"), (csv_rec, "b")):
        assert main(["replay", str(rec), "--out", str(tmp_path / name), "--quiet"]) == 0
    a = (tmp_path / "a" / "steps.csv").read_text()
    b = (tmp_path / "b" / "steps.csv").read_text()
    assert a == b and a.count("\n") > 50


@pytest.mark.parametrize(
    "content, problem",
    [
        ("", "empty"),
        ("time,sensor\n1,pelvis\n", "header"),
        (
            "time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0.0,knee,0,0,9.8,,,\n",
            "knee",
        ),
    ],
)
def test_replay_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, problem):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    assert main(["replay", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "bad.csv" in err[0] and problem in err[0].lower()
    assert "Traceback" not in err[0]


def test_replay_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nope.csv" in err and "Traceback" not in err


def test_replay_rejects_bad_speed(simulated, tmp_path, capsys):
    assert main(["replay", str(simulated), "--out", str(tmp_path / "o"), "--speed", "-1"]) == 2
    assert "--speed" in capsys.readouterr().err
