"""Which detector reads which sensor, and which sensor speaks for which side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.records import Side
from pipeline.stages.shoe import ShoeConfig, ShoeDetector
from pipeline.stages.stance import ContactDetector
from pipeline.stages.trunk import TrunkConfig, TrunkDetector


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    shoe: ShoeConfig = field(default_factory=ShoeConfig)
    trunk: TrunkConfig = field(default_factory=TrunkConfig)


def make_detector(
    placement: str, fs_hz: float, has_gyro: bool, config: DetectorConfig
) -> ContactDetector:
    if placement in ("left_foot", "right_foot"):
        side: Side = "left" if placement == "left_foot" else "right"
        return ShoeDetector(side, fs_hz, has_gyro, config.shoe)
    return TrunkDetector(placement, fs_hz, has_gyro, config.trunk)


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
