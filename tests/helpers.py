"""Shared test helpers (imported by test modules; not a test module itself)."""

from __future__ import annotations

from collections.abc import Iterable

from sensors.model import Chunk


def rechunk(chunks: Iterable[Chunk], size: int) -> list[Chunk]:
    """The same samples cut into ``size``-sample chunks, sensors interleaved by time."""
    per_sensor: dict[str, list[Chunk]] = {}
    for c in chunks:
        per_sensor.setdefault(c.placement, []).append(c)
    pieces: list[Chunk] = []
    for parts in per_sensor.values():
        pieces.extend(Chunk.concat(parts).split(size))
    pieces.sort(key=lambda c: float(c.t_s[0]))
    return pieces
