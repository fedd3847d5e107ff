"""Scoring detected steps against a reference: shared by validation, peers and tests.

Matching is one-to-one, closest pairs first, within a tolerance (no reference event is
counted twice, no detection explains two references).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def match(ref: Sequence[float], det: Sequence[float], tol_s: float) -> list[tuple[int, int]]:
    """Pairs ``(i_ref, j_det)`` with ``|det - ref| <= tol_s``, closest first, sorted by i."""
    r = np.asarray(ref, dtype=float)
    d = np.asarray(det, dtype=float)
    if r.size == 0 or d.size == 0:
        return []
    dist = np.abs(r[:, None] - d[None, :])
    ii, jj = np.nonzero(dist <= tol_s)
    order = np.argsort(dist[ii, jj], kind="stable")
    used_r: set[int] = set()
    used_d: set[int] = set()
    pairs = []
    for k in order:
        i, j = int(ii[k]), int(jj[k])
        if i in used_r or j in used_d:
            continue
        used_r.add(i)
        used_d.add(j)
        pairs.append((i, j))
    return sorted(pairs)


@dataclass
class Errors:
    """Signed errors (detected - reference) of one quantity, in its unit."""

    values: list[float] = field(default_factory=list)

    def add(self, v: float | None) -> None:
        if v is not None and np.isfinite(v):
            self.values.append(float(v))

    def extend(self, other: Errors) -> None:
        self.values.extend(other.values)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mae(self) -> float:
        return float(np.mean(np.abs(self.values))) if self.values else float("nan")

    @property
    def bias(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")

    @property
    def sd(self) -> float:
        return float(np.std(self.values)) if self.values else float("nan")

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.values)))) if self.values else float("nan")


def fmt(x: float, digits: int = 1) -> str:
    return "–" if x != x else f"{x:.{digits}f}"
