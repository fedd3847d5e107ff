"""Live latency (issue #3): in ``--speed 1`` mode a step is out within 300 ms of its
toe-off, with a gyroscope pelvis (whose angle tracker has the longest look-ahead).

The stream is pushed in 20 ms pieces in time order, as ``pipeline.driver.paced`` cuts
it; latency is counted in sample time (newest pushed sample when the record came out
minus the step's toe-off), so the test is deterministic and needs no wall clock.
"""

from __future__ import annotations

import pytest

from pipeline.engine import Pipeline
from pipeline.records import StepRecord
from sensors.model import Chunk
from sensors.simulator import SimConfig, simulate

MAX_LATENCY_S = 0.3


@pytest.mark.parametrize(
    "placements",
    [("pelvis", "left_foot", "right_foot"), ("pelvis",)],
    ids=["shoes+pelvis", "pelvis"],
)
def test_step_out_within_300ms_of_toe_off(placements: tuple[str, ...]) -> None:
    sim = simulate(
        SimConfig(duration_s=30.0, fs_hz=200.0, standing_s=5.0, sensors=placements, seed=3)
    )
    per: dict[str, list[Chunk]] = {}
    for c in sim.chunks():
        per.setdefault(c.placement, []).append(c)
    assert per["pelvis"][0].gyr_dps is not None  # the slow case: pelvis angles measured
    pieces = [p for cs in per.values() for p in Chunk.concat(cs).split(4)]  # 20 ms
    pieces.sort(key=lambda c: float(c.t_s[-1]))
    pl = Pipeline(sim.placements)
    late: list[float] = []
    with_drop = 0
    newest = float("-inf")
    for piece in pieces:
        newest = max(newest, float(piece.t_s[-1]))
        for r in pl.push(piece):
            if isinstance(r, StepRecord):
                late.append(newest - r.to_s)
                with_drop += r.pelvic_drop_deg is not None
    assert len(late) > 60
    assert with_drop > 0.8 * len(late)
    assert max(late) <= MAX_LATENCY_S, sorted(late)[-5:]
