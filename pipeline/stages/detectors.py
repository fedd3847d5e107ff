"""Which detector reads which sensor, and which sensor speaks for which side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.records import Side, StepRecord
from pipeline.stages.pelvis import PelvisConfig, PelvisTracker
from pipeline.stages.shoe import ShoeConfig, ShoeDetector
from pipeline.stages.stance import ContactDetector, Stance
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


def make_detector(
    placement: str, fs_hz: float, has_gyro: bool, config: DetectorConfig
) -> ContactDetector:
    if placement in ("left_foot", "right_foot"):
        side: Side = "left" if placement == "left_foot" else "right"
        return ShoeDetector(side, fs_hz, has_gyro, config.shoe)
    return TrunkDetector(placement, fs_hz, has_gyro, config.trunk)


def make_trackers(
    placement: str, fs_hz: float, has_gyro: bool, config: DetectorConfig
) -> list[Tracker]:
    """Per-sensor metric trackers beside the contact detector."""
    if placement == "pelvis" and has_gyro:
        return [PelvisTracker(fs_hz, config.pelvis)]
    return []


def pick_sources(placements: Sequence[str]) -> dict[Side, str]:
    """Shoe events are the most precise; a pelvis sensor beats a chest strap."""
    sources: dict[Side, str] = {}
    for side in ("left", "right"):
        shoe = f"{side}_foot"
        if shoe in placements:
            sources[side] = shoe
        elif "pelvis" in placements:
            sources[side] = "pelvis"
        elif "chest" in placements:
            sources[side] = "chest"
    return sources
