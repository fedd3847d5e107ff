"""The run directory: ``steps.csv``, ``alerts.jsonl``, ``summary.json``.

Rows are written and flushed as they come, so a crash loses at most the step being
written; ``summary.json`` is written (atomically) from the final summary record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.records import StepRecord, fmt_cell
from pipeline.sinks.base import Record


class RunDirSink:
    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        # Kept open for the whole run (closed in close()), hence no context manager.
        self._steps = open(self.dir / "steps.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._steps.write(",".join(StepRecord.CSV_COLUMNS) + "\n")
        self._alerts = open(self.dir / "alerts.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.steps = 0
        self.alerts = 0
        self._summary: dict[str, Any] | None = None

    def add(self, records: Iterable[Record]) -> None:
        wrote = False
        for r in records:
            kind = r.get("kind")
            if kind == "step":
                self._steps.write(
                    ",".join(fmt_cell(r.get(c)) for c in StepRecord.CSV_COLUMNS) + "\n"
                )
                self.steps += 1
                wrote = True
            elif kind == "alert":
                self._alerts.write(json.dumps(r, sort_keys=True) + "\n")
                self.alerts += 1
                wrote = True
            elif kind == "summary" and r.get("final"):
                self._summary = r
        if wrote:
            self._steps.flush()
            self._alerts.flush()

    def status(self) -> dict[str, Any]:
        return {"sink": "files", "dir": str(self.dir), "steps": self.steps, "alerts": self.alerts}

    def close(self) -> None:
        if self._steps.closed:
            return
        self._steps.close()
        self._alerts.close()
        if self._summary is not None:
            tmp = self.dir / "summary.json.tmp"
            tmp.write_text(json.dumps(self._summary, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self.dir / "summary.json")
