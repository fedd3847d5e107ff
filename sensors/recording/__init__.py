"""Recordings: the CSV interchange format and hipstride's native block format.

Public API (stable; other modules depend on it):

* ``open_recording(path) -> Recording``: recognises a native file by its content
  (magic bytes), whatever its name; anything else is read as CSV.
* ``Recording.placements``: the sensors in the file, known before streaming.
* ``Recording.chunks() -> Iterator[Chunk]``: streams the samples; memory stays bounded.
* ``Recording.warnings``: non-fatal notes (e.g. a crash-truncated native file).
* ``Recording.duration_s``: a cheap estimate of the time span (None if unknown).
* ``Recording.raw_packets()``: the sensors' raw BLE packets (native files only).
* ``open_writer(path, kind) -> RecordingWriter`` and ``write_recording(...)``.
* ``kind_for_path(path)``: ``"csv"`` for a ``.csv`` name, else ``"native"``.

Every problem raises :class:`sensors.errors.RecordingError` naming file, line or byte
offset, field and problem. The byte layouts are documented in ``docs/formats.md``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NoReturn

import numpy as np

from sensors.errors import RecordingError
from sensors.model import Chunk

Kind = Literal["csv", "native"]

__all__ = [
    "Kind",
    "Recording",
    "RecordingError",
    "RecordingWriter",
    "kind_for_path",
    "open_recording",
    "open_writer",
    "write_recording",
]

#: One raw sensor packet as the BLE collector stored it:
#: ``(arrival_s, placement, protocol, data)``.
RawPacket = tuple[float, str, str, bytes]


class Recording(abc.ABC):
    """A recording opened for reading; ``chunks()`` may be called more than once."""

    kind: Kind

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.placements: tuple[str, ...] = ()
        self.meta: dict[str, Any] = {}
        self.warnings: list[str] = []
        #: Seconds from first to last sample, estimated cheaply at open (e.g. for a
        #: progress bar); None when unknown.
        self.duration_s: float | None = None

    @abc.abstractmethod
    def chunks(self) -> Iterator[Chunk]:
        """Stream the samples; per sensor, chunks come in time order."""

    def raw_packets(self) -> Iterator[RawPacket]:
        """The raw BLE packets stored with the samples (only native files hold any)."""
        return iter(())

    def _warn(self, message: str) -> None:
        # chunks() may run twice over the same damaged file: report each problem once.
        if message not in self.warnings:
            self.warnings.append(message)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {str(self.path)!r} {self.placements}>"


class RecordingWriter(abc.ABC):
    """Writes chunks to a recording; use as a context manager or call ``close()``.

    ``write`` checks what a reader would reject anyway (time not strictly increasing
    within a sensor, NaN or infinite values, a sensor whose gyroscope comes and goes)
    so a bad stream fails where it is produced, not when the file is read back.
    """

    kind: Kind

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: Non-fatal notes, e.g. a torn block removed before appending.
        self.warnings: list[str] = []
        self._last_t: dict[str, float] = {}
        self._has_gyro: dict[str, bool] = {}
        self._closed = False

    def write(self, chunk: Chunk) -> None:
        """Add samples of one sensor (in time order for that sensor)."""
        if self._closed:
            raise RecordingError(self.path, "cannot write: the writer is closed")
        if len(chunk) == 0:
            return
        chunk = _as_float64(chunk)
        self._check(chunk)
        self._last_t[chunk.placement] = float(chunk.t_s[-1])
        self._has_gyro[chunk.placement] = chunk.has_gyro
        self._write_checked(chunk)

    def write_raw(self, arrival_s: float, placement: str, protocol: str, data: bytes) -> None:
        """Store one raw sensor packet (native recordings only)."""
        raise RecordingError(
            self.path, f"raw packets can only be stored in a native recording, not {self.kind}"
        )

    def close(self) -> None:
        """Write what is buffered and close the file; calling it twice is harmless."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Also on error: what was written so far stays readable (that is the point
        # of the native format); a caller that wants all-or-nothing writes to a
        # temporary file and renames it, as ``hipstride convert`` does.
        self.close()

    @abc.abstractmethod
    def _write_checked(self, chunk: Chunk) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    def _check(self, chunk: Chunk) -> None:
        self._check_finite(chunk)
        self._check_time(chunk)
        had_gyro = self._has_gyro.get(chunk.placement)
        if had_gyro is not None and had_gyro != chunk.has_gyro:
            state = "has no gyroscope now" if had_gyro else "has a gyroscope now"
            self._fail(chunk, "gyr", f"{state}, unlike its earlier samples")

    def _check_finite(self, chunk: Chunk) -> None:
        for field, values in (
            ("time_s", chunk.t_s),
            ("acc", chunk.acc_mps2),
            ("gyr", chunk.gyr_dps),
        ):
            if values is not None and not np.isfinite(values).all():
                self._fail(chunk, field, "NaN or infinite value in the input")

    def _check_time(self, chunk: Chunk) -> None:
        t = chunk.t_s
        bad = np.flatnonzero(t[1:] <= t[:-1])
        if bad.size:
            i = int(bad[0])
            self._fail(
                chunk, "time_s", f"time not strictly increasing ({t[i + 1]!r} s after {t[i]!r} s)"
            )
        previous = self._last_t.get(chunk.placement)
        if previous is not None and t[0] <= previous:
            self._fail(
                chunk,
                "time_s",
                f"time {float(t[0])!r} s is not after the previous sample at {previous!r} s",
            )

    def _fail(self, chunk: Chunk, field: str, problem: str) -> NoReturn:
        raise RecordingError(self.path, f"sensor '{chunk.placement}': {problem}", field=field)


def _as_float64(chunk: Chunk) -> Chunk:
    """The codecs and the bit-exact round trip assume float64 arrays."""
    arrays = (chunk.t_s, chunk.acc_mps2, chunk.gyr_dps)
    if all(a is None or a.dtype == np.float64 for a in arrays):
        return chunk
    gyr = None if chunk.gyr_dps is None else chunk.gyr_dps.astype(np.float64)
    return Chunk(
        chunk.placement,
        chunk.t_s.astype(np.float64),
        chunk.acc_mps2.astype(np.float64),
        gyr,
        chunk.device_id,
    )


@contextmanager
def io_errors(path: str | Path, verb: str) -> Iterator[None]:
    """Turn an OSError (disk full, no such directory...) into a one-line RecordingError."""
    try:
        yield
    except OSError as err:
        raise RecordingError(path, f"cannot {verb}: {err.strerror or err}") from None


def kind_for_path(path: str | Path) -> Kind:
    """The kind a writer uses for ``path`` by default: its name decides."""
    return "csv" if str(path).lower().endswith(".csv") else "native"


def open_recording(path: str | Path) -> Recording:
    """Open a recording for reading; native files are recognised by their magic bytes."""
    # Imported here: the format modules import the base classes above.
    from sensors.recording.csv_format import CsvRecording
    from sensors.recording.native import MAGIC, NativeRecording, looks_native

    with io_errors(path, "read"), open(path, "rb") as f:
        head = f.read(len(MAGIC))
    if looks_native(head):
        return NativeRecording(path)
    return CsvRecording(path)


def open_writer(
    path: str | Path,
    kind: Kind = "native",
    meta: dict[str, Any] | None = None,
    append: bool = False,
    *,
    block_samples: int = 256,
    fsync_every_s: float | None = 5.0,
) -> RecordingWriter:
    """Open a writer; ``block_samples`` and ``fsync_every_s`` apply to native files.

    ``append=True`` (native only) continues an existing file, after removing a block
    torn by a crash. ``meta`` goes into the native header (CSV has no metadata).
    """
    from sensors.recording.csv_format import CsvWriter
    from sensors.recording.native import NativeWriter

    if kind == "csv":
        if append:
            raise RecordingError(path, "appending is only supported for native recordings")
        return CsvWriter(path)
    if kind == "native":
        return NativeWriter(
            path, meta, append=append, block_samples=block_samples, fsync_every_s=fsync_every_s
        )
    raise RecordingError(path, f"unknown recording kind {kind!r} (expected 'csv' or 'native')")


def write_recording(
    path: str | Path,
    chunks: Iterable[Chunk],
    kind: Kind | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write ``chunks`` to a new file; ``kind`` None: CSV for a ``.csv`` name, else native."""
    with open_writer(path, kind or kind_for_path(path), meta) as writer:
        for chunk in chunks:
            writer.write(chunk)
