"""Shared test helpers (imported by test modules; not a test module itself)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

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


def rot_zyx(e_deg: np.ndarray) -> np.ndarray:
    """World-from-segment matrices R = Rz(yaw) Ry(pitch) Rx(roll) for (n, 3) Euler angles
    in deg. Written out independently of sensors.simulator so tests can check it."""
    phi, theta, psi = np.radians(e_deg).T
    cf, sf, ct, st, cp, sp = (
        np.cos(phi),
        np.sin(phi),
        np.cos(theta),
        np.sin(theta),
        np.cos(psi),
        np.sin(psi),
    )
    return np.stack(
        [
            np.stack([cp * ct, cp * st * sf - sp * cf, cp * st * cf + sp * sf], -1),
            np.stack([sp * ct, sp * st * sf + cp * cf, sp * st * cf - cp * sf], -1),
            np.stack([-st, ct * sf, ct * cf], -1),
        ],
        -2,
    )
