"""The stance phase: what every contact detector emits, and optional mounting axes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from pipeline.records import Side
from sensors.model import Chunk

Gait = Literal["run", "walk"]


@dataclass(frozen=True, slots=True)
class Stance:
    """One foot on the ground from ``ic_s`` to ``to_s`` (recording time axis).

    ``ic_confidence`` / ``to_confidence`` (0-1) say how directly each event was seen:
    1 when its feature lay in gap-free data, lower when it was extrapolated, fell next
    to a data gap or came from a weaker cue. Fusion picks each event from the source
    that saw it best; ``confidence`` is the smaller of the two.
    """

    side: Side
    ic_s: float
    to_s: float
    source: str
    confidence: float = 1.0
    gait: Gait = "run"
    #: detector-specific per-step metrics with units in their names (e.g. impact_peak_g)
    metrics: dict[str, float] = field(default_factory=dict)
    ic_confidence: float = 1.0
    to_confidence: float = 1.0
    #: the side came from the sensor's placement (a shoe) rather than being inferred
    side_known: bool = True


class ContactDetector(Protocol):
    """Turns one sensor's samples into stance phases.

    ``complete_until_s``: every stance whose ``ic_s`` is earlier than this has been
    emitted; the assembler uses it as the detector's watermark.
    """

    complete_until_s: float

    def push(self, chunk: Chunk) -> list[Stance]: ...

    def flush(self) -> list[Stance]: ...


@dataclass(frozen=True, slots=True)
class SensorAxes:
    """Manual mounting override: segment directions expressed in the *sensor* frame.

    ``up``: the segment's up direction (shoe: normal to the sole; trunk: cranial);
    ``forward``: the walking direction (shoe: heel to toe). Either may be ``None`` to
    keep estimating it from the data. Vectors need not be unit length.
    """

    up: tuple[float, float, float] | None = None
    forward: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("up", "forward"):
            v = getattr(self, name)
            if v is None:
                continue
            a = np.asarray(v, dtype=np.float64)
            if a.shape != (3,) or not np.all(np.isfinite(a)) or float(a @ a) == 0.0:
                raise ValueError(f"SensorAxes.{name} must be a non-zero 3-vector, got {v!r}")
        if self.up is not None and self.forward is not None:
            u = np.asarray(self.up, dtype=np.float64)
            f = np.asarray(self.forward, dtype=np.float64)
            cos = abs(float(u @ f)) / float(np.sqrt((u @ u) * (f @ f)))
            if cos > 0.5:
                raise ValueError("SensorAxes.up and .forward must be roughly perpendicular")

    def unit(self, name: str) -> np.ndarray | None:
        v = getattr(self, name)
        if v is None:
            return None
        a = np.asarray(v, dtype=np.float64)
        return np.asarray(a / np.sqrt(a @ a))

    def left(self) -> np.ndarray | None:
        """Unit left axis (up x forward, forward made perpendicular to up)."""
        u, f = self.unit("up"), self.unit("forward")
        if u is None or f is None:
            return None
        f = f - (f @ u) * u
        left = np.cross(u, f)
        return np.asarray(left / np.sqrt(left @ left))
