"""Generates hipstride's Grafana provisioning from the InfluxDB schema in code.

    python -m dashboards.generate           # (re)write the files below
    python -m dashboards.generate --check   # exit 1 if a committed file is stale

Every measurement, field and tag a query names goes through :class:`Schema`, which
looks it up in :data:`pipeline.sinks.influx_schema.MEASUREMENTS`: a renamed or removed
field breaks generation here instead of leaving a dashboard that silently shows
nothing. Alert thresholds come from :class:`pipeline.stages.alerts.AlertConfig`'s
defaults and the GCT balance zones from :mod:`pipeline.asymmetry`, so Grafana's rules
and colours mirror hipstride's own.

Written (and committed; ``tests/test_dashboards.py`` checks they are up to date):

* ``dashboards/json/*.json``: the dashboards (InfluxQL, which InfluxDB 1.8, 2.x through
  its v1 API with a DBRP mapping, and 3.x all answer);
* ``dashboards/provisioning/datasources/hipstride.yaml``: the InfluxDB data source;
* ``dashboards/provisioning/dashboards/hipstride.yaml``: the dashboard provider;
* ``dashboards/provisioning/alerting/rules.yaml`` and ``contact-points.yaml``.

Plain dicts rather than grafana-foundation-sdk: the SDK's PyPI versions track Grafana
releases with epoch-prefixed numbers and generate every default of every panel, so a
dependency bump would rewrite all committed JSON; a hundred lines of helpers keep the
output small, stable and reviewable.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.asymmetry import GCT_BALANCED_MAX_PCT, GCT_NOTABLE_ABOVE_PCT
from pipeline.sinks.influx_schema import COMMON_TAGS, MEASUREMENTS, Measurement
from pipeline.stages.alerts import AlertConfig, Levels

ROOT = Path(__file__).resolve().parent
JSON_DIR = ROOT / "json"
PROVISIONING = ROOT / "provisioning"

DS_UID = "hipstride-influxdb"
DS = {"type": "influxdb", "uid": DS_UID}
EXPR_DS = {"type": "__expr__", "uid": "__expr__"}
#: the InfluxQL database: InfluxDB 1.x's database, 2.x's DBRP mapping of the bucket
DATABASE = "hipstride"
#: where the compose file mounts dashboards/json inside the Grafana container
DASHBOARDS_PATH = "/etc/grafana/dashboards/hipstride"
DASHBOARD_FOLDER = "hipstride"
#: alert rules live in their own folder: alert provisioning creates folders by title,
#: and a second "hipstride" folder beside the dashboards' one would be refused
ALERT_FOLDER = "hipstride alerts"
CONTACT_POINT = "hipstride-coach"

ALERTS = AlertConfig()
#: hipstride's in-run rules count steps; Grafana's look back over time. At a typical
#: running cadence (170 steps/min, the simulator's default) 20 steps per side take 14 s.
REFERENCE_CADENCE_SPM = 170.0

LEFT_COLOUR, RIGHT_COLOUR = "blue", "orange"


class SchemaError(KeyError):
    """A query names something the InfluxDB sink does not write."""


class Schema:
    """Quoted InfluxQL identifiers of one measurement, checked against the sink's schema."""

    def __init__(self, kind: str) -> None:
        self.m: Measurement = MEASUREMENTS[kind]

    def __str__(self) -> str:
        return f'"{self.m.name}"'

    def f(self, name: str) -> str:
        if name not in self.m.fields:
            raise SchemaError(f"{self.m.name} has no field {name!r} (pipeline/sinks/influx_schema)")
        return f'"{name}"'

    def t(self, name: str) -> str:
        if name not in (*COMMON_TAGS, *self.m.tags):
            raise SchemaError(f"{self.m.name} has no tag {name!r} (pipeline/sinks/influx_schema)")
        return f'"{name}"'


STEPS, SUMMARY, ALERT, STATUS = Schema("step"), Schema("summary"), Schema("alert"), Schema("status")


def athlete_is(m: Schema) -> str:
    return f"{m.t('athlete')} =~ /^$athlete$/"


def session_is(m: Schema) -> str:
    return f"{m.t('session')} =~ /^$session$/"


def running(m: Schema = STEPS) -> str:
    return f"{m.t('gait')} = 'run'"


def side_is(side: str) -> str:
    return f"{STEPS.t('side')} = '{side}'"


def final(value: bool = True) -> str:
    return f"{SUMMARY.f('final')} = {'true' if value else 'false'}"


def where(*conditions: str) -> str:
    return " AND ".join(conditions)


def pct_over(pct: float) -> str:
    return f"{pct:g}%"


# ---------------------------------------------------------------------------------
# Panels
# ---------------------------------------------------------------------------------
def target(
    query: str, ref: str = "A", *, alias: str | None = None, fmt: str = "time_series"
) -> dict[str, Any]:
    t: dict[str, Any] = {
        "refId": ref,
        "datasource": DS,
        "rawQuery": True,
        "query": query,
        "resultFormat": fmt,
    }
    if alias:
        t["alias"] = alias
    return t


def math_target(ref: str, expression: str) -> dict[str, Any]:
    """A server-side expression over other targets (Grafana evaluates it, not InfluxDB)."""
    return {"refId": ref, "datasource": EXPR_DS, "type": "math", "expression": expression}


def hidden(t: dict[str, Any]) -> dict[str, Any]:
    return {**t, "hide": True}


def thresholds(base: str, *steps: tuple[float, str]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": c, "value": round(v, 3)} for v, c in steps],
    }


def gct_zones() -> dict[str, Any]:
    """The GCT balance colour zones (left foot's share): green while balanced (<= 50.7 %
    either side), orange in between, red when notable (> 52.2 % either side). Grafana
    gives a value equal to a step the step's colour, so exactly 50.7 shows orange."""
    return thresholds(
        "red",
        (100.0 - GCT_NOTABLE_ABOVE_PCT, "orange"),
        (100.0 - GCT_BALANCED_MAX_PCT, "green"),
        (GCT_BALANCED_MAX_PCT, "orange"),
        (GCT_NOTABLE_ABOVE_PCT, "red"),
    )


def si_zones() -> dict[str, Any]:
    lv = ALERTS.asymmetry.si_pct
    return thresholds(
        "red",
        (-lv.critical, "orange"),
        (-lv.warning, "green"),
        (lv.warning, "orange"),
        (lv.critical, "red"),
    )


def rising(levels: Levels) -> dict[str, Any]:
    return thresholds("green", (levels.warning, "orange"), (levels.critical, "red"))


def side_colours() -> list[dict[str, Any]]:
    return [
        {
            "matcher": {"id": "byName", "options": side},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": colour}}],
        }
        for side, colour in (("left", LEFT_COLOUR), ("right", RIGHT_COLOUR))
    ]


class Dashboard:
    """Panels laid out left to right, wrapping at Grafana's 24 columns."""

    def __init__(self, uid: str, title: str, description: str, **top: Any) -> None:
        self.uid, self.title, self.description = uid, title, description
        self.top = top
        self.panels: list[dict[str, Any]] = []
        self.variables: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self._x = self._y = self._row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def _newline(self) -> None:
        self._y += self._row_h
        self._x = self._row_h = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> dict[str, Any]:
        if self._x + w > 24:
            self._newline()
        panel = {
            "id": len(self.panels) + 1,
            "gridPos": {"h": h, "w": w, "x": self._x, "y": self._y},
            **panel,
        }
        self._x += w
        self._row_h = max(self._row_h, h)
        self.panels.append(panel)
        return panel

    def to_json(self) -> dict[str, Any]:
        return {
            "id": None,
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["hipstride"],
            "timezone": "browser",
            "editable": False,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "links": [
                {
                    "type": "dashboards",
                    "tags": ["hipstride"],
                    "title": "hipstride",
                    "asDropdown": False,
                    "includeVars": True,
                    "keepTime": False,
                }
            ],
            **self.top,
            "templating": {"list": self.variables},
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    },
                    *self.annotations,
                ]
            },
            "panels": self.panels,
        }


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    unit: str | None = None,
    decimals: int | None = None,
    th: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    interval: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"color": {"mode": "palette-classic"}}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if th:
        defaults["thresholds"] = th
        if kind in ("stat", "gauge", "bargauge"):
            defaults["color"] = {"mode": "thresholds"}
    if custom:
        defaults["custom"] = custom
    out: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if interval:
        out["interval"] = interval
    out.update(extra)
    return out


def timeseries(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    draw: str = "line",
    threshold_style: str = "off",
    **kw: Any,
) -> dict[str, Any]:
    custom = {
        "drawStyle": draw,
        "lineWidth": 2 if draw == "line" else 1,
        "fillOpacity": 60 if draw == "bars" else 0,
        "pointSize": 4,
        "showPoints": "always" if draw == "points" else "never",
        "spanNulls": False,
        "thresholdsStyle": {"mode": threshold_style},
    }
    opts = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "none"},
    }
    return panel("timeseries", title, description, targets, custom=custom, options=opts, **kw)


def reduce_options(calc: str = "lastNotNull") -> dict[str, Any]:
    return {"calcs": [calc], "fields": "", "values": False}


def stat(
    title: str, description: str, targets: list[dict[str, Any]], *, graph: bool = False, **kw: Any
) -> dict[str, Any]:
    opts = {
        "reduceOptions": reduce_options(),
        "colorMode": "value",
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
        "wideLayout": True,
    }
    return panel("stat", title, description, targets, options=opts, **kw)


def gauge(
    title: str, description: str, targets: list[dict[str, Any]], *, lo: float, hi: float, **kw: Any
) -> dict[str, Any]:
    opts = {
        "reduceOptions": reduce_options(),
        "orientation": "auto",
        "showThresholdMarkers": True,
        "showThresholdLabels": False,
    }
    p = panel("gauge", title, description, targets, options=opts, **kw)
    p["fieldConfig"]["defaults"].update(min=lo, max=hi)
    return p


def table(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    sort_by: str | None = None,
    transformations: list[dict[str, Any]] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    opts: dict[str, Any] = {"showHeader": True, "cellHeight": "sm"}
    if sort_by:
        opts["sortBy"] = [{"displayName": sort_by, "desc": True}]
    p = panel("table", title, description, targets, options=opts, **kw)
    if transformations:
        p["transformations"] = transformations
    return p


def by_name(name: str, *properties: tuple[str, Any]) -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": k, "value": v} for k, v in properties],
    }


def coloured_cells(th: dict[str, Any]) -> list[tuple[str, Any]]:
    return [("thresholds", th), ("custom.cellOptions", {"type": "color-text"})]


# ---------------------------------------------------------------------------------
# Variables and annotations
# ---------------------------------------------------------------------------------
def query_variable(
    name: str, label: str, query: str, *, multi: bool = False, sort: int = 1
) -> dict[str, Any]:
    v: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": query,
        "definition": query,
        "refresh": 2,  # on time-range change: a new athlete or session appears
        "sort": sort,
        "multi": multi,
        "includeAll": multi,
        "current": {},
        "options": [],
        "hide": 0,
        "regex": "",
    }
    if multi:
        # '.*' rather than a regex of every name: shorter queries, and an athlete who
        # starts during the session shows up without a variable refresh
        v["allValue"] = ".*"
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return v


def athlete_variable(multi: bool = False) -> dict[str, Any]:
    return query_variable(
        "athlete",
        "Athlete",
        f"SHOW TAG VALUES FROM {STEPS} WITH KEY = {STEPS.t('athlete')}",
        multi=multi,
    )


def session_variable() -> dict[str, Any]:
    # sessions are named by their start time: newest first (sort 2: alphabetical, desc)
    return query_variable(
        "session",
        "Session",
        f"SHOW TAG VALUES FROM {SUMMARY} WITH KEY = {SUMMARY.t('session')}"
        f" WHERE {athlete_is(SUMMARY)}",
        sort=2,
    )


def alert_annotation(*conditions: str, name: str = "hipstride alerts") -> dict[str, Any]:
    a = ALERT
    query = (
        f"SELECT {a.f('message')}, {a.f('value')}, {a.t('rule')}, {a.t('level')}"
        f" FROM {a} WHERE {where(*conditions, '$timeFilter')}"
    )
    return {
        "name": name,
        "datasource": DS,
        "enable": True,
        "hide": False,
        "iconColor": "red",
        "query": query,
        "textColumn": "message",
        "tagsColumn": "rule,level",
    }


def alerts_table(title: str, *conditions: str, h_desc: str) -> dict[str, Any]:
    a = ALERT
    query = (
        f"SELECT {a.t('level')}, {a.t('rule')}, {a.t('side')}, {a.f('message')},"
        f" {a.f('value')}, {a.f('threshold')}, {a.t('athlete')}"
        f" FROM {a} WHERE {where(*conditions, '$timeFilter')} ORDER BY time DESC LIMIT 200"
    )
    level_colours = {
        "type": "value",
        "options": {
            "warning": {"color": "orange", "index": 0},
            "critical": {"color": "red", "index": 1},
        },
    }
    return table(
        title,
        h_desc,
        [target(query, fmt="table")],
        overrides=[
            by_name(
                "level",
                ("mappings", [level_colours]),
                ("custom.cellOptions", {"type": "color-text"}),
            ),
            by_name("message", ("custom.width", 520)),
        ],
    )


# ---------------------------------------------------------------------------------
# Live run
# ---------------------------------------------------------------------------------
def per_side(metric: str, agg: str = "mean", *extra: str) -> str:
    s = STEPS
    return (
        f"SELECT {agg}({s.f(metric)}) FROM {s}"
        f" WHERE {where(athlete_is(s), *extra, running(), '$timeFilter')}"
        f" GROUP BY time($__interval), {s.t('side')} fill(none)"
    )


def summary_last(*fields: str, extra: Iterable[str] = ()) -> str:
    s = SUMMARY
    cols = ", ".join(f"last({s.f(f)}) AS {s.f(f)}" for f in fields)
    return f"SELECT {cols} FROM {s} WHERE {where(athlete_is(s), *extra, '$timeFilter')}"


def summary_series(*fields: str, extra: Iterable[str] = ()) -> str:
    s = SUMMARY
    cols = ", ".join(f"last({s.f(f)}) AS {s.f(f)}" for f in fields)
    return (
        f"SELECT {cols} FROM {s} WHERE {where(athlete_is(s), *extra, '$timeFilter')}"
        " GROUP BY time($__interval) fill(none)"
    )


def live_run() -> Dashboard:
    hip = ALERTS.hip_drop.levels
    d = Dashboard(
        "hipstride-live",
        "hipstride · Live run",
        "One athlete's run as it happens: cadence, ground contact and hip drop per side,"
        " left/right balance, and hipstride's alerts as annotations.",
        time={"from": "now-15m", "to": "now"},
        refresh="5s",
    )
    d.variables.append(athlete_variable())
    d.annotations.append(alert_annotation(athlete_is(ALERT)))

    d.row("Now")
    d.add(
        stat(
            "Cadence",
            "Steps per minute, both feet (median per 10 s).",
            [target(per_side("cadence_spm", "median"), alias="$tag_side")],
            unit="none",
            decimals=0,
            graph=True,
            interval="10s",
            overrides=side_colours(),
        ),
        w=4,
        h=5,
    )
    d.add(
        stat(
            "Contact time",
            "Ground contact time per foot (median per 10 s).",
            [target(per_side("contact_ms", "median"), alias="$tag_side")],
            unit="ms",
            decimals=0,
            graph=True,
            interval="10s",
            overrides=side_colours(),
        ),
        w=4,
        h=5,
    )
    d.add(
        stat(
            "Hip drop",
            f"Contralateral pelvic drop while standing on each leg (median per 10 s). hipstride"
            f" warns above {hip.warning:g} deg and calls it critical above {hip.critical:g} deg"
            " (sustained; Bramah et al. 2018).",
            [target(per_side("pelvic_drop_deg", "median"), alias="$tag_side")],
            unit="degree",
            decimals=1,
            graph=True,
            interval="10s",
            th=rising(hip),  # coloured by level, not by side
        ),
        w=4,
        h=5,
    )
    d.add(
        gauge(
            "GCT balance",
            "Left foot's share of ground contact time over this run so far (50 % = even)."
            f" Balanced up to {GCT_BALANCED_MAX_PCT} % either side, notable above"
            f" {GCT_NOTABLE_ABOVE_PCT} % (Garmin's zones).",
            [target(summary_last("gct_balance_left_pct"))],
            lo=45.0,
            hi=55.0,
            unit="percent",
            decimals=1,
            th=gct_zones(),
        ),
        w=4,
        h=5,
    )
    for title, description, field in (
        (
            "Hip drop symmetry",
            "Symmetry index of hip drop, this run so far: 100 (L - R) / mean(L, R);"
            " positive = the left leg drops more.",
            "pelvic_drop_deg_si_pct",
        ),
        (
            "Step time symmetry",
            "Symmetry index of step time, this run so far (positive = steps onto the left"
            " foot take longer).",
            "step_ms_si_pct",
        ),
    ):
        d.add(
            gauge(
                title,
                description,
                [target(summary_last(field))],
                lo=-40.0,
                hi=40.0,
                unit="percent",
                decimals=0,
                th=si_zones(),
            ),
            w=4,
            h=5,
        )

    d.row("Over the run")
    d.add(
        timeseries(
            "Contact time",
            "Ground contact time per foot.",
            [target(per_side("contact_ms"), alias="$tag_side")],
            unit="ms",
            overrides=side_colours(),
        ),
        w=12,
        h=8,
    )
    d.add(
        timeseries(
            "Hip drop",
            "Pelvic drop per leg; dashed lines: hipstride's warning and critical levels.",
            [target(per_side("pelvic_drop_deg"), alias="$tag_side")],
            unit="degree",
            th=rising(hip),
            threshold_style="dashed",
            overrides=side_colours(),
        ),
        w=12,
        h=8,
    )
    d.add(
        timeseries(
            "Cadence",
            "Steps per minute.",
            [target(per_side("cadence_spm"), alias="$tag_side")],
            unit="none",
            overrides=side_colours(),
        ),
        w=8,
        h=8,
    )
    d.add(
        timeseries(
            "GCT balance, run so far",
            "Left foot's share of contact time; bands: balanced (green), notable (red).",
            [target(summary_series("gct_balance_left_pct"), alias="GCT balance L")],
            unit="percent",
            th=gct_zones(),
            threshold_style="area",
            interval="5s",
        ),
        w=8,
        h=8,
    )
    st = STATUS
    d.add(
        timeseries(
            "Sensor samples lost",
            "Samples lost per sensor since the start (Bluetooth dropouts).",
            [
                target(
                    f"SELECT max({st.f('samples_lost')}) FROM {st}"
                    f" WHERE {where(athlete_is(st), '$timeFilter')}"
                    f" GROUP BY time($__interval), {st.t('placement')} fill(none)",
                    alias="$tag_placement",
                )
            ],
            unit="none",
            interval="5s",
        ),
        w=8,
        h=8,
    )
    d.add(
        alerts_table(
            "Alerts",
            athlete_is(ALERT),
            h_desc="What hipstride told the runner, newest first.",
        ),
        w=24,
        h=7,
    )
    return d


# ---------------------------------------------------------------------------------
# Coach
# ---------------------------------------------------------------------------------
def coach() -> Dashboard:
    hip = ALERTS.hip_drop.levels
    d = Dashboard(
        "hipstride-coach",
        "hipstride · Coach",
        "Every athlete on one screen, the most asymmetric first.",
        time={"from": "now-1h", "to": "now"},
        refresh="10s",
    )
    d.variables.append(athlete_variable(multi=True))
    d.annotations.append(alert_annotation(athlete_is(ALERT)))

    s = SUMMARY
    columns = {
        "gct_balance_left_pct": "GCT balance L %",
        "contact_ms_si_pct": "contact SI %",
        "step_ms_si_pct": "step SI %",
        "pelvic_drop_deg_si_pct": "hip drop SI %",
        "pelvic_drop_deg_median_left": "hip drop L",
        "pelvic_drop_deg_median_right": "hip drop R",
        "cadence_spm_median_left": "cadence",
        "steps": "steps",
        "running_s": "running",
        "alerts_total": "alerts",
    }
    cols = ", ".join(f'last({s.f(f)}) AS "{label}"' for f, label in columns.items())
    query = (
        f"SELECT {cols} FROM {s} WHERE {where(athlete_is(s), '$timeFilter')}"
        f" GROUP BY {s.t('athlete')}"
    )
    si_cols = ("contact SI %", "step SI %", "hip drop SI %")
    # Grafana orders the rows: the worst |SI| of contact time, step time and hip drop,
    # largest first (InfluxQL cannot order by a value, only by time).
    transformations: list[dict[str, Any]] = [
        {
            "id": "calculateField",
            "options": {
                "mode": "unary",
                "unary": {"operator": "abs", "fieldName": col},
                "alias": f"|{col}|",
                "replaceFields": False,
            },
        }
        for col in si_cols
    ]
    transformations += [
        {
            "id": "calculateField",
            "options": {
                "mode": "reduceRow",
                "reduce": {"reducer": "max", "include": [f"|{c}|" for c in si_cols]},
                "alias": "worst asymmetry %",
                "replaceFields": False,
            },
        },
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True, **{f"|{c}|": True for c in si_cols}},
                "indexByName": {"athlete": 0, "worst asymmetry %": 1},
                "renameByName": {},
            },
        },
        {"id": "sortBy", "options": {"sort": [{"field": "worst asymmetry %", "desc": True}]}},
    ]
    si = ALERTS.asymmetry.si_pct
    d.add(
        table(
            "Athletes, most asymmetric first",
            "This session so far, per athlete (the latest rolling summary). Worst asymmetry"
            " = the largest |symmetry index| of contact time, step time and hip drop;"
            f" hipstride warns above {si.warning:g} % and calls it critical above"
            f" {si.critical:g} %.",
            [target(query, fmt="table")],
            sort_by="worst asymmetry %",
            transformations=transformations,
            decimals=1,
            overrides=[
                by_name("worst asymmetry %", *coloured_cells(rising(si))),
                by_name("GCT balance L %", *coloured_cells(gct_zones())),
                *(by_name(c, *coloured_cells(si_zones())) for c in si_cols),
                by_name("hip drop L", *coloured_cells(rising(hip))),
                by_name("hip drop R", *coloured_cells(rising(hip))),
                by_name("running", ("unit", "s")),
                by_name("steps", ("decimals", 0)),
                by_name("alerts", ("decimals", 0)),
            ],
        ),
        w=24,
        h=9,
    )
    d.add(
        stat(
            "GCT balance · $athlete",
            "Left foot's share of contact time, this session so far.",
            [target(summary_last("gct_balance_left_pct"))],
            unit="percent",
            decimals=1,
            th=gct_zones(),
            repeat="athlete",
            repeatDirection="h",
            maxPerRow=6,
        ),
        # a horizontal repeat shares its row's width between the athletes' tiles
        w=24,
        h=4,
    )
    st = STEPS
    d.add(
        timeseries(
            "Hip drop by athlete",
            "Median pelvic drop per leg; dashed: hipstride's warning and critical levels.",
            [
                target(
                    f"SELECT median({st.f('pelvic_drop_deg')}) FROM {st}"
                    f" WHERE {where(athlete_is(st), running(), '$timeFilter')}"
                    f" GROUP BY time($__interval), {st.t('athlete')}, {st.t('side')} fill(none)",
                    alias="$tag_athlete $tag_side",
                )
            ],
            unit="degree",
            th=rising(hip),
            threshold_style="dashed",
            interval="10s",
        ),
        w=12,
        h=8,
    )
    d.add(
        timeseries(
            "GCT balance by athlete",
            "Left foot's share of contact time, each session so far; bands: balanced"
            " (green) and notable (red).",
            [
                target(
                    f"SELECT last({s.f('gct_balance_left_pct')}) FROM {s}"
                    f" WHERE {where(athlete_is(s), '$timeFilter')}"
                    f" GROUP BY time($__interval), {s.t('athlete')} fill(none)",
                    alias="$tag_athlete",
                )
            ],
            unit="percent",
            th=gct_zones(),
            threshold_style="area",
            interval="5s",
        ),
        w=12,
        h=8,
    )
    d.add(
        timeseries(
            "Cadence by athlete",
            "Steps per minute (median per interval).",
            [
                target(
                    f"SELECT median({st.f('cadence_spm')}) FROM {st}"
                    f" WHERE {where(athlete_is(st), running(), '$timeFilter')}"
                    f" GROUP BY time($__interval), {st.t('athlete')} fill(none)",
                    alias="$tag_athlete",
                )
            ],
            unit="none",
            interval="10s",
        ),
        w=12,
        h=8,
    )
    d.add(
        alerts_table(
            "Alerts, all athletes",
            athlete_is(ALERT),
            h_desc="Everything hipstride told the runners, newest first.",
        ),
        w=12,
        h=8,
    )
    return d


# ---------------------------------------------------------------------------------
# Session review
# ---------------------------------------------------------------------------------
def session_review() -> Dashboard:
    hip = ALERTS.hip_drop.levels
    d = Dashboard(
        "hipstride-session",
        "hipstride · Session review",
        "One session after the run: totals, every metric over time and every step."
        " Pick the athlete and session above, then zoom to the run (drag on any graph);"
        " the Training load dashboard's session table links here with the time set.",
        time={"from": "now-7d", "to": "now"},
    )
    d.variables += [athlete_variable(), session_variable()]
    d.annotations.append(alert_annotation(athlete_is(ALERT), session_is(ALERT)))
    sel = (session_is(SUMMARY),)

    d.row("Totals")
    for title, desc, field, unit, dec in (
        ("Running time", "Time from the first to the last step.", "running_s", "s", 0),
        ("Steps", "Steps, both feet.", "steps", "none", 0),
        ("Alerts", "Alerts hipstride raised during the session.", "alerts_total", "none", 0),
        (
            "GCT balance",
            "Left foot's share of contact time over the session.",
            "gct_balance_left_pct",
            "percent",
            1,
        ),
    ):
        th = gct_zones() if field == "gct_balance_left_pct" else None
        d.add(
            stat(
                title,
                desc,
                [target(summary_last(field, extra=sel))],
                unit=unit,
                decimals=dec,
                th=th,
            ),
            w=3,
            h=4,
        )
    for title, metric, unit, dec, th in (
        ("Contact time (median)", "contact_ms", "ms", 0, None),
        ("Hip drop (median)", "pelvic_drop_deg", "degree", 1, rising(hip)),
        ("Cadence (median)", "cadence_spm", "none", 0, None),
    ):
        q = (
            f'SELECT last({SUMMARY.f(f"{metric}_median_left")}) AS "left",'
            f' last({SUMMARY.f(f"{metric}_median_right")}) AS "right" FROM {SUMMARY}'
            f" WHERE {where(athlete_is(SUMMARY), *sel, '$timeFilter')}"
        )
        d.add(
            stat(
                title,
                "Per side, over the session.",
                [target(q, alias="$col")],
                unit=unit,
                decimals=dec,
                th=th,
                # the hip-drop levels colour the values; otherwise one colour per side
                overrides=[] if th else side_colours(),
            ),
            w=4,
            h=4,
        )

    d.row("Over time")
    sess = (session_is(STEPS),)
    for title, metric, unit, th in (
        ("Contact time", "contact_ms", "ms", None),
        ("Hip drop", "pelvic_drop_deg", "degree", rising(hip)),
        ("Cadence", "cadence_spm", "none", None),
        ("Flight time", "flight_ms", "ms", None),
    ):
        d.add(
            timeseries(
                title,
                "Mean per interval, per side.",
                [target(per_side(metric, "mean", *sess), alias="$tag_side")],
                unit=unit,
                th=th,
                threshold_style="dashed" if th else "off",
                overrides=side_colours(),
            ),
            w=12,
            h=8,
        )
    d.add(
        timeseries(
            "Symmetry, session so far",
            "Symmetry indices of contact time, step time and hip drop as the session went on"
            " (each over the session so far; 0 = even, positive = left larger).",
            [
                target(
                    summary_series(
                        "contact_ms_si_pct", "step_ms_si_pct", "pelvic_drop_deg_si_pct", extra=sel
                    ),
                    alias="$col",  # the legend names the column, not measurement.column
                ),
            ],
            unit="percent",
            interval="5s",
        ),
        w=12,
        h=8,
    )
    st = STATUS
    d.add(
        timeseries(
            "Sensor samples lost",
            "Samples lost per sensor since the start of the session.",
            [
                target(
                    f"SELECT max({st.f('samples_lost')}) FROM {st}"
                    f" WHERE {where(athlete_is(st), session_is(st), '$timeFilter')}"
                    f" GROUP BY time($__interval), {st.t('placement')} fill(none)",
                    alias="$tag_placement",
                )
            ],
            unit="none",
            interval="5s",
        ),
        w=12,
        h=8,
    )

    d.row("Every step")
    for title, metric, unit, th in (
        ("Contact time per step", "contact_ms", "ms", None),
        ("Hip drop per step", "pelvic_drop_deg", "degree", rising(hip)),
        ("Impact per step", "impact_peak_g", "none", None),
        ("Step time per step", "step_ms", "ms", None),
    ):
        q = (
            f"SELECT {STEPS.f(metric)} FROM {STEPS}"
            f" WHERE {where(athlete_is(STEPS), *sess, '$timeFilter')} GROUP BY {STEPS.t('side')}"
        )
        d.add(
            timeseries(
                title,
                "One point per step (no averaging), per side.",
                [target(q, alias="$tag_side")],
                draw="points",
                unit=unit,
                th=th,
                threshold_style="dashed" if th else "off",
                overrides=side_colours(),
            ),
            w=12,
            h=8,
        )
    d.add(
        alerts_table(
            "Alerts in this session",
            athlete_is(ALERT),
            session_is(ALERT),
            h_desc="What hipstride told the runner, newest first.",
        ),
        w=24,
        h=7,
    )
    return d


# ---------------------------------------------------------------------------------
# Training load
# ---------------------------------------------------------------------------------
#: InfluxQL's weeks start on Thursday (1970-01-01); 4 days later is a Monday
WEEK = "time(1w, 4d)"


def training_load() -> Dashboard:
    ov = ALERTS.overload
    s = SUMMARY
    d = Dashboard(
        "hipstride-training",
        "hipstride · Training load",
        "Weekly volume, the longest-run spike and the history of every session"
        " (finished sessions: their final summaries).",
        time={"from": "now-90d", "to": "now"},
        refresh="1m",
    )
    d.variables.append(athlete_variable())
    d.annotations.append(
        alert_annotation(
            athlete_is(ALERT),
            f"{ALERT.t('rule')} =~ /^(single_run_spike|weekly_volume_spike|return_after_break)$/",
            name="load alerts",
        )
    )
    fin = where(athlete_is(s), final())

    def minutes(window: str) -> str:
        return f"SELECT sum({s.f('running_s')}) / 60 FROM {s} WHERE {fin} AND {window}"

    last7, prev7 = "time > now() - 7d", "time > now() - 14d AND time <= now() - 7d"
    d.row("This week")
    d.add(
        stat(
            "Last 7 days",
            "Running time of the sessions finished in the last 7 days.",
            [target(minutes(last7))],
            unit="m",
            decimals=0,
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "7 days before",
            "Running time in the 7 days before those.",
            [target(minutes(prev7))],
            unit="m",
            decimals=0,
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Week on week",
            f"Last 7 days over the 7 days before; hipstride warns above"
            f" {pct_over(ov.weekly_warning_pct)} (Nielsen et al. 2014).",
            [
                hidden(target(minutes(last7), "A")),
                hidden(target(minutes(prev7), "B")),
                math_target("C", "100 * ($A / $B - 1)"),
            ],
            unit="percent",
            decimals=0,
            th=thresholds("green", (ov.weekly_warning_pct, "orange")),
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Longest run, last 30 days",
            "The reference for the longest-run spike.",
            [target(f"SELECT max({s.f('running_s')}) FROM {s} WHERE {fin} AND time > now() - 30d")],
            unit="s",
            decimals=0,
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Sessions, last 30 days",
            "Finished sessions.",
            [
                target(
                    f"SELECT count({s.f('running_s')}) FROM {s} WHERE {fin} AND time > now() - 30d"
                )
            ],
            unit="none",
            decimals=0,
        ),
        w=4,
        h=4,
    )
    d.add(
        stat(
            "Steps, last 7 days",
            "Steps in the sessions finished in the last 7 days.",
            [target(f"SELECT sum({s.f('steps')}) FROM {s} WHERE {fin} AND {last7}")],
            unit="short",
            decimals=0,
        ),
        w=4,
        h=4,
    )

    d.row("Weeks")
    d.add(
        timeseries(
            "Weekly running time",
            "Minutes of running per week (Monday to Sunday).",
            [
                target(
                    f"SELECT sum({s.f('running_s')}) / 60 FROM {s}"
                    f" WHERE {where(fin, '$timeFilter')} GROUP BY {WEEK} fill(0)",
                    alias="minutes",
                )
            ],
            draw="bars",
            unit="m",
        ),
        w=12,
        h=8,
    )
    d.add(
        timeseries(
            "Weekly steps",
            "Steps per week (Monday to Sunday).",
            [
                target(
                    f"SELECT sum({s.f('steps')}) FROM {s}"
                    f" WHERE {where(fin, '$timeFilter')} GROUP BY {WEEK} fill(0)",
                    alias="steps",
                )
            ],
            draw="bars",
            unit="short",
        ),
        w=12,
        h=8,
    )
    a = ALERT
    spike = f"{a.t('rule')} = 'single_run_spike'"
    d.add(
        timeseries(
            "Run length",
            "Each finished session's running time.",
            [
                target(
                    f'SELECT {s.f("running_s")} / 60 AS "minutes" FROM {s}'
                    f" WHERE {where(fin, '$timeFilter')}",
                    alias="minutes",
                )
            ],
            draw="bars",
            unit="m",
        ),
        w=12,
        h=8,
    )
    d.add(
        timeseries(
            "Longest-run spike",
            "How much longer than the longest run of the 30 days before a run became, as"
            f" hipstride measured it live: warning above {pct_over(ov.single_run_warning_pct)},"
            f" critical above {pct_over(ov.single_run_critical_pct)} (Frandsen et al. 2025).",
            [
                target(
                    f"SELECT max({a.f('value')}) FROM {a}"
                    f" WHERE {where(athlete_is(a), spike, '$timeFilter')}"
                    " GROUP BY time(1d) fill(none)",
                    alias="over the 30-day longest",
                )
            ],
            draw="points",
            unit="percent",
            th=thresholds(
                "green",
                (ov.single_run_warning_pct, "orange"),
                (ov.single_run_critical_pct, "red"),
            ),
            threshold_style="dashed",
        ),
        w=12,
        h=8,
    )

    d.row("History")
    d.add(
        timeseries(
            "Form per session",
            "Each finished session's median hip drop per leg.",
            [
                target(
                    f'SELECT {s.f("pelvic_drop_deg_median_left")} AS "hip drop L",'
                    f' {s.f("pelvic_drop_deg_median_right")} AS "hip drop R"'
                    f" FROM {s} WHERE {where(fin, '$timeFilter')}",
                    alias="$col",
                ),
            ],
            draw="points",
            unit="degree",
        ),
        w=12,
        h=8,
    )
    d.add(
        alerts_table(
            "Load alerts",
            athlete_is(ALERT),
            f"{a.t('rule')} =~ /^(single_run_spike|weekly_volume_spike|return_after_break)$/",
            h_desc="hipstride's across-run alerts (they need the training history).",
        ),
        w=12,
        h=8,
    )
    fields = {
        "running_s": "running",
        "steps": "steps",
        "cadence_spm_median_left": "cadence",
        "contact_ms_median_left": "contact L",
        "contact_ms_median_right": "contact R",
        "pelvic_drop_deg_median_left": "hip drop L",
        "pelvic_drop_deg_median_right": "hip drop R",
        "gct_balance_left_pct": "GCT balance L %",
        "alerts_total": "alerts",
    }
    cols = ", ".join(f'{s.f(f)} AS "{label}"' for f, label in fields.items())
    # time.window: twice the session's length, centred on its end -> the run fills the left half
    window = f'{s.f("duration_s")} * 2000 AS "window_ms"'
    link = (
        "/d/hipstride-session/hipstride-session-review?var-athlete=${__data.fields.athlete}"
        "&var-session=${__data.fields.session}&time=${__value.time}"
        "&time.window=${__data.fields.window_ms}"
    )
    d.add(
        table(
            "Sessions",
            "Every finished session, newest first; click a session to review it.",
            [
                target(
                    f"SELECT {cols}, {window}, {s.t('athlete')}, {s.t('session')} FROM {s}"
                    f" WHERE {where(fin, '$timeFilter')} ORDER BY time DESC",
                    fmt="table",
                )
            ],
            decimals=1,
            overrides=[
                by_name(
                    "session",
                    ("links", [{"title": "Review this session", "url": link}]),
                ),
                by_name("running", ("unit", "s")),
                by_name("window_ms", ("custom.hidden", True)),
                by_name("GCT balance L %", *coloured_cells(gct_zones())),
                by_name("steps", ("decimals", 0)),
                by_name("alerts", ("decimals", 0)),
            ],
        ),
        w=24,
        h=9,
    )
    return d


DASHBOARDS = {
    "live-run": live_run,
    "coach": coach,
    "session-review": session_review,
    "training-load": training_load,
}


# ---------------------------------------------------------------------------------
# Alert rules (Grafana-managed), mirroring hipstride's in-run and overload rules
# ---------------------------------------------------------------------------------
def seconds(x: float) -> str:
    return f"{math.ceil(x)}s"


def window_s(steps_per_side: int) -> int:
    """Seconds that ``steps_per_side`` steps of one foot take at the reference cadence."""
    return math.ceil(steps_per_side / (REFERENCE_CADENCE_SPM / 2.0 / 60.0))


def query_data(ref: str, query: str, from_s: int, to_s: int = 0) -> dict[str, Any]:
    return {
        "refId": ref,
        "relativeTimeRange": {"from": from_s, "to": to_s},
        "datasourceUid": DS_UID,
        "model": {
            "refId": ref,
            "datasource": DS,
            "rawQuery": True,
            "query": query,
            "resultFormat": "time_series",
            "intervalMs": 1000,
            "maxDataPoints": 43200,
        },
    }


def expr_data(ref: str, model: dict[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasourceUid": "__expr__",
        "model": {"refId": ref, "datasource": EXPR_DS, **model},
    }


def reduce_last(ref: str, of: str) -> dict[str, Any]:
    return expr_data(
        ref, {"type": "reduce", "expression": of, "reducer": "last", "settings": {"mode": "dropNN"}}
    )


def above(ref: str, of: str, value: float) -> dict[str, Any]:
    return expr_data(
        ref,
        {
            "type": "threshold",
            "expression": of,
            "conditions": [{"evaluator": {"type": "gt", "params": [value]}}],
        },
    )


def rule(
    uid: str,
    title: str,
    data: list[dict[str, Any]],
    *,
    condition: str,
    for_s: float,
    level: str,
    mirrors: str,
    summary: str,
    description: str,
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "condition": condition,
        "data": data,
        "noDataState": "OK",  # nobody running is not a problem
        "execErrState": "Error",
        "for": seconds(for_s),
        "annotations": {"summary": summary, "description": description},
        # No '$' in labels: Grafana expands environment variables in provisioned labels.
        "labels": {"severity": level, "hipstride_rule": mirrors, "source": "grafana"},
        "isPaused": False,
    }


def alert_rules() -> dict[str, Any]:
    cfg = ALERTS
    hip, asym, ov = cfg.hip_drop, cfg.asymmetry, cfg.overload
    st, s, a = STEPS, SUMMARY, ALERT
    live: list[dict[str, Any]] = []

    hip_window = window_s(hip.window_steps)
    hip_q = (
        f"SELECT median({st.f('pelvic_drop_deg')}) FROM {st}"
        f" WHERE {where(running(), '$timeFilter')} GROUP BY {st.t('athlete')}, {st.t('side')}"
    )
    for level, value in (("warning", hip.levels.warning), ("critical", hip.levels.critical)):
        live.append(
            rule(
                f"hipstride-hip-drop-{level}",
                f"Hip drop high ({level})",
                [query_data("A", hip_q, hip_window), reduce_last("B", "A"), above("C", "B", value)],
                condition="C",
                for_s=hip.sustain_s,
                level=level,
                mirrors="hip_drop_high",
                summary="{{ $labels.athlete }}: hip drop on the {{ $labels.side }} leg above"
                f" {value:g} deg",
                description="Median pelvic drop over the last"
                f" {hip_window} s is {{{{ humanize $values.B.Value }}}} deg, above {value:g} deg"
                f" for {hip.sustain_s:g} s (hipstride's hip_drop_high rule; Bramah et al. 2018).",
            )
        )

    gct_window = window_s(asym.window_steps)

    def contact(side: str) -> str:
        return (
            f"SELECT median({st.f('contact_ms')}) FROM {st}"
            f" WHERE {where(side_is(side), running(), '$timeFilter')} GROUP BY {st.t('athlete')}"
        )

    gct = asym.gct_balance_pct
    for level, value in (("warning", gct.warning), ("critical", gct.critical)):
        live.append(
            rule(
                f"hipstride-gct-balance-{level}",
                f"Contact time asymmetry ({level})",
                [
                    query_data("A", contact("left"), gct_window),
                    query_data("B", contact("right"), gct_window),
                    reduce_last("C", "A"),
                    reduce_last("D", "B"),
                    # the longer side's share of contact time, whichever side it is
                    expr_data(
                        "E", {"type": "math", "expression": "abs(100 * $C / ($C + $D) - 50) + 50"}
                    ),
                    above("F", "E", value),
                ],
                condition="F",
                for_s=asym.sustain_s,
                level=level,
                mirrors="asymmetry",
                summary="{{ $labels.athlete }}: one foot stays on the ground longer",
                description="The longer foot's share of ground contact time over the last"
                f" {gct_window} s is {{{{ humanize $values.E.Value }}}} %, above {value:g} %"
                f" for {asym.sustain_s:g} s (balanced: up to {GCT_BALANCED_MAX_PCT} %;"
                " hipstride's asymmetry rule).",
            )
        )

    forward_q = (
        f"SELECT count({a.f('value')}) FROM {a} WHERE $timeFilter"
        f" GROUP BY {a.t('athlete')}, {a.t('rule')}, {a.t('level')}"
    )
    live.append(
        rule(
            "hipstride-in-run-alert",
            "hipstride raised an alert",
            [query_data("A", forward_q, 60), reduce_last("B", "A"), above("C", "B", 0)],
            condition="C",
            for_s=0,
            level="warning",
            mirrors="any",
            summary="{{ $labels.athlete }}: hipstride {{ $labels.level }} alert"
            " ({{ $labels.rule }})",
            description="hipstride's own rules (form drift, cadence collapse and the rest"
            " that need the runner's baseline or history) raised an alert in the last minute;"
            " its message is on the Live run dashboard.",
        )
    )

    training: list[dict[str, Any]] = []
    month, week, five_min = 30 * 86400, 7 * 86400, 300
    longest_q = (
        f"SELECT max({s.f('running_s')}) FROM {s} WHERE {where(final(), '$timeFilter')}"
        f" GROUP BY {s.t('athlete')}"
    )
    # the session under way: its rolling summaries (final = false)
    now_q = (
        f"SELECT last({s.f('running_s')}) FROM {s} WHERE {where(final(False), '$timeFilter')}"
        f" GROUP BY {s.t('athlete')}"
    )
    for level, pct in (
        ("warning", ov.single_run_warning_pct),
        ("critical", ov.single_run_critical_pct),
    ):
        training.append(
            rule(
                f"hipstride-single-run-spike-{level}",
                f"Longest-run spike ({level})",
                [
                    query_data("A", longest_q, month),
                    query_data("B", now_q, five_min),
                    reduce_last("C", "A"),
                    reduce_last("D", "B"),
                    expr_data("E", {"type": "math", "expression": "100 * ($D / $C - 1)"}),
                    above("F", "E", pct),
                ],
                condition="F",
                for_s=0,
                level=level,
                mirrors="single_run_spike",
                summary="{{ $labels.athlete }}: this run is longer than any in the last 30 days",
                description="This run is {{ humanize $values.E.Value }} % longer than the"
                f" longest of the last 30 days (above {pct:g} %; hipstride's single_run_spike"
                " rule, Frandsen et al. 2025).",
            )
        )
    week_q = (
        f"SELECT sum({s.f('running_s')}) FROM {s} WHERE {where(final(), '$timeFilter')}"
        f" GROUP BY {s.t('athlete')}"
    )
    training.append(
        rule(
            "hipstride-weekly-volume-spike",
            "Weekly volume spike (warning)",
            [
                query_data("A", week_q, week),
                query_data("B", week_q, 2 * week, week),
                reduce_last("C", "A"),
                reduce_last("D", "B"),
                expr_data("E", {"type": "math", "expression": "100 * ($C / $D - 1)"}),
                above("F", "E", ov.weekly_warning_pct),
            ],
            condition="F",
            for_s=0,
            level="warning",
            mirrors="weekly_volume_spike",
            summary="{{ $labels.athlete }}: last 7 days well above the 7 days before",
            description="Running time of the last 7 days is {{ humanize $values.E.Value }} %"
            f" above the 7 days before (above {ov.weekly_warning_pct:g} %; hipstride's"
            " weekly_volume_spike rule, Nielsen et al. 2014). Counts finished sessions.",
        )
    )
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": "hipstride-live",
                "folder": ALERT_FOLDER,
                "interval": "10s",
                "rules": live,
            },
            {
                "orgId": 1,
                "name": "hipstride-training",
                "folder": ALERT_FOLDER,
                "interval": "1m",
                "rules": training,
            },
        ],
    }


def contact_points() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": CONTACT_POINT,
                "receivers": [
                    {
                        "uid": "hipstride-coach-webhook",
                        "type": "webhook",
                        # expanded by Grafana from its environment (compose passes it from .env)
                        "settings": {"url": "$GRAFANA_ALERT_WEBHOOK_URL", "httpMethod": "POST"},
                        "disableResolveMessage": False,
                    }
                ],
            }
        ],
        "policies": [
            {
                "orgId": 1,
                "receiver": CONTACT_POINT,
                "group_by": ["grafana_folder", "alertname", "athlete"],
                "group_wait": "10s",
                "group_interval": "1m",
                "repeat_interval": "1h",
            }
        ],
    }


def datasource() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "hipstride InfluxDB",
                "uid": DS_UID,
                "type": "influxdb",
                "access": "proxy",
                "url": "$HIPSTRIDE_GRAFANA_INFLUX_URL",
                # a read-only InfluxDB v1 user (2.x: `influx v1 auth create --read-bucket`)
                "user": "$INFLUXDB_GRAFANA_USER",
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "version": "InfluxQL",
                    "dbName": DATABASE,
                    "httpMode": "GET",
                    "timeInterval": "1s",
                },
                "secureJsonData": {"password": "$INFLUXDB_GRAFANA_PASSWORD"},
            }
        ],
    }


def dashboard_provider() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "hipstride",
                "orgId": 1,
                "folder": DASHBOARD_FOLDER,
                "folderUid": "hipstride",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": DASHBOARDS_PATH},
            }
        ],
    }


# ---------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------
HEADER = (
    "# Generated by `python -m dashboards.generate` from pipeline/sinks/influx_schema.py\n"
    "# and pipeline/stages/alerts.py: edit the generator, not this file.\n"
)


class _Dumper(yaml.SafeDumper):
    """No anchors and aliases (``&id001``) for dicts used twice: plain, diffable YAML."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(data: Mapping[str, Any]) -> str:
    text = yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return HEADER + text


def render() -> dict[Path, str]:
    """Every generated file (path -> text)."""
    files = {
        JSON_DIR / f"{name}.json": json.dumps(build().to_json(), indent=2, ensure_ascii=False)
        + "\n"
        for name, build in DASHBOARDS.items()
    }
    files[PROVISIONING / "datasources" / "hipstride.yaml"] = _yaml(datasource())
    files[PROVISIONING / "dashboards" / "hipstride.yaml"] = _yaml(dashboard_provider())
    files[PROVISIONING / "alerting" / "rules.yaml"] = _yaml(alert_rules())
    files[PROVISIONING / "alerting" / "contact-points.yaml"] = _yaml(contact_points())
    return files


def stale(files: Mapping[Path, str]) -> list[Path]:
    return [p for p, text in files.items() if not p.exists() or p.read_text("utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate hipstride's Grafana provisioning.")
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        out = stale(files)
        for p in out:
            print(f"out of date: {p.relative_to(ROOT.parent)}", file=sys.stderr)
        return 1 if out else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        print(f"wrote {path.relative_to(ROOT.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
