"""``hipstride report DIR``: one self-contained HTML page with the run's plots."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.svgplot import nice_ticks


class _Page(HTMLParser):
    """Collects what a browser would fetch or run: tags, their addresses, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.addresses: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data") and value:
                self.addresses.append(value)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    rec = d / "uneven.hsr"
    args = ["simulate", "--duration-s", "90", "--seed", "5", str(rec)]
    assert main([*args, "--contact-ms", "235", "275", "--hip-drop-deg", "4", "9"]) == 0
    db = d / "h.db"
    for start, out in (("2025-03-01T08:00:00Z", "a"), ("2025-03-04T08:00:00Z", "b")):
        argv = ["replay", str(rec), "--out", str(d / out), "--quiet", "--db", str(db)]
        assert main([*argv, "--athlete", "Ben", "--start", start]) == 0
    return d


def test_report_is_self_contained_with_the_plots(run_dir, capsys) -> None:
    out_dir = run_dir / "b"
    assert main(["report", str(out_dir)]) == 0
    html = (out_dir / "report.html").read_text(encoding="utf-8")
    assert f"wrote {out_dir / 'report.html'}" in capsys.readouterr().out
    page = _Page()
    page.feed(html)
    # nothing to fetch: no scripts, stylesheets, images or links to anywhere
    assert page.addresses == []
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", html, re.I)
    # the plots: contact and hip drop by side, GCT balance, SI, and the history trend
    assert page.tags.count("svg") >= 7
    for title in (
        "Ground contact time per step",
        "Hip drop per step",
        "GCT balance",
        "Symmetry index",
        "Run length per session",
        "Median hip drop per session",
    ):
        assert title in html, title
    # alerts on the timeline (markers with tooltips) and in the table
    assert "Hip drop on your right leg" in html
    assert html.count('stroke-dasharray="3 3"') >= 2  # one marker per alert, per chart
    assert "Training history (2 sessions)" in html
    assert "Ben" in html


def test_report_without_history_and_to_another_file(run_dir, tmp_path) -> None:
    (run_dir / "a" / "session.json").unlink()
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir / "a"), "--out", str(out)]) == 0
    html = out.read_text()
    assert "Record runs with" in html and "Run length per session" not in html
    # history given explicitly instead
    argv = ["report", str(run_dir / "a"), "--out", str(out)]
    assert main([*argv, "--db", str(run_dir / "h.db"), "--athlete", "ben"]) == 0
    assert "Training history (2 sessions)" in out.read_text()


def test_report_on_a_non_run_directory_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hipstride: error:") and "steps.csv not found" in err
    assert "\n" not in err


def test_report_escapes_text(tmp_path: Path) -> None:
    from pipeline.report import RunData, build_report

    alert = {"time_s": 1.0, "rule": "x", "level": "warning", "message": "<b>&"}
    html = build_report(RunData(tmp_path, [], [alert], {"steps": 0}))
    assert "&lt;b&gt;&amp;" in html and "<b>&" not in html


def test_nice_ticks() -> None:
    assert nice_ticks(0.0, 10.0, 5) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert nice_ticks(44.0, 56.0, 5) == [45.0, 47.5, 50.0, 52.5, 55.0]
    assert nice_ticks(3.0, 3.0) == [3.0]
