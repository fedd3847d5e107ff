"""In-run alert rules: step records in, alerts out.

Each rule sees every released step in time order and decides from the samples' time
axis only, so a replay raises exactly the alerts the live run raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.records import Alert, StepRecord


@dataclass(frozen=True, slots=True)
class AlertConfig:
    enabled: bool = True


class AlertStage:
    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config or AlertConfig()

    def push(self, step: StepRecord) -> list[Alert]:
        return []

    def flush(self) -> list[Alert]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass
