"""The streaming-stage contract every processing step follows.

* ``push`` takes one item (a :class:`~sensors.model.Chunk` or an event) and returns
  0..n outputs; ``flush`` ends the stream and returns what was held back.
* A stage never reads the wall clock: time comes from the samples, so a replay
  reproduces a live run exactly.
* State is bounded (ring buffers sized from a window in seconds), and outputs never
  depend on how the input was cut into chunks.
* ``snapshot``/``restore`` give a small picklable state to resume after a crash.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Stage(Protocol):
    def push(self, item: Any) -> list[Any]: ...

    def flush(self) -> list[Any]: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...
