"""Errors a user can act on: each names the file, the place in it and the problem."""

from __future__ import annotations

from pathlib import Path


class RecordingError(Exception):
    """A recording that cannot be read as it stands.

    ``str(err)`` is one line: ``FILE:LINE: FIELD: problem`` (line and field when known).
    For binary files ``line`` is replaced by ``byte OFFSET``.
    """

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        line: int | None = None,
        field: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.field = field
        self.offset = offset
        super().__init__(self.message())

    def message(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
        elif self.offset is not None:
            where += f": byte {self.offset}"
        parts = [where]
        if self.field:
            parts.append(f"field '{self.field}'")
        parts.append(self.problem)
        return ": ".join(parts)


class DecodeError(ValueError):
    """A sensor packet that is short, corrupt or of an unknown kind."""
