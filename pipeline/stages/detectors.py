"""Which detector reads which sensor, and which sensors are worn for which side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.records import Side, StepRecord
from pipeline.stages.assemble import SourcePlan
from pipeline.stages.pelvis import PelvisConfig, PelvisTracker
from pipeline.stages.shoe import ShoeConfig, ShoeDetector
from pipeline.stages.stance import ContactDetector, SensorAxes, Stance
from pipeline.stages.trunk import TrunkConfig, TrunkDetector
from sensors.model import Chunk


class Tracker(Protocol):
    """Follows one sensor's stream and adds metrics to steps (e.g. pelvis angles).

    ``complete_until_s``: the tracker can enrich any stance ending before this time.
    """

    complete_until_s: float

    def push(self, chunk: Chunk) -> None: ...

    def flush(self) -> None: ...

    def enrich(self, stance: Stance, rec: StepRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    shoe: ShoeConfig = field(default_factory=ShoeConfig)
    trunk: TrunkConfig = field(default_factory=TrunkConfig)
    pelvis: PelvisConfig = field(default_factory=PelvisConfig)
    #: optional manual mounting per placement (otherwise axes are found from the data)
    axes: dict[str, SensorAxes] = field(default_factory=dict)


def make_detector(
    placement: str, fs_hz: float, has_gyro: bool, config: DetectorConfig
) -> ContactDetector:
    axes = config.axes.get(placement)
    if placement in ("left_foot", "right_foot"):
        side: Side = "left" if placement == "left_foot" else "right"
        return ShoeDetector(side, fs_hz, has_gyro, config.shoe, axes)
    return TrunkDetector(placement, fs_hz, has_gyro, config.trunk, axes)


def make_trackers(
    placement: str, fs_hz: float, has_gyro: bool, config: DetectorConfig
) -> list[Tracker]:
    """Per-sensor metric trackers beside the contact detector."""
    if placement == "pelvis" and has_gyro:
        return [PelvisTracker(fs_hz, config.pelvis)]
    return []


def pick_sources(placements: Sequence[str]) -> SourcePlan:
    """Preferred source per side (shoe, else pelvis, else chest) and all worn sensors.

    Fusion is per step (see :mod:`pipeline.stages.assemble`): the preference only says
    which sensor speaks for a side when all of them saw the step equally well.
    """
    preferred: dict[Side, str] = {}
    for side in ("left", "right"):
        shoe = f"{side}_foot"
        if shoe in placements:
            preferred[side] = shoe
        elif "pelvis" in placements:
            preferred[side] = "pelvis"
        elif "chest" in placements:
            preferred[side] = "chest"
    return SourcePlan(preferred, placements)
