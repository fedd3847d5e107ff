"""Small inline-SVG charts for the post-run report (no plotting dependency).

Why not matplotlib: the report must be one self-contained HTML page, and the charts
it needs (points and lines over time, shaded zones, event markers, bars) are a few
hundred lines of SVG; matplotlib would add a large dependency and produce verbose
SVG with embedded fonts for the same result.

The SVG is meant to be inlined in HTML5 (no ``xmlns``: the HTML parser puts ``<svg>``
in the SVG namespace itself, and the page then names no external address at all).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


@dataclass(slots=True)
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[float | None]
    color: str
    kind: str = "line"  # "line", "steps" (a level per x), "points" or "bars"
    width: float = 2.0
    radius: float = 1.6
    opacity: float = 1.0
    dash: str | None = None
    legend: bool = True


@dataclass(slots=True)
class Band:
    """A shaded horizontal zone (e.g. a balance zone)."""

    lo: float
    hi: float
    color: str
    label: str = ""


@dataclass(slots=True)
class Marker:
    """A vertical event line (e.g. an alert) with a tooltip."""

    x: float
    color: str
    tooltip: str


@dataclass(slots=True)
class Chart:
    title: str
    series: list[Series]
    x_label: str = ""
    y_label: str = ""
    width: int = 1080
    height: int = 280
    y_range: tuple[float, float] | None = None
    x_range: tuple[float, float] | None = None
    bands: list[Band] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    hlines: list[tuple[float, str, str]] = field(default_factory=list)  # y, color, label
    x_ticks: list[tuple[float, str]] | None = None  # explicit (value, label) ticks
    x_fmt: Callable[[float], str] = field(default=lambda v: f"{v:g}")
    y_fmt: Callable[[float], str] = field(default=lambda v: f"{v:g}")


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    v = first
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def _extent(values: list[float], pad: float = 0.05) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi == lo:
        return lo - 1.0, hi + 1.0
    span = hi - lo
    return lo - pad * span, hi + pad * span


def render(chart: Chart) -> str:
    left, right, top, bottom = 64, 20, 40, 44
    w, h = chart.width, chart.height
    pw, ph = w - left - right, h - top - bottom
    xs_all = [float(x) for s in chart.series for x in s.xs]
    ys_all = [float(y) for s in chart.series for y in s.ys if y is not None]
    ys_all += [y for y, _, _ in chart.hlines]
    x0, x1 = chart.x_range or (_extent(xs_all, 0.0) if xs_all else (0.0, 1.0))
    if x1 <= x0:
        x1 = x0 + 1.0
    y0, y1 = chart.y_range or _extent(ys_all)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1.0 - (min(max(y, y0), y1) - y0) / (y1 - y0)) * ph

    out = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" width="100%" role="img"'
        f' aria-label="{escape(chart.title)}" font-family="{FONT}">',
        f'<text x="{left}" y="22" font-size="15" font-weight="600" fill="#1a202c">'
        f"{escape(chart.title)}</text>",
        f'<clipPath id="clip-{id(chart)}"><rect x="{left}" y="{top}" width="{pw}"'
        f' height="{ph}"/></clipPath>',
    ]
    for b in chart.bands:
        lo, hi = max(b.lo, y0), min(b.hi, y1)
        if hi <= lo:
            continue
        out.append(
            f'<rect x="{left}" y="{sy(hi):.1f}" width="{pw}" height="{sy(lo) - sy(hi):.1f}"'
            f' fill="{b.color}"><title>{escape(b.label)}</title></rect>'
        )
    # grid and axes
    for yt in nice_ticks(y0, y1, 5):
        y = sy(yt)
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end"'
            f' fill="#4a5568">{escape(chart.y_fmt(yt))}</text>'
        )
    x_ticks = chart.x_ticks or [(v, chart.x_fmt(v)) for v in nice_ticks(x0, x1, 10)]
    for xt, label in x_ticks:
        if not x0 <= xt <= x1:
            continue
        x = sx(xt)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#edf2f7"/>')
        out.append(
            f'<text x="{x:.1f}" y="{top + ph + 18}" font-size="12" text-anchor="middle"'
            f' fill="#4a5568">{escape(label)}</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#a0aec0"/>'
    )
    if chart.x_label:
        out.append(
            f'<text x="{left + pw / 2:.0f}" y="{h - 6}" font-size="12" text-anchor="middle"'
            f' fill="#4a5568">{escape(chart.x_label)}</text>'
        )
    if chart.y_label:
        out.append(
            f'<text transform="translate(14 {top + ph / 2:.0f}) rotate(-90)" font-size="12"'
            f' text-anchor="middle" fill="#4a5568">{escape(chart.y_label)}</text>'
        )
    for y, color, label in chart.hlines:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}"'
            f' stroke="{color}" stroke-dasharray="6 4" stroke-width="1.5"/>'
            f'<text x="{left + pw - 4}" y="{sy(y) - 5:.1f}" font-size="11"'
            f' text-anchor="end" fill="{color}">{escape(label)}</text>'
        )
    out.append(f'<g clip-path="url(#clip-{id(chart)})">')
    for s in chart.series:
        out.append(_series(s, sx, sy, top + ph, pw, x1 - x0))
    out.append("</g>")
    for m in chart.markers:
        if not x0 <= m.x <= x1:
            continue
        x = sx(m.x)
        out.append(
            f"<g><title>{escape(m.tooltip)}</title>"
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="{m.color}"'
            f' stroke-width="1.5" stroke-dasharray="3 3"/>'
            f'<path d="M{x - 6:.1f},{top - 1} L{x + 6:.1f},{top - 1} L{x:.1f},{top + 9}Z"'
            f' fill="{m.color}"/></g>'
        )
    out.append(_legend(chart, left + pw))
    out.append("</svg>")
    return "".join(out)


def _series(
    s: Series,
    sx: Callable[[float], float],
    sy: Callable[[float], float],
    base_y: float,
    pw: float,
    x_span: float,
) -> str:
    pts = [(sx(float(x)), sy(float(y))) for x, y in zip(s.xs, s.ys, strict=True) if y is not None]
    if not pts:
        return ""
    if s.kind == "points":
        body = "".join(f"M{x:.1f},{y:.1f}h0" for x, y in pts)
        # round caps on zero-length segments: one path instead of thousands of circles
        return (
            f'<path d="{body}" stroke="{s.color}" stroke-width="{2 * s.radius:.1f}"'
            f' stroke-linecap="round" opacity="{s.opacity}" fill="none"/>'
        )
    if s.kind == "bars":
        n = max(len(pts), 1)
        bw = max(2.0, min(40.0, 0.7 * pw / n))
        return "".join(
            f'<rect x="{x - bw / 2:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{base_y - y:.1f}"'
            f' fill="{s.color}" opacity="{s.opacity}"/>'
            for x, y in pts
        )
    # lines break where a value is missing
    segments: list[list[tuple[float, float]]] = [[]]
    half = 0.5 * (sx(1.0) - sx(0.0)) if s.kind == "steps" else 0.0
    for x, y in zip(s.xs, s.ys, strict=True):
        if y is None:
            if segments[-1]:
                segments.append([])
            continue
        px, py = sx(float(x)), sy(float(y))
        if s.kind == "steps":  # a flat level across this x's slot
            segments[-1].extend([(px - half, py), (px + half, py)])
        else:
            segments[-1].append((px, py))
    d = "".join("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in seg) for seg in segments if seg)
    dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
    return (
        f'<path d="{d}" stroke="{s.color}" stroke-width="{s.width}" fill="none"'
        f' stroke-linejoin="round" opacity="{s.opacity}"{dash}/>'
    )


def _legend(chart: Chart, right_x: float) -> str:
    items = [s for s in chart.series if s.legend]
    out = []
    x = right_x
    for s in reversed(items):
        label_w = 7.2 * len(s.name) + 28
        x -= label_w
        swatch = (
            f'<circle cx="{x + 8:.1f}" cy="18" r="4.5" fill="{s.color}"/>'
            if s.kind == "points"
            else f'<rect x="{x:.1f}" y="16" width="16" height="4" fill="{s.color}"/>'
        )
        out.append(
            swatch + f'<text x="{x + 21:.1f}" y="22" font-size="12" fill="#2d3748">'
            f"{escape(s.name)}</text>"
        )
    return "".join(out)
