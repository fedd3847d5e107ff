"""Recordings: the CSV interchange format and hipstride's native block format.

Public API (stable; other modules depend on it):

* ``open_recording(path) -> Recording``: recognises a native file by its content
  (magic bytes), whatever its name; anything else is read as CSV.
* ``Recording.placements``: the sensors in the file, known before streaming.
* ``Recording.chunks() -> Iterator[Chunk]``: streams the samples; memory stays bounded.
* ``Recording.warnings``: non-fatal notes (e.g. a crash-truncated native file).
* ``open_writer(path, kind) -> RecordingWriter`` and ``write_recording(...)``.

Every problem raises :class:`sensors.errors.RecordingError` naming file, line or byte
offset, field and problem.
"""
