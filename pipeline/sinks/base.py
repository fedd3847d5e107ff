"""The sink contract.

A sink receives the pipeline's records as flat dicts (``record.as_dict()``: every dict
has a ``kind`` key, ``step`` / ``alert`` / ``status`` / ``summary``, and keys with units
in their names). ``add`` never blocks the pipeline: a network sink queues (bounded),
batches, retries with backoff and spools to disk while its server is down.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

Record = dict[str, Any]


@runtime_checkable
class Sink(Protocol):
    def add(self, records: Iterable[Record]) -> None:
        """Accept records; must return quickly whatever the server's state."""
        ...

    def status(self) -> dict[str, Any]:
        """Small dict for the terminal/status topic: connected, backlog, sent, errors."""
        ...

    def close(self) -> None:
        """Flush what can be flushed; leave the rest in the spool for the next run."""
        ...
