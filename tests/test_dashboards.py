"""Grafana provisioning (dashboards/): generated files, schema, and every query against a
real InfluxDB 1.x filled through hipstride's own pipeline and InfluxDB sink.

Grafana itself cannot run here, so what Grafana would do is done by hand: its macros
($timeFilter, $__interval, now(), the template variables) are substituted the way
Grafana substitutes them, each InfluxQL query goes to a real ``influxd``, and the alert
rules' expressions (reduce, math, threshold) are evaluated on what the queries return.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="pip install 'hipstride[test]' (pyyaml)")

from dashboards import demo, generate  # noqa: E402 - after the importorskip
from pipeline.sinks.config import InfluxSettings  # noqa: E402
from pipeline.sinks.influx import InfluxSink  # noqa: E402
from pipeline.sinks.influx_schema import COMMON_TAGS, MEASUREMENTS  # noqa: E402
from tests.servers import Influxd, find_binary, running  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_FILES = sorted((ROOT / "dashboards" / "json").glob("*.json"))
RULES_FILE = ROOT / "dashboards" / "provisioning" / "alerting" / "rules.yaml"
CONTACTS_FILE = ROOT / "dashboards" / "provisioning" / "alerting" / "contact-points.yaml"
DATASOURCE_FILE = ROOT / "dashboards" / "provisioning" / "datasources" / "hipstride.yaml"
DB = generate.DATABASE
EXPR = "__expr__"


# ---------------------------------------------------------------------------------
# What the dashboards contain
# ---------------------------------------------------------------------------------
def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text("utf-8")))


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])  # a collapsed row holds its panels


@dataclass(frozen=True)
class Query:
    where: str  # for messages: dashboard / panel / refId
    text: str
    dashboard: str
    repeat: str | None = None


def dashboard_queries(path: Path) -> list[Query]:
    d = load(path)
    out = []
    for p in all_panels(d):
        for t in p.get("targets", []):
            if t["datasource"]["uid"] == generate.DS_UID:
                where = f"{path.stem} / {p['title']} / {t['refId']}"
                out.append(Query(where, t["query"], path.stem, p.get("repeat")))
    for v in d["templating"]["list"]:
        out.append(Query(f"{path.stem} / variable {v['name']}", v["query"], path.stem))
    for a in d["annotations"]["list"]:
        if "query" in a:
            out.append(Query(f"{path.stem} / annotation {a['name']}", a["query"], path.stem))
    return out


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES_FILE.read_text("utf-8"))
    return [r for g in data["groups"] for r in g["rules"]]


def rule_queries() -> list[Query]:
    return [
        Query(f"rule {r['uid']} / {d['refId']}", d["model"]["query"], "rules")
        for r in rules()
        for d in r["data"]
        if d["datasourceUid"] == generate.DS_UID
    ]


ALL_QUERIES = [q for f in DASHBOARD_FILES for q in dashboard_queries(f)] + rule_queries()


# ---------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------
def test_committed_files_are_what_the_generator_writes() -> None:
    files = generate.render()
    assert {p.name for p in files if p.suffix == ".json"} == {p.name for p in DASHBOARD_FILES}
    assert generate.stale(files) == [], "run: python -m dashboards.generate"


def test_a_renamed_field_breaks_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = MEASUREMENTS["step"]
    fields = {k: v for k, v in steps.fields.items() if k != "pelvic_drop_deg"}
    fields["hip_drop_deg"] = "float"
    renamed = dataclasses.replace(steps, fields=fields)
    monkeypatch.setitem(MEASUREMENTS, "step", renamed)
    monkeypatch.setattr(generate, "STEPS", generate.Schema("step"))
    with pytest.raises(generate.SchemaError, match="no field 'pelvic_drop_deg'"):
        generate.render()


# ---------------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------------
def datasource_refs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict):
            yield ds
        for v in node.values():
            yield from datasource_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from datasource_refs(v)


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_dashboard_loads_with_unique_ids_and_only_our_datasource(path: Path) -> None:
    d = load(path)
    assert d["uid"].startswith("hipstride-") and d["title"] and d["panels"]
    ids = [p["id"] for p in all_panels(d)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    refs = {ds["uid"] for ds in datasource_refs(d)}
    # the provisioned InfluxDB, Grafana's server-side expressions, and the built-in
    # "Annotations & Alerts" that every dashboard has
    assert refs <= {generate.DS_UID, EXPR, "-- Grafana --"}, refs
    provisioned = yaml.safe_load(DATASOURCE_FILE.read_text("utf-8"))["datasources"]
    assert [ds["uid"] for ds in provisioned] == [generate.DS_UID]
    for p in all_panels(d):
        if p["type"] == "row":
            continue
        refs_in_panel = {t["refId"] for t in p["targets"]}
        assert len(refs_in_panel) == len(p["targets"]), p["title"]
        for t in p["targets"]:
            if t["datasource"]["uid"] == EXPR:
                used = set(re.findall(r"\$([A-Z])\b", t["expression"]))
                assert used and used <= refs_in_panel - {t["refId"]}, (p["title"], used)
        x, w = p["gridPos"]["x"], p["gridPos"]["w"]
        assert x >= 0 and x + w <= 24, p["title"]


def test_dashboard_uids_are_unique_and_variables_are_used() -> None:
    dashboards = [load(f) for f in DASHBOARD_FILES]
    assert len({d["uid"] for d in dashboards}) == len(dashboards) == 4
    for d in dashboards:
        text = json.dumps(d["panels"]) + json.dumps(d["annotations"])
        for v in d["templating"]["list"]:
            assert f"${v['name']}" in text, f"{d['uid']}: variable {v['name']} unused"


IDENT = re.compile(r'"([^"]+)"')


def names_in(query: str) -> tuple[str, set[str], set[str]]:
    """(measurement, quoted identifiers that are not aliases, aliases) of one query."""
    m = re.search(r'\bFROM\s+"([^"]+)"', query)
    assert m, f"no FROM in {query!r}"
    aliases = set(re.findall(r'\bAS\s+"([^"]+)"', query))
    without_aliases = re.sub(r'\bAS\s+"[^"]+"', "", query)
    names = set(IDENT.findall(without_aliases)) - {m.group(1)}
    return m.group(1), names, aliases


def unknown_names(query: str) -> list[str]:
    measurement, names, _ = names_in(query)
    by_name = {m.name: m for m in MEASUREMENTS.values()}
    if measurement not in by_name:
        return [f"measurement {measurement}"]
    m = by_name[measurement]
    known = {*m.fields, *m.tags, *COMMON_TAGS}
    return sorted(n for n in names if n not in known)


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.where)
def test_query_names_only_measurements_and_fields_the_sink_writes(query: Query) -> None:
    # every identifier is quoted by the generator, so a bare one would slip past this check
    bare = re.sub(r'"[^"]*"|\'[^\']*\'|/[^/]*/', "", query.text)
    assert not re.search(r"\b(pelvic|contact|cadence|gct|running_s|steps)\w*", bare), query.text
    assert unknown_names(query.text) == [], query.text


def test_the_name_check_catches_a_wrong_field() -> None:
    assert unknown_names('SELECT mean("hip_drop_deg") FROM "hipstride_steps"') == ["hip_drop_deg"]
    assert unknown_names('SELECT "x" FROM "hipstride_step"') == ["measurement hipstride_step"]
    assert unknown_names('SELECT last("steps") AS "hip drop" FROM "hipstride_summary"') == []


# ---------------------------------------------------------------------------------
# A real InfluxDB 1.x, filled by hipstride's own pipeline and sink (v1 write path)
# ---------------------------------------------------------------------------------
DAY = 86400.0


@dataclass
class Filled:
    server: Influxd
    #: the wall-clock second both of today's sessions end at
    end_s: float
    anna_sessions: list[str]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    """anna (uneven: hip-drop and asymmetry alerts) and ben (even), each with earlier
    sessions for the training history, then one session each ending a minute ago."""
    binary = find_binary("influxd", "influxdb")
    tmp = tmp_path_factory.mktemp("dashboards")
    with running(Influxd(binary, tmp / "influxd")) as server:
        assert isinstance(server, Influxd)
        server.query(f"CREATE DATABASE {DB}")
        now = time.time()
        end = math.floor(now) - 60.0
        anna, ben = demo.TEAM[0], demo.TEAM[1]
        plan = [
            # anna: 30 s runs (16 and 9 days ago: the 7 days before; 3 days ago: this week)
            *(demo.PlannedSession(anna, now - d * DAY, 30.0, i) for i, d in enumerate((16, 9, 3))),
            # ben: 60 s runs, two of them in the 7 days before this week
            *(
                demo.PlannedSession(ben, now - d * DAY, 60.0, 20 + i)
                for i, d in enumerate((12, 9, 4))
            ),
            # today: anna runs 3x her longest (spike alerts), ben less than his usual.
            # The recording starts with 2 s of standing: sessions end 2 s after duration.
            demo.PlannedSession(anna, end - 92.0, 90.0, 17),
            demo.PlannedSession(ben, end - 47.0, 45.0, 8),
        ]
        settings = InfluxSettings(url=server.base, api="v1", database=DB, flush_interval_s=0.2)

        def sinks(p: demo.PlannedSession) -> list[Any]:
            return [
                InfluxSink(
                    settings,
                    p.runner.athlete,
                    spool_dir=tmp / "spool" / p.runner.athlete / p.session,
                    session=p.session,
                    start_unix_s=p.start_epoch_s,
                )
            ]

        summaries: list[dict[str, Any]] = []
        demo.run_sessions(plan, sinks, on_done=lambda p, s: summaries.append(s))
        assert all(s["steps"] > 50 for s in summaries)
        anna_sessions = sorted(p.session for p in plan if p.runner is anna)
        yield Filled(server, end, anna_sessions)


def time_filter(from_s: float, to_s: float) -> str:
    return f"time >= {round(from_s * 1000)}ms and time <= {round(to_s * 1000)}ms"


def substitute(query: str, *, now_s: float, range_s: float, **variables: str) -> str:
    """The query as Grafana sends it: macros and variables replaced."""
    q = query.replace("$timeFilter", time_filter(now_s - range_s, now_s))
    q = q.replace("$__interval", "10s").replace("now()", f"{round(now_s * 1000)}ms")
    for name, value in variables.items():
        # inside /.../ Grafana regex-escapes a single value; "All" is allValue '.*'
        q = q.replace(f"${name}", value if value == ".*" else re.escape(value))
    assert not re.search(r"\$[A-Za-z_{]", q), f"unsubstituted macro in {q}"
    return q


def run_query(server: Influxd, q: str) -> list[dict[str, Any]]:
    result = server.query(q, DB)["results"][0]
    assert "error" not in result, f"{result['error']}: {q}"
    return list(result.get("series", []))


#: the variables each dashboard is viewed with, and how far back its range goes
VIEWS: dict[str, dict[str, str]] = {
    "live-run": {"athlete": "anna"},
    "coach": {"athlete": ".*"},
    "session-review": {"athlete": "anna"},  # + the session, from its variable query
    "training-load": {"athlete": "anna"},
}


@pytest.mark.parametrize(
    "query", [q for q in ALL_QUERIES if q.dashboard != "rules"], ids=lambda q: q.where
)
def test_every_dashboard_query_returns_data(query: Query, filled: Filled) -> None:
    now = filled.end_s + 2.0
    variables = dict(VIEWS[query.dashboard])
    if query.dashboard == "session-review":
        variables["session"] = filled.anna_sessions[-1]
    athletes = ["anna", "ben"] if query.repeat == "athlete" else [variables.get("athlete")]
    for athlete in athletes:  # a repeated panel runs once per athlete
        if athlete is not None:
            variables["athlete"] = athlete
        q = substitute(query.text, now_s=now, range_s=30 * DAY, **variables)
        series = run_query(filled.server, q)
        assert series and any(s["values"] for s in series), f"no data for {athlete}: {q}"


def test_variables_list_the_athletes_and_newest_session_first(filled: Filled) -> None:
    live = load(ROOT / "dashboards" / "json" / "session-review.json")
    athlete_var, session_var = live["templating"]["list"]
    (series,) = run_query(filled.server, substitute(athlete_var["query"], now_s=0, range_s=0))
    assert [v[1] for v in series["values"]] == ["anna", "ben"]
    q = substitute(session_var["query"], now_s=0, range_s=0, athlete="anna")
    (series,) = run_query(filled.server, q)
    assert sorted(v[1] for v in series["values"]) == filled.anna_sessions
    assert session_var["sort"] == 2, "sessions are named by start time: descending = newest"


def test_coach_table_has_one_row_per_athlete_with_anna_most_asymmetric(filled: Filled) -> None:
    coach = load(ROOT / "dashboards" / "json" / "coach.json")
    table = next(p for p in all_panels(coach) if p["type"] == "table")
    q = substitute(table["targets"][0]["query"], now_s=filled.end_s, range_s=3600, athlete=".*")
    rows = {
        s["tags"]["athlete"]: dict(zip(s["columns"], s["values"][0], strict=True))
        for s in run_query(filled.server, q)
    }
    assert set(rows) == {"anna", "ben"}
    # what the table's transformations compute: the worst |SI|, largest first
    worst = {
        a: max(abs(r[c]) for c in ("contact SI %", "step SI %", "hip drop SI %"))
        for a, r in rows.items()
    }
    assert worst["anna"] > 20.0 > worst["ben"], worst
    assert rows["anna"]["GCT balance L %"] < 100 - generate.GCT_NOTABLE_ABOVE_PCT < 50.0
    assert (
        100 - generate.GCT_BALANCED_MAX_PCT
        <= rows["ben"]["GCT balance L %"]
        <= generate.GCT_BALANCED_MAX_PCT
    )
    sort = next(t for t in table["transformations"] if t["id"] == "sortBy")
    assert sort["options"]["sort"] == [{"field": "worst asymmetry %", "desc": True}]


# ---------------------------------------------------------------------------------
# Alert rules
# ---------------------------------------------------------------------------------
DURATION = {"type": "string", "pattern": r"^\d+[smhd]$"}
#: Grafana's alert-rule provisioning format (apiVersion 1), the subset used here
RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "groups"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": 1},
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["orgId", "name", "folder", "interval", "rules"],
                "additionalProperties": False,
                "properties": {
                    "orgId": {"type": "integer"},
                    "name": {"type": "string", "minLength": 1},
                    "folder": {"type": "string", "minLength": 1},
                    "interval": DURATION,
                    "rules": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/rule"}},
                },
            },
        },
    },
    "$defs": {
        "rule": {
            "type": "object",
            "required": ["uid", "title", "condition", "data"],
            "additionalProperties": False,
            "properties": {
                "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
                "title": {"type": "string", "minLength": 1},
                "condition": {"type": "string"},
                "data": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/data"}},
                "noDataState": {"enum": ["Alerting", "NoData", "OK", "KeepLast"]},
                "execErrState": {"enum": ["Alerting", "Error", "OK", "KeepLast"]},
                "for": DURATION,
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "isPaused": {"type": "boolean"},
            },
        },
        "data": {
            "type": "object",
            "required": ["refId", "datasourceUid", "model"],
            "additionalProperties": False,
            "properties": {
                "refId": {"type": "string", "pattern": "^[A-Z]$"},
                "datasourceUid": {"type": "string"},
                "relativeTimeRange": {
                    "type": "object",
                    "required": ["from", "to"],
                    "properties": {
                        "from": {"type": "integer", "minimum": 1},
                        "to": {"type": "integer", "minimum": 0},
                    },
                },
                "model": {"type": "object", "required": ["refId"]},
            },
        },
    },
}


def test_alert_rules_are_valid_provisioning_and_refer_to_existing_queries() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = yaml.safe_load(RULES_FILE.read_text("utf-8"))
    jsonschema.validate(doc, RULES_SCHEMA)
    uids = [r["uid"] for r in rules()]
    assert len(uids) == len(set(uids))
    for g in doc["groups"]:
        titles = [r["title"] for r in g["rules"]]
        assert len(titles) == len(set(titles)), "titles must be unique in a folder"
        assert g["folder"] != generate.DASHBOARD_FOLDER
    for r in rules():
        data = {d["refId"]: d for d in r["data"]}
        assert len(data) == len(r["data"]), r["uid"]
        assert r["condition"] in data, r["uid"]
        assert data[r["condition"]]["model"]["type"] == "threshold", r["uid"]
        for ref, d in data.items():
            model = d["model"]
            assert model["refId"] == ref
            if d["datasourceUid"] == generate.DS_UID:
                assert "relativeTimeRange" in d and model["rawQuery"] is True
                assert "$timeFilter" in model["query"], "the rule's time range must apply"
                continue
            assert d["datasourceUid"] == EXPR, f"{r['uid']}/{ref}: unknown data source"
            if model["type"] == "math":
                used = set(re.findall(r"\$([A-Z])\b", model["expression"]))
            else:
                used = {model["expression"]}
            assert used and used <= set(data) - {ref}, f"{r['uid']}/{ref} uses {used}"
        # Grafana expands environment variables ($NAME) in provisioned labels
        assert "$" not in json.dumps(r.get("labels", {})), r["uid"]
        assert r["annotations"]["summary"] and r["annotations"]["description"]


def test_notification_policy_uses_the_provisioned_contact_point() -> None:
    doc = yaml.safe_load(CONTACTS_FILE.read_text("utf-8"))
    assert doc["apiVersion"] == 1
    names = {cp["name"] for cp in doc["contactPoints"]}
    assert {p["receiver"] for p in doc["policies"]} <= names
    (cp,) = doc["contactPoints"]
    (receiver,) = cp["receivers"]
    assert receiver["type"] == "webhook" and receiver["uid"]
    # the URL comes from Grafana's environment, which compose fills from .env
    var = receiver["settings"]["url"].lstrip("$")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    assert var in compose["services"]["grafana"]["environment"]


# A tiny evaluator of the server-side expressions the rules use (reduce last,
# math, threshold gt), on the series InfluxDB returns: {labels: value}.
Labels = tuple[tuple[str, str], ...]


def evaluate(rule: dict[str, Any], server: Influxd, now_s: float) -> set[Labels]:
    """The label sets for which ``rule``'s condition holds at ``now_s``."""
    results: dict[str, dict[Labels, Any]] = {}
    for d in rule["data"]:
        model, ref = d["model"], d["refId"]
        if d["datasourceUid"] == generate.DS_UID:
            rng = d["relativeTimeRange"]
            q = model["query"].replace(
                "$timeFilter", time_filter(now_s - rng["from"], now_s - rng["to"])
            )
            results[ref] = {
                tuple(sorted((s.get("tags") or {}).items())): [v[1] for v in s["values"]]
                for s in run_query(server, q)
            }
        elif model["type"] == "reduce":
            assert model["reducer"] == "last" and model["settings"]["mode"] == "dropNN"
            src = results[model["expression"]]
            results[ref] = {
                k: [v for v in vs if v is not None][-1]
                for k, vs in src.items()
                if any(v is not None for v in vs)
            }
        elif model["type"] == "math":
            refs = re.findall(r"\$([A-Z])\b", model["expression"])
            tree = ast.parse(re.sub(r"\$([A-Z])\b", r"\1", model["expression"]), mode="eval")
            allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load)
            allowed += (ast.Constant, ast.operator, ast.unaryop)
            assert all(isinstance(n, allowed) for n in ast.walk(tree)), model["expression"]
            code = compile(tree, "<math>", "eval")
            keys = set.intersection(*(set(results[r]) for r in refs))
            results[ref] = {
                k: eval(code, {"abs": abs}, {r: results[r][k] for r in refs}) for k in keys
            }
        elif model["type"] == "threshold":
            (cond,) = model["conditions"]
            assert cond["evaluator"]["type"] == "gt"
            limit = cond["evaluator"]["params"][0]
            results[ref] = {k: v > limit for k, v in results[model["expression"]].items()}
        else:
            raise AssertionError(f"evaluator knows no {model['type']}")
    return {k for k, fired in results[rule["condition"]].items() if fired}


def athletes(fired: set[Labels]) -> set[str]:
    return {dict(k)["athlete"] for k in fired}


def test_alert_rules_fire_for_the_uneven_runner_only(filled: Filled) -> None:
    by_uid = {r["uid"]: r for r in rules()}
    during = filled.end_s - 3.0  # both athletes running, before their final summaries
    after = filled.end_s + 2.0  # both sessions finished

    def fired(uid: str, at: float) -> set[Labels]:
        return evaluate(by_uid[uid], filled.server, at)

    # anna's left hip drops ~9 deg (warning above 7, critical above 10); ben's ~5 deg
    assert fired("hipstride-hip-drop-warning", during) == {(("athlete", "anna"), ("side", "left"))}
    assert fired("hipstride-hip-drop-critical", during) == set()
    # anna's right foot has ~53 % of contact time: notable (> 52.2), not critical (54.4)
    assert athletes(fired("hipstride-gct-balance-warning", during)) == {"anna"}
    assert fired("hipstride-gct-balance-critical", during) == set()
    # anna's run is 3x her longest of the last 30 days; ben's shorter than his usual
    assert athletes(fired("hipstride-single-run-spike-warning", during)) == {"anna"}
    assert athletes(fired("hipstride-single-run-spike-critical", during)) == {"anna"}
    # week on week (finished sessions): anna 30 s -> 120 s; ben 120 s -> 105 s
    assert fired("hipstride-weekly-volume-spike", during) == set(), "anna: 30 s vs 30 s"
    assert athletes(fired("hipstride-weekly-volume-spike", after)) == {"anna"}
    # hipstride's own alerts are forwarded, with their rule and level as labels
    forwarded = fired("hipstride-in-run-alert", during)
    assert athletes(forwarded) == {"anna"}
    assert {dict(k)["rule"] for k in forwarded} >= {"asymmetry", "hip_drop_high"}


def test_rule_thresholds_mirror_hipstride_alert_config() -> None:
    cfg = generate.AlertConfig()

    def threshold(uid: str) -> float:
        (r,) = [r for r in rules() if r["uid"] == uid]
        cond = next(d for d in r["data"] if d["refId"] == r["condition"])
        return float(cond["model"]["conditions"][0]["evaluator"]["params"][0])

    assert threshold("hipstride-hip-drop-warning") == cfg.hip_drop.levels.warning
    assert threshold("hipstride-hip-drop-critical") == cfg.hip_drop.levels.critical
    assert threshold("hipstride-gct-balance-warning") == cfg.asymmetry.gct_balance_pct.warning
    assert threshold("hipstride-gct-balance-critical") == cfg.asymmetry.gct_balance_pct.critical
    assert threshold("hipstride-single-run-spike-warning") == cfg.overload.single_run_warning_pct
    assert threshold("hipstride-single-run-spike-critical") == cfg.overload.single_run_critical_pct
    assert threshold("hipstride-weekly-volume-spike") == cfg.overload.weekly_warning_pct
    sustain = {r["uid"]: r["for"] for r in rules()}
    assert sustain["hipstride-hip-drop-warning"] == f"{cfg.hip_drop.sustain_s:g}s"
    assert sustain["hipstride-gct-balance-warning"] == f"{cfg.asymmetry.sustain_s:g}s"


def test_gauge_zones_are_the_gct_balance_zones() -> None:
    live = load(ROOT / "dashboards" / "json" / "live-run.json")
    gauge = next(p for p in all_panels(live) if p["title"] == "GCT balance")
    steps = [s["value"] for s in gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 47.8, 49.3, 50.7, 52.2]
    colours = [s["color"] for s in gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert colours == ["red", "orange", "green", "orange", "red"]


def test_demo_history_plan_has_a_spike_and_is_deterministic() -> None:
    a = demo.history_plan(demo.TEAM, 1_750_000_000.0, weeks=2, runs_per_week=2)
    b = demo.history_plan(demo.TEAM, 1_750_000_000.0, weeks=2, runs_per_week=2)
    assert a == b and len(a) == 3 * 4
    assert [p.start_epoch_s for p in a] == sorted(p.start_epoch_s for p in a)
    cleo = [p.duration_s for p in a if p.runner.athlete == "cleo"]
    assert cleo[-1] > 2 * max(cleo[:-1]), "cleo's last run is the longest-run spike"
    assert all(p.start_epoch_s < 1_750_000_000.0 for p in a)


def test_demo_history_command_writes_through_the_environment_settings(
    filled: Filled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the container runs once: `demo.py history`, configured like hipstride itself
    from HIPSTRIDE_* variables (here the v1 path, as in docker-compose.yml)."""
    filled.server.query("CREATE DATABASE demo")
    for key in list(os.environ):
        if key.startswith("HIPSTRIDE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HIPSTRIDE_INFLUX_URL", f"{filled.server.base}?db=demo")
    monkeypatch.setenv("HIPSTRIDE_INFLUX_FLUSH_INTERVAL_S", "0.2")
    monkeypatch.setenv("HIPSTRIDE_SPOOL_DIR", str(tmp_path / "spool"))
    code = demo.main(["history", "--weeks", "1", "--runs-per-week", "1", "--minutes", "0.3", "0.3"])
    assert code == 0
    result = filled.server.query(
        'SELECT "running_s" FROM "hipstride_summary" WHERE "final" = true GROUP BY "athlete"',
        "demo",
    )["results"][0]
    running = {s["tags"]["athlete"]: s["values"][0][1] for s in result["series"]}
    assert set(running) == {r.athlete for r in demo.TEAM}
    assert running["cleo"] > 2 * running["anna"], "cleo's run is the spike"
    assert (tmp_path / "spool" / "demo-history").is_dir(), "not the live replays' spool"


def test_demo_recordings_are_written_per_runner(tmp_path: Path) -> None:
    from sensors.recording import open_recording

    (path,) = demo.write_recordings(tmp_path, demo.TEAM[:1], 4.0)
    assert path.name == "anna.hsr"
    rec = open_recording(path)
    assert set(rec.placements) == {"pelvis", "left_foot", "right_foot"}
