"""Step records survive steps.csv: the CSV sink and its reader are inverses."""

from __future__ import annotations

import csv

import pytest

from pipeline.records import StepRecord
from pipeline.sinks.files import RunDirSink


def test_steps_csv_round_trip(tmp_path):
    recs = [
        StepRecord(
            side="left",
            ic_s=1.25,
            to_s=1.5,
            contact_ms=250.0,
            step_ms=352.5,
            pelvic_drop_deg=5.25,
            gait="run",
            source="left_foot",
            index=0,
        ),
        StepRecord(
            side="right",
            ic_s=1.6025,
            to_s=1.85,
            contact_ms=247.5,
            flight_ms=102.5,
            gait="walk",
            source="pelvis",
            confidence=0.5,
            index=1,
        ),
    ]
    sink = RunDirSink(tmp_path)
    sink.add([r.as_dict() for r in recs])
    sink.close()
    with open(tmp_path / "steps.csv", newline="") as f:
        back = [StepRecord.from_csv_row(row) for row in csv.DictReader(f)]
    assert [b.as_dict() for b in back] == [r.as_dict() for r in recs]


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"side": "middle"}, "side"),
        ({"contact_ms": "fast"}, "contact_ms"),
        ({"ic_s": ""}, "ic_s"),
        ({"gait": "hop"}, "gait"),
    ],
)
def test_bad_rows_name_the_column(change, problem):
    row = {"side": "left", "ic_s": "1.0", "to_s": "1.25", "contact_ms": "250", "gait": "run"}
    row.update(change)
    with pytest.raises(ValueError, match=problem):
        StepRecord.from_csv_row(row)
