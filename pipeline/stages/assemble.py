"""Stances from all detectors -> step records, in time order.

Detectors run per sensor and finish at different moments, so stances are held in a
heap and released in ``ic_s`` order once every detector's watermark has passed them.
That makes the output order independent of how the sensors' chunks interleaved.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.records import SIDES, Side, StepRecord
from pipeline.stages.stance import Stance

Enricher = Callable[[Stance, StepRecord], None]


@dataclass(frozen=True, slots=True)
class AssemblerConfig:
    #: a step longer than this is a pause: no step/flight/cadence across it
    max_step_ms: float = 1500.0


class StepAssembler:
    def __init__(
        self,
        sources: Mapping[Side, str],
        config: AssemblerConfig | None = None,
        enrichers: tuple[Enricher, ...] = (),
    ) -> None:
        self.config = config or AssemblerConfig()
        self.sources = dict(sources)
        self.enrichers = enrichers
        # ordered by initial contact; a stance leaves once the watermark passed its
        # toe-off, so enrichers (pelvis metrics) have every sample of the stance
        self._heap: list[tuple[float, int, int, Stance]] = []
        self._seq = 0
        self._last: Stance | None = None
        self._last_ic: dict[str, float] = {}
        self.count = 0
        self.dropped_out_of_order = 0
        self.released_until_s = float("-inf")

    def add(self, stances: list[Stance]) -> None:
        for s in stances:
            if self.sources.get(s.side) != s.source:
                continue  # a better sensor covers this side
            if s.to_s < self.released_until_s:
                # Only possible when a stalled sensor catches up after being skipped.
                self.dropped_out_of_order += 1
                continue
            heapq.heappush(self._heap, (s.ic_s, SIDES.index(s.side), self._seq, s))
            self._seq += 1

    def release(self, watermark_s: float) -> list[StepRecord]:
        out: list[StepRecord] = []
        while self._heap and self._heap[0][3].to_s < watermark_s:
            stance = heapq.heappop(self._heap)[3]
            out.append(self._record(stance))
        if watermark_s > self.released_until_s:
            self.released_until_s = watermark_s
        return out

    def flush(self) -> list[StepRecord]:
        return self.release(float("inf"))

    def snapshot(self) -> dict[str, Any]:
        return {
            "heap": list(self._heap),
            "seq": self._seq,
            "last": self._last,
            "last_ic": dict(self._last_ic),
            "count": self.count,
            "released_until_s": self.released_until_s,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._heap = list(state["heap"])
        heapq.heapify(self._heap)
        self._seq = state["seq"]
        self._last = state["last"]
        self._last_ic = dict(state["last_ic"])
        self.count = state["count"]
        self.released_until_s = state["released_until_s"]

    def _record(self, s: Stance) -> StepRecord:
        max_step = self.config.max_step_ms
        rec = StepRecord(
            side=s.side,
            ic_s=s.ic_s,
            to_s=s.to_s,
            contact_ms=(s.to_s - s.ic_s) * 1000.0,
            gait=s.gait,
            source=s.source,
            confidence=s.confidence,
            index=self.count,
        )
        for name, value in s.metrics.items():
            if hasattr(rec, name):
                setattr(rec, name, value)
        prev = self._last
        if prev is not None and prev.side != s.side:
            step_ms = (s.ic_s - prev.ic_s) * 1000.0
            if 0 < step_ms <= max_step:
                rec.step_ms = step_ms
                rec.cadence_spm = 60000.0 / step_ms
                rec.flight_ms = max(0.0, (s.ic_s - prev.to_s) * 1000.0)
        last_same = self._last_ic.get(s.side)
        # A stride spans two steps; across a pause (no valid step) it is meaningless.
        if last_same is not None and rec.step_ms is not None:
            stride_ms = (s.ic_s - last_same) * 1000.0
            if 0 < stride_ms <= 2 * max_step:
                rec.stride_ms = stride_ms
                rec.duty_factor = rec.contact_ms / stride_ms
        for enrich in self.enrichers:
            enrich(s, rec)
        self._last = s
        self._last_ic[s.side] = s.ic_s
        self.count += 1
        return rec
