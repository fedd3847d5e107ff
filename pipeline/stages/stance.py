"""The stance phase: what every contact detector emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from pipeline.records import Side
from sensors.model import Chunk


@dataclass(frozen=True, slots=True)
class Stance:
    """One foot on the ground from ``ic_s`` to ``to_s`` (recording time axis)."""

    side: Side
    ic_s: float
    to_s: float
    source: str
    confidence: float = 1.0
    gait: Literal["run", "walk"] = "run"
    #: detector-specific per-step metrics with units in their names (e.g. impact_g)
    metrics: dict[str, float] = field(default_factory=dict)


class ContactDetector(Protocol):
    """Turns one sensor's samples into stance phases.

    ``complete_until_s``: every stance whose ``ic_s`` is earlier than this has been
    emitted; the assembler uses it as the detector's watermark.
    """

    complete_until_s: float

    def push(self, chunk: Chunk) -> list[Stance]: ...

    def flush(self) -> list[Stance]: ...
