"""Stances from all detectors -> fused step records, in time order.

Detectors run per sensor and finish at different moments, so stances are held in a
heap and released in ``ic_s`` order once every detector's watermark has passed them.
That makes the output independent of how the sensors' chunks interleaved.

Fusion (dynamic, per step): the stances different sensors saw of one foot contact
(initial contacts within ``match_tol_s``) form a group. Each event is taken from the
member that saw it best (highest per-event confidence; ties go to the more precise
sensor: shoe, then pelvis, then chest), the side from a shoe when one saw the step,
and per-step metrics are merged (a shoe gives stride length and speed, a trunk
sensor vertical oscillation). A shoe that drops out or loses data simply leaves
groups without it, and the pelvis (or chest) stance fills in for that step.

Clock alignment (:class:`ClockAligner`): sensors may stamp time with clocks offset by
up to ``max_clock_offset_s``. The trunk sensor (pelvis, else chest) is the reference;
each shoe's offset is found from the data once, by matching the shoe's first
``lock_stances`` stances to the reference's stances of the same side. Until a shoe is
locked its stances are held; steps before the lock come from the trunk sensor alone.
Everything is decided by the data, never by arrival order, so the output does not
depend on chunking.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pipeline.records import SIDES, Side, StepRecord
from pipeline.stages.stance import Stance

Enricher = Callable[[Stance, StepRecord], None]

#: Event precision by source, best first (Falbriard 2018 shoe vs trunk literature).
RANK = {"left_foot": 0, "right_foot": 0, "pelvis": 1, "chest": 2}
#: Metrics a trunk sensor measures better than a shoe (whole-body loading).
TRUNK_METRICS = ("impact_peak_g", "loading_rate_g_per_s", "vertical_oscillation_cm")


@dataclass(frozen=True, slots=True)
class AssemblerConfig:
    #: a step longer than this is a pause: no step/flight/cadence across it
    max_step_ms: float = 1500.0
    #: stances of different sensors whose initial contacts are this close are one step
    match_tol_s: float = 0.12
    align_clocks: bool = True
    max_clock_offset_s: float = 0.25
    lock_stances: int = 6  # shoe stances used to find that shoe's clock offset
    lock_hold_s: float = 5.5  # the trunk sensor speaks for a shoe this long meanwhile
    lock_tol_s: float = 0.04  # a shoe IC this close to a reference IC matches it
    lock_min_share: float = 0.6  # share of the lock stances that must match
    lock_attempts: int = 4  # after this many failed attempts the clocks are trusted


class SourcePlan(dict[Side, str]):
    """Preferred source per side (as before), plus every worn placement."""

    def __init__(self, preferred: Mapping[Side, str], placements: Sequence[str]) -> None:
        super().__init__(preferred)
        self.placements = tuple(placements)

    @property
    def reference(self) -> str | None:
        """The clock reference: a trunk sensor sees every step of both feet."""
        for p in ("pelvis", "chest"):
            if p in self.placements:
                return p
        return None


class ClockAligner:
    """Per-shoe clock offsets (shoe time - reference time), found from the data.

    A shoe's first stance opens its alignment: from then on, for ``lock_hold_s``, the
    reference alone gives that side's steps while the shoe's stances are collected;
    the offset is estimated from the first ``lock_stances`` of them, and the shoe's
    stances count from ``from_s`` (reference time) on. ``from_s`` depends only on the
    data (the shoe's first initial contact), so the switch over is the same however
    the stream was chunked; output never waits for the lock unless the hold runs out.
    """

    def __init__(
        self, reference: str | None, shoes: Sequence[str], config: AssemblerConfig
    ) -> None:
        self.config = config
        self.reference = reference
        self.active = reference is not None and config.align_clocks and bool(shoes)
        self.offset_s: dict[str, float] = {} if self.active else {s: 0.0 for s in shoes}
        #: reference-time IC from which a shoe's stances are used
        self.from_s: dict[str, float] = {} if self.active else {s: -math.inf for s in shoes}
        self._held: dict[str, list[Stance]] = {s: [] for s in shoes}
        self._ref: deque[Stance] = deque()
        # each shoe's latest stances (own clock), for the other shoe's lock
        self._recent: dict[str, deque[Stance]] = {s: deque(maxlen=64) for s in shoes}
        self.attempts: dict[str, int] = {s: 0 for s in shoes}

    def snapshot(self) -> dict[str, Any]:
        return {
            "offset_s": dict(self.offset_s),
            "from_s": dict(self.from_s),
            "held": {k: list(v) for k, v in self._held.items()},
            "ref": list(self._ref),
            "recent": {k: list(v) for k, v in self._recent.items()},
            "attempts": dict(self.attempts),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.offset_s = dict(state["offset_s"])
        self.from_s = dict(state["from_s"])
        self._held = {k: list(v) for k, v in state["held"].items()}
        self._ref = deque(state["ref"])
        self._recent = {k: deque(v, maxlen=64) for k, v in state["recent"].items()}
        self.attempts = dict(state["attempts"])

    def limit_s(self, watermark_s: float) -> float:
        """The reference-time watermark: how far stances may be released.

        A locked shoe whose clock is ahead (offset > 0) reports its completeness that
        much late in reference time. An unlocked shoe's stances are not used before its
        ``from_s``, so it only stops the release there (its first stance, whenever it
        comes, puts ``from_s`` past anything releasable now).
        """
        if not self.active:
            return watermark_s
        w = watermark_s - max([0.0, *self.offset_s.values()])
        for shoe in self._held:
            if shoe not in self.offset_s and shoe in self.from_s:
                w = min(w, self.from_s[shoe])  # its steps from there on need the shoe
        return w

    def add(self, s: Stance) -> list[Stance]:
        """A stance in its sensor's clock -> stances ready for fusion (reference time)."""
        if s.source == self.reference:
            if self.active and len(self.offset_s) < len(self._held):
                self._ref.append(s)  # a shoe still needs it to find its offset
            return [s]
        if s.source not in self._held:
            return [s]  # another trunk sensor: same clock assumed
        self._recent[s.source].append(s)
        off = self.offset_s.get(s.source)
        if off is None:
            held = self._held[s.source]
            if not held:
                self._open(s.source, s.ic_s)
            held.append(s)
            return []
        return self._shifted(s, off)

    def _open(self, shoe: str, first_ic_s: float) -> None:
        c = self.config
        # the earliest reference time the shoe's first IC can have, plus the hold
        self.from_s[shoe] = first_ic_s - c.max_clock_offset_s + c.lock_hold_s

    def _shifted(self, s: Stance, off: float) -> list[Stance]:
        ic = s.ic_s - off
        if ic < self.from_s[s.source]:
            return []
        return [replace(s, ic_s=ic, to_s=s.to_s - off)] if off else [s]

    def try_lock(self, watermark_s: float) -> list[Stance]:
        """Lock every shoe whose first stances and their reference are complete."""
        out: list[Stance] = []
        c = self.config
        if not self.active:
            return out
        for shoe, held in self._held.items():
            if shoe in self.offset_s or not held:
                continue
            # A shoe that gives too few stances for a lock (a dropout, a poor signal)
            # must not hold the output back for ever: past the hold's end plus the
            # hold again, or at the end of the stream, it locks on what it has.
            late = watermark_s >= self.from_s[shoe] + c.lock_hold_s
            if len(held) < c.lock_stances and not late:
                continue
            window = held[: c.lock_stances]
            # every reference stance that could match must be in: the watermark must be
            # past the last lock stance plus the largest offset
            if watermark_s < window[-1].ic_s + 2 * c.max_clock_offset_s:
                continue
            self.attempts[shoe] += 1
            off = self._choose(shoe, window) if len(window) >= 3 else None
            if off is None and (late or self.attempts[shoe] >= c.lock_attempts):
                off = 0.0  # the reference never matched (no steps seen): trust the clocks
            if off is None:
                # no consistent match yet (e.g. the trunk sensor saw no steps): move on
                del held[: max(1, c.lock_stances // 2)]
                if held:
                    self._open(shoe, held[0].ic_s)
                else:
                    del self.from_s[shoe]  # the next stance opens the alignment again
                continue
            self.offset_s[shoe] = off
            for s in held:
                out.extend(self._shifted(s, off))
            held.clear()
        # Reference stances are kept only while a held shoe stance may need them
        # (bounded by time, so which ones remain never depends on arrival order).
        firsts = [h[0].ic_s for sh, h in self._held.items() if h and sh not in self.offset_s]
        keep_from = min([watermark_s, *firsts]) - 2 * c.max_clock_offset_s - 1.0
        if all(sh in self.offset_s for sh in self._held):
            self._ref.clear()
        while self._ref and self._ref[0].ic_s < keep_from:
            self._ref.popleft()
        return out

    def _choose(self, shoe: str, window: list[Stance]) -> float | None:
        """The offset of ``shoe``: the best match to the reference, and where a step's
        ambiguity remains (offsets a step apart match the trunk equally), the one whose
        stances do not fall on the other shoe's."""
        c = self.config
        cands = self._candidates(window)
        if len(cands) < 2:
            return cands[0][0] if cands else None
        lo = window[0].ic_s - 1.0
        hi = window[-1].ic_s + 1.0
        others = [o for o in self._held if o != shoe]
        x_ic = np.array([s.ic_s for s in window])
        best: tuple[int, int, int] | None = None
        choice = cands[0][0]
        for off, count, same in cands:
            collisions = 0
            for other in others:
                y = [s for s in self._recent[other] if lo <= s.ic_s <= hi]
                if not y:
                    continue
                y_ic = np.array([s.ic_s for s in y])
                if other in self.offset_s:
                    y_offs = [self.offset_s[other]]
                else:
                    y_offs = [o for o, _, _ in self._candidates(y)] or [0.0]
                collisions += min(
                    int(
                        (np.abs((x_ic - off)[:, None] - (y_ic - oy)[None, :]) <= c.lock_tol_s)
                        .any(axis=1)
                        .sum()
                    )
                    for oy in y_offs
                )
            key = (-collisions, same, count)
            if best is None or key > best:
                best, choice = key, off
        return choice

    def _candidates(self, window: list[Stance]) -> list[tuple[float, int, int]]:
        """Up to two distinct offsets (refined, matches, side agreements), best first.

        Every shoe IC - reference IC within the largest offset is a candidate; it is
        scored by how many shoe stances then have a reference IC within ``lock_tol_s``
        (any side: the trunk sees every step), then by how many of those agree on the
        side. Offsets a step apart match equally well; the side usually, and the other
        shoe surely (see ``_choose``), tells them apart.
        """
        c = self.config
        lo = window[0].ic_s - c.max_clock_offset_s - c.lock_tol_s
        hi = window[-1].ic_s + c.max_clock_offset_s + c.lock_tol_s
        ref = [r for r in self._ref if lo <= r.ic_s <= hi]
        if not ref:
            return []
        s_ic = np.array([s.ic_s for s in window])
        s_to = np.array([s.to_s for s in window])
        s_side = np.array([s.side == "left" for s in window])
        r_ic = np.array([r.ic_s for r in ref])
        r_to = np.array([r.to_s for r in ref])
        r_side = np.array([r.side == "left" for r in ref])
        diff = s_ic[:, None] - r_ic[None, :]  # candidate offsets
        cand = np.unique(np.round(diff[np.abs(diff) <= c.max_clock_offset_s], 4))
        if cand.size == 0:
            return []
        resid = diff[None, :, :] - cand[:, None, None]
        close = np.abs(resid) <= c.lock_tol_s
        hit = close.any(axis=2)
        count = hit.sum(axis=1)
        same = (close & (s_side[None, :, None] == r_side[None, None, :])).any(axis=2).sum(axis=1)
        s_good = np.array([s.to_confidence >= 1.0 for s in window])
        r_good = np.array([r.to_confidence >= 1.0 for r in ref])
        out: list[tuple[float, int, int]] = []
        taken: list[float] = []
        for k in np.lexsort((-same, -count)):
            if count[k] < c.lock_min_share * len(window) or len(out) == 2:
                break
            if any(abs(float(cand[k]) - t) < 2 * c.lock_tol_s for t in taken):
                continue
            taken.append(float(cand[k]))
            # refine: mean of the IC and TO offsets over the matched pairs (a trunk
            # sensor tends to place IC early and TO late by similar amounts; the mean
            # cancels it), but the ICs alone where a toe-off is a weak cue
            j = np.argmin(np.abs(resid[k]), axis=1)
            rows = np.flatnonzero(hit[k])
            d_ic = s_ic[rows] - r_ic[j[rows]]
            d_to = s_to[rows] - r_to[j[rows]]
            good = s_good[rows] & r_good[j[rows]]
            d = np.where(good, 0.5 * (d_ic + d_to), d_ic)
            out.append((float(np.median(d)), int(count[k]), int(same[k])))
        return out


class StepAssembler:
    def __init__(
        self,
        sources: Mapping[Side, str],
        config: AssemblerConfig | None = None,
        enrichers: tuple[Enricher, ...] = (),
    ) -> None:
        self.config = config or AssemblerConfig()
        self.sources = dict(sources)
        placements = getattr(sources, "placements", tuple(sources.values()))
        reference = getattr(sources, "reference", None)
        shoes = [p for p in placements if p.endswith("_foot")]
        self.aligner = ClockAligner(reference, shoes, self.config)
        self.enrichers = enrichers
        # ordered by initial contact; a stance leaves once the watermark passed its
        # toe-off, so enrichers (pelvis metrics) have every sample of the stance
        self._heap: list[tuple[float, int, int, Stance]] = []
        self._seq = 0
        self._last: StepRecord | None = None
        self._before_last: StepRecord | None = None
        self.count = 0
        self.dropped_out_of_order = 0
        self.dropped_duplicates = 0
        self.released_until_s = float("-inf")
        self._trunk_agree = 0.0  # leaky vote: trunk side labels agree with the shoes'

    def add(self, stances: list[Stance]) -> None:
        for s in stances:
            for ready in self.aligner.add(s):
                self._push(ready)

    def _push(self, s: Stance) -> None:
        if s.to_s < self.released_until_s:
            # Only possible when a stalled sensor catches up after being skipped.
            self.dropped_out_of_order += 1
            return
        heapq.heappush(self._heap, (s.ic_s, RANK.get(s.source, 3), self._seq, s))
        self._seq += 1

    def release(self, watermark_s: float) -> list[StepRecord]:
        for s in self.aligner.try_lock(watermark_s):
            self._push(s)
        w = self.aligner.limit_s(watermark_s)
        tol = self.config.match_tol_s
        out: list[StepRecord] = []
        while self._heap:
            top = self._heap[0][3]
            if not (top.to_s < w and top.ic_s + tol < w):
                break
            group = self._group()
            if self._duplicate(group):
                self.dropped_duplicates += 1
                continue
            out.append(self._record(group))
        if w > self.released_until_s:
            self.released_until_s = w
        return out

    def flush(self) -> list[StepRecord]:
        return self.release(float("inf"))

    # -- fusion ---------------------------------------------------------------------------
    def _group(self) -> list[Stance]:
        """Pop the earliest stance and every other sensor's view of the same contact."""
        first = heapq.heappop(self._heap)[3]
        group = [first]
        tol = self.config.match_tol_s
        keep: list[tuple[float, int, int, Stance]] = []
        while self._heap and self._heap[0][0] <= first.ic_s + tol:
            item = heapq.heappop(self._heap)
            s = item[3]
            clash = any(
                g.source == s.source or (g.side_known and s.side_known and g.side != s.side)
                for g in group
            )
            if clash:
                keep.append(item)  # a different step (or the same sensor's next one)
            else:
                group.append(s)
        for item in keep:
            heapq.heappush(self._heap, item)
        return group

    def _duplicate(self, group: list[Stance]) -> bool:
        """A stance no sensor timed well that lies within the last step of its side
        (e.g. a shoe's contact placed into lost data after the trunk sensor had seen
        it) is the same contact seen twice, not a new step."""
        if any(g.ic_confidence >= 1.0 for g in group):
            return False
        s = group[0]
        last = self._last if self._last is not None and self._last.side == s.side else None
        if last is None and self._before_last is not None and self._before_last.side == s.side:
            last = self._before_last
        if last is None or not s.side_known:
            return False
        overlap = min(s.to_s, last.to_s) - max(s.ic_s, last.ic_s)
        return overlap > 0.5 * (s.to_s - s.ic_s)

    def _fuse(self, group: list[Stance]) -> tuple[Stance, dict[str, float]]:
        def best(key: str) -> Stance:
            return max(group, key=lambda g: (getattr(g, key), -RANK.get(g.source, 3)))

        by_ic, by_to = best("ic_confidence"), best("to_confidence")
        shoes = [g for g in group if g.side_known]
        trunks = [g for g in group if not g.side_known]
        side: Side
        if shoes:
            side = shoes[0].side
            for tr in trunks:  # learn whether the trunk's side labels can be trusted
                self._trunk_agree = 0.9 * self._trunk_agree + (1.0 if tr.side == side else -1.0)
        else:
            side = by_ic.side
            if self._trunk_agree < -1.0:
                side = "right" if side == "left" else "left"
        metrics: dict[str, float] = {}
        for g in sorted(group, key=lambda g: -RANK.get(g.source, 3)):
            metrics.update(g.metrics)  # better sources last: they win
        for tr in sorted(trunks, key=lambda g: -RANK.get(g.source, 3)):
            metrics.update({k: v for k, v in tr.metrics.items() if k in TRUNK_METRICS})
        ic, to = by_ic.ic_s, by_to.to_s
        if to <= ic:  # events from different sensors that do not fit together
            ic, to = by_ic.ic_s, by_ic.to_s
            by_to = by_ic
        fused = Stance(
            side=side,
            ic_s=ic,
            to_s=to,
            source=by_ic.source,
            confidence=min(by_ic.ic_confidence, by_to.to_confidence),
            gait=by_ic.gait,
            metrics=metrics,
            ic_confidence=by_ic.ic_confidence,
            to_confidence=by_to.to_confidence,
            side_known=bool(shoes),
        )
        return fused, metrics

    def _record(self, group: list[Stance]) -> StepRecord:
        s, metrics = self._fuse(group)
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
        for name, value in metrics.items():
            if hasattr(rec, name):
                setattr(rec, name, value)
        prev, prev2 = self._last, self._before_last
        if prev is not None and prev.side != s.side:
            step_ms = (s.ic_s - prev.ic_s) * 1000.0
            if 0 < step_ms <= max_step:
                rec.step_ms = step_ms
                rec.cadence_spm = 60000.0 / step_ms
                if s.gait == "run":
                    rec.flight_ms = max(0.0, (s.ic_s - prev.to_s) * 1000.0)
                # A stride spans two steps; only when both are there (no missed step,
                # no pause) is it the time between this foot's contacts.
                if prev2 is not None and prev2.side == s.side and prev.step_ms is not None:
                    stride_ms = (s.ic_s - prev2.ic_s) * 1000.0
                    rec.stride_ms = stride_ms
                    rec.duty_factor = rec.contact_ms / stride_ms
        for enrich in self.enrichers:
            enrich(s, rec)
        self._before_last, self._last = prev, rec
        self.count += 1
        return rec

    # -- resume support -------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "heap": list(self._heap),
            "seq": self._seq,
            "last": self._last,
            "before_last": self._before_last,
            "count": self.count,
            "released_until_s": self.released_until_s,
            "trunk_agree": self._trunk_agree,
            "aligner": self.aligner.snapshot(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._heap = list(state["heap"])
        heapq.heapify(self._heap)
        self._seq = state["seq"]
        self._last = state["last"]
        self._before_last = state["before_last"]
        self.count = state["count"]
        self.released_until_s = state["released_until_s"]
        self._trunk_agree = state["trunk_agree"]
        self.aligner.restore(state["aligner"])


__all__ = ["SIDES", "AssemblerConfig", "ClockAligner", "SourcePlan", "StepAssembler"]
