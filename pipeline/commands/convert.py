"""``hipstride convert IN OUT``: between the CSV interchange format and the native one.

IN's kind is recognised by its content; OUT is CSV when its name ends in ``.csv``,
native otherwise. OUT appears only once complete: the data goes to a temporary file
next to it, renamed at the end, so a failed conversion leaves no half-written OUT.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from sensors.errors import RecordingError
from sensors.model import Chunk
from sensors.recording import (
    Kind,
    Recording,
    RecordingWriter,
    io_errors,
    kind_for_path,
    open_recording,
    open_writer,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a recording between CSV and the native format",
        description=(
            "Convert a recording. IN may be CSV or native (recognised by its content); "
            "OUT is written as CSV when its name ends in .csv, as native otherwise."
        ),
    )
    parser.add_argument("input", metavar="IN", type=Path, help="recording to read")
    parser.add_argument("output", metavar="OUT", type=Path, help="file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    source: Path = args.input
    target: Path = args.output
    recording = open_recording(source)
    kind = kind_for_path(target)
    try:
        stats = _convert(recording, target, kind)
    finally:
        # Also when the conversion fails: a damaged native block skipped before the
        # failure is worth knowing about.
        for warning in recording.warnings:
            print(f"hipstride: warning: {warning}", file=sys.stderr)
    print(_summary(recording, source, target, kind, stats))
    return 0


class _Stats:
    """Samples and time span per sensor, gathered while streaming."""

    def __init__(self) -> None:
        self.samples: dict[str, int] = {}
        self.first_s: float | None = None
        self.last_s: float | None = None
        self.raw_packets = 0

    def add(self, chunk: Chunk) -> None:
        self.samples[chunk.placement] = self.samples.get(chunk.placement, 0) + len(chunk)
        first, last = float(chunk.t_s[0]), float(chunk.t_s[-1])
        self.first_s = first if self.first_s is None else min(self.first_s, first)
        self.last_s = last if self.last_s is None else max(self.last_s, last)


def _convert(recording: Recording, target: Path, kind: Kind) -> _Stats:
    stats = _Stats()
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise RecordingError(target, f"cannot write: {err.strerror or err}") from None
    os.close(fd)
    temporary = Path(name)
    try:
        meta = {**recording.meta, "converted_from": recording.path.name}
        # fsync only on close: a conversion that dies is simply run again.
        with open_writer(temporary, kind, meta, fsync_every_s=None) as writer:
            for chunk in recording.chunks():
                writer.write(chunk)
                stats.add(chunk)
            _copy_raw_packets(recording, writer, stats)
        if not stats.samples:
            raise RecordingError(recording.path, "no samples to convert")
        with io_errors(target, "write"):
            os.replace(temporary, target)
    except RecordingError as err:
        temporary.unlink(missing_ok=True)
        if err.path == str(temporary):  # name the file the user asked for
            raise RecordingError(
                target, err.problem, line=err.line, field=err.field, offset=err.offset
            ) from None
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return stats


def _copy_raw_packets(recording: Recording, writer: RecordingWriter, stats: _Stats) -> None:
    """Keep the sensors' raw packets when the output can hold them (native)."""
    for packet in recording.raw_packets():
        stats.raw_packets += 1
        if writer.kind == "native":
            writer.write_raw(*packet)
    if stats.raw_packets and writer.kind != "native":
        recording.warnings.append(
            f"{recording.path}: {stats.raw_packets} raw sensor packets not converted "
            "(CSV holds decoded samples only)"
        )


def _summary(recording: Recording, source: Path, target: Path, kind: str, stats: _Stats) -> str:
    samples = ", ".join(f"{name} {count}" for name, count in stats.samples.items())
    duration_s = (stats.last_s or 0.0) - (stats.first_s or 0.0)
    size_in, size_out = source.stat().st_size, target.stat().st_size
    ratio = f", {100.0 * size_out / size_in:.0f}% of the input" if size_in else ""
    raw = f", {stats.raw_packets} raw packets" if stats.raw_packets else ""
    return (
        f"converted {source} ({recording.kind}, {_size(size_in)}) -> {target} ({kind}, "
        f"{_size(size_out)}{ratio}): {samples} samples{raw} over {duration_s:.1f} s"
    )


def _size(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"
