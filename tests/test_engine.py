"""Engine behaviour that is not chunking: a stalled sensor does not freeze the output,
and what it costs is counted in the summary."""

from __future__ import annotations

from pipeline.engine import Pipeline, run_all
from sensors.model import Chunk
from sensors.simulator import SimConfig, simulate


def test_stalled_sensor_releases_others_and_counts_late_steps():
    sim = simulate(SimConfig(duration_s=40.0, sensors=("pelvis", "left_foot"), seed=2))
    chunks = list(sim.chunks())
    pelvis = [c for c in chunks if c.placement == "pelvis"]
    foot = [c for c in chunks if c.placement == "left_foot"]
    pipe = Pipeline(sim.placements)
    out = []
    # The shoe goes silent for 30 s of the pelvis's data, then catches up in one go.
    for c in pelvis[:30]:
        out += pipe.push(c)
    steps_while_stalled = sum(1 for r in out if r.kind == "step")
    assert steps_while_stalled > 20  # the pelvis alone kept the output moving
    for c in foot + pelvis[30:]:
        out += pipe.push(c)
    out += pipe.flush()
    summary = pipe.summary_dict()
    late = summary["data_quality"]["steps_dropped_late"]
    assert late > 0
    ics = [r.ic_s for r in out if r.kind == "step"]
    assert ics == sorted(ics)  # order is never broken to fit the late shoe in


def test_in_time_sensors_drop_nothing():
    sim = simulate(SimConfig(duration_s=20.0, sensors=("pelvis", "left_foot"), seed=2))
    pipe = Pipeline(sim.placements)
    run_all(pipe, sim.chunks())
    assert pipe.summary_dict()["data_quality"]["steps_dropped_late"] == 0


def test_unknown_sensor_is_refused():
    pipe = Pipeline(("pelvis",))
    sim = simulate(SimConfig(duration_s=5.0, sensors=("left_foot",), seed=1))
    chunk: Chunk = next(iter(sim.chunks()))
    try:
        pipe.push(chunk)
    except ValueError as err:
        assert "left_foot" in str(err)
    else:
        raise AssertionError("a chunk of an undeclared sensor was accepted")
