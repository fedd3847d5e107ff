"""The CSV interchange format: one row per sample of one sensor.

``time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z``; acc in m/s^2, gyr in deg/s,
the three gyr cells empty for a sensor without gyroscope. Specified in
``docs/formats.md``.

Reading is vectorised: the file is parsed in batches of about 50k rows (3 MiB),
numpy finding the fields and ``np.loadtxt`` converting the numbers. Only when a
batch fails is it scanned again line by line, to name the exact line and field of
the first problem; that slow scan is also the reference for what the format accepts.
"""

from __future__ import annotations

import io
import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt

from sensors.errors import RecordingError
from sensors.model import PLACEMENTS, Chunk, FloatArray
from sensors.recording import Recording, RecordingWriter, io_errors
from sensors.recording.native import decimal_places

FIELDS: tuple[str, ...] = (
    "time_s",
    "sensor",
    "acc_x",
    "acc_y",
    "acc_z",
    "gyr_x",
    "gyr_y",
    "gyr_z",
)
HEADER = ",".join(FIELDS)
_N_FIELDS = len(FIELDS)
_SENSOR_CODE = {name: code for code, name in enumerate(PLACEMENTS)}
_VALID_SENSORS = ", ".join(PLACEMENTS)
#: Bytes read per batch: about 50k rows of a typical export.
BATCH_BYTES = 3 << 20
#: A real row is under 200 bytes; this catches a binary file or a missing newline.
_MAX_LINE_BYTES = 1 << 16
_BOM = "\ufeff"
_TAIL_BYTES = 4096  # read from the end of the file to find the last time
_NUMERIC = (0, 2, 3, 4, 5, 6, 7)  # the columns that hold numbers

BoolArray = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------- reader


@dataclass
class _SensorState:
    """What the rows of one sensor so far imply for its next row."""

    has_gyro: bool
    gyro_line: int  # the line that decided has_gyro (named in error messages)
    last_t: float
    last_line: int


@dataclass
class _Batch:
    """Parsed columns of consecutive rows, sensors still interleaved."""

    first_line: int
    codes: npt.NDArray[np.int8]
    t: FloatArray
    acc: FloatArray  # (n, 3)
    gyr: FloatArray  # (n, 3), NaN where the row has no gyroscope
    no_gyro: BoolArray


class _Parser:
    """Turns batches of lines into chunks, carrying per-sensor state between them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.states: dict[str, _SensorState] = {}

    def parse(self, data: bytes, first_line: int, terminated: bool) -> list[Chunk]:
        """Chunks (one per sensor) of the lines in ``data`` (no final newline).

        ``terminated`` False: ``data`` is the file's last line and lacks its newline,
        so a problem there means the file was cut mid-row.
        """
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").removesuffix(b"\r")
        fast = _fast_columns(data, first_line) if terminated else None
        if fast is not None:
            groups = _groups(fast)
            if all(self._consistent(name, fast, rows) for name, rows in groups):
                return self._commit(fast, groups)
        text = data.decode("utf-8", errors="replace")
        slow = self._slow_columns(text, first_line, terminated)
        return self._commit(slow, _groups(slow))

    def _consistent(self, name: str, batch: _Batch, rows: np.ndarray) -> bool:
        """Whether the rows of one sensor agree with each other and with the state."""
        no_gyro = batch.no_gyro[rows]
        if no_gyro.any() and not no_gyro.all():
            return False
        t = batch.t[rows]
        state = self.states.get(name)
        if state is not None and (state.has_gyro == no_gyro[0] or not t[0] > state.last_t):
            return False
        return bool(np.all(t[1:] > t[:-1]))

    def _commit(self, batch: _Batch, groups: list[tuple[str, np.ndarray]]) -> list[Chunk]:
        chunks = []
        for name, rows in groups:
            has_gyro = not batch.no_gyro[rows[0]]
            gyr = batch.gyr[rows] if has_gyro else None
            chunks.append(Chunk(name, batch.t[rows], batch.acc[rows], gyr))
            first, last = batch.first_line + int(rows[0]), batch.first_line + int(rows[-1])
            state = self.states.setdefault(name, _SensorState(has_gyro, first, 0.0, first))
            state.last_t, state.last_line = float(batch.t[rows[-1]]), last
        return chunks

    # -- the line-by-line reference scan

    def _slow_columns(self, text: str, first_line: int, terminated: bool) -> _Batch:
        """Parse every line on its own; raises at the first problem."""
        lines = text.split("\n")
        # A copy: the real state only changes when the whole batch is accepted.
        states = {name: replace(state) for name, state in self.states.items()}
        codes, values, no_gyro = [], [], []
        for i, line in enumerate(lines):
            line_no = first_line + i
            try:
                code, row, has_gyro = self._parse_line(line, line_no, states)
            except RecordingError as err:
                if terminated or i < len(lines) - 1:
                    raise
                raise RecordingError(
                    self.path,
                    f"truncated: the file ends in the middle of a row ({err.problem})",
                    line=line_no,
                    field=err.field,
                ) from None
            codes.append(code)
            values.append(row)
            no_gyro.append(not has_gyro)
        table = np.array(values, dtype=np.float64).reshape(-1, 7)
        return _Batch(
            first_line,
            np.array(codes, dtype=np.int8),
            table[:, 0].copy(),
            table[:, 1:4].copy(),
            table[:, 4:7].copy(),
            np.array(no_gyro, dtype=bool),
        )

    def _parse_line(
        self, line: str, line_no: int, states: dict[str, _SensorState]
    ) -> tuple[int, list[float], bool]:
        cells = line.split(",")
        if len(cells) != _N_FIELDS:
            empty = " (an empty line)" if not line.strip() else ""
            self._fail(
                line_no, None, f"wrong number of fields: {len(cells)}{empty}; expected 8 ({HEADER})"
            )
        name = cells[1]
        code = _SENSOR_CODE.get(name)
        if code is None:
            self._fail(line_no, "sensor", f"unknown sensor {name!r} (valid: {_VALID_SENSORS})")
        row = [self._number(cells[j], j, line_no) for j in (0, 2, 3, 4)]
        gyr_cells = cells[5:8]
        empty_cells = [cell == "" for cell in gyr_cells]
        has_gyro = not any(empty_cells)
        if has_gyro:
            row.extend(self._number(cells[j], j, line_no) for j in (5, 6, 7))
        elif not all(empty_cells):
            field = FIELDS[5 + empty_cells.index(True)]
            self._fail(line_no, field, "gyroscope partly empty: give all three gyr values or none")
        else:
            row.extend((math.nan, math.nan, math.nan))
        self._check_sequence(name, row[0], has_gyro, line_no, states)
        return code, row, has_gyro

    def _check_sequence(
        self, name: str, t: float, has_gyro: bool, line_no: int, states: dict[str, _SensorState]
    ) -> None:
        state = states.get(name)
        if state is None:
            states[name] = _SensorState(has_gyro, line_no, t, line_no)
            return
        if state.has_gyro != has_gyro:
            had = "gyroscope values" if state.has_gyro else "no gyroscope values"
            now = "none" if state.has_gyro else "some"
            self._fail(
                line_no,
                "gyr_x",
                f"sensor {name!r} has {had} on line {state.gyro_line} but {now} here",
            )
        if not t > state.last_t:
            self._fail(
                line_no,
                "time_s",
                f"time not strictly increasing for sensor {name!r}: {t!r} s comes after "
                f"{state.last_t!r} s on line {state.last_line}",
            )
        state.last_t, state.last_line = t, line_no

    def _number(self, cell: str, column: int, line_no: int) -> float:
        try:
            value = float(cell)
        except ValueError:
            problem = "missing value" if not cell.strip() else f"not a number: {cell!r}"
            self._fail(line_no, FIELDS[column], problem)
        if not math.isfinite(value):
            self._fail(
                line_no,
                FIELDS[column],
                f"{cell.strip()!r} is not a finite number (NaN and infinity are not allowed)",
            )
        return value

    def _fail(self, line_no: int, field: str | None, problem: str) -> NoReturn:
        raise RecordingError(self.path, problem, line=line_no, field=field)


def _groups(batch: _Batch) -> list[tuple[str, np.ndarray]]:
    """Each sensor's row indices, sensors in order of first appearance."""
    present = np.flatnonzero(np.bincount(batch.codes, minlength=len(PLACEMENTS)))
    groups = [(PLACEMENTS[code], np.flatnonzero(batch.codes == code)) for code in present]
    groups.sort(key=lambda group: int(group[1][0]))
    return groups


def _fast_columns(data: bytes, first_line: int) -> _Batch | None:
    """All columns of a batch at numpy speed, or None if anything looks wrong.

    The field boundaries come from the comma positions (numpy on the raw bytes), the
    sensor names are compared byte-wise, and ``np.loadtxt`` (C code, with the same
    float parsing as Python's ``float``) converts the numbers.
    """
    raw = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(raw == ord("\n"))
    commas = np.flatnonzero(raw == ord(","))
    # Seven commas on every line. Checked first: it makes the positions below valid.
    per_line = np.diff(np.searchsorted(commas, newlines), prepend=0, append=commas.size)
    if not np.all(per_line == _N_FIELDS - 1):
        return None
    cuts = commas.reshape(-1, _N_FIELDS - 1)  # row i: its seven comma positions
    codes = _sensor_codes(raw, cuts[:, 0] + 1, cuts[:, 1])
    if codes is None:
        return None
    line_ends = np.append(newlines, raw.size)
    no_gyro = (cuts[:, 5] == cuts[:, 4] + 1) & (cuts[:, 6] == cuts[:, 5] + 1)
    no_gyro &= line_ends == cuts[:, 6] + 1
    text = data + b"\n"
    if no_gyro.any():
        # Empty gyr cells become NaN for loadtxt; real "nan" text cannot hide among
        # them as those rows' cells were empty (checked above).
        text = text.replace(b",,,\n", b",nan,nan,nan\n")
    try:
        values = np.loadtxt(
            io.BytesIO(text), delimiter=",", usecols=_NUMERIC, comments=None, ndmin=2
        )
    except ValueError:
        return None
    if values.shape != (codes.size, len(_NUMERIC)) or not np.isfinite(values[:, :4]).all():
        return None
    if not np.isfinite(values[~no_gyro, 4:]).all():
        return None
    return _Batch(first_line, codes, values[:, 0].copy(), values[:, 1:4], values[:, 4:], no_gyro)


def _sensor_codes(
    raw: npt.NDArray[np.uint8], starts: np.ndarray, ends: np.ndarray
) -> npt.NDArray[np.int8] | None:
    """Index into PLACEMENTS of each row's sensor cell ``raw[start:end]``; None if
    some cell is not a placement name."""
    codes = np.full(starts.size, -1, np.int8)
    lengths = ends - starts
    first_bytes = raw[np.minimum(starts, raw.size - 1)]
    for code, name in enumerate(PLACEMENTS):
        expected = np.frombuffer(name.encode(), np.uint8)
        rows = np.flatnonzero((lengths == expected.size) & (first_bytes == expected[0]))
        if rows.size:
            cells = raw[starts[rows, np.newaxis] + np.arange(expected.size)]
            codes[rows[(cells == expected).all(axis=1)]] = code
    return None if (codes < 0).any() else codes


class CsvRecording(Recording):
    """A CSV recording opened for reading.

    ``placements``: the sensors seen in the first batch (about 50k rows), so a sensor
    must start within it to be announced up front; one that starts later is still
    streamed and added to ``placements`` when first seen.
    """

    kind = "csv"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        batches = self._batches(_Parser(self.path))
        try:
            first = next(batches, [])
        finally:
            batches.close()
        if not first:
            raise RecordingError(self.path, "no samples after the header", line=2)
        self.placements = tuple(chunk.placement for chunk in first)
        last_s = self._last_time()
        if last_s is not None:
            self.duration_s = max(0.0, last_s - min(float(c.t_s[0]) for c in first))

    def chunks(self) -> Iterator[Chunk]:
        for batch in self._batches(_Parser(self.path)):
            for chunk in batch:
                if chunk.placement not in self.placements:
                    self.placements += (chunk.placement,)
                yield chunk

    def _batches(self, parser: _Parser) -> Generator[list[Chunk], None, None]:
        with io_errors(self.path, "read"), open(self.path, "rb") as f:
            self._check_header(f.readline(_MAX_LINE_BYTES))
            line_no, carry = 2, b""
            while block := f.read(BATCH_BYTES):
                data = carry + block if carry else block
                cut = data.rfind(b"\n")
                if cut < 0:
                    if len(data) > _MAX_LINE_BYTES:
                        raise RecordingError(
                            self.path, "line too long (is this a CSV file?)", line=line_no
                        )
                    carry = data
                    continue
                carry = data[cut + 1 :]
                yield parser.parse(data[:cut], line_no, terminated=True)
                line_no += data.count(b"\n", 0, cut) + 1
            if carry.rstrip(b"\r"):
                yield parser.parse(carry, line_no, terminated=False)

    def _last_time(self) -> float | None:
        """Time of the file's last complete row, read from its tail; None if unclear."""
        try:
            with open(self.path, "rb") as f:
                f.seek(max(0, f.seek(0, 2) - _TAIL_BYTES))
                lines = f.read().splitlines()
        except OSError:
            return None
        for line in reversed(lines[1:]):  # lines[0] may be cut at the seek
            cells = line.split(b",")
            if len(cells) == _N_FIELDS:
                try:
                    return float(cells[0])
                except ValueError:
                    return None
        return None

    def _check_header(self, raw: bytes) -> None:
        if not raw:
            raise RecordingError(self.path, f"empty file (expected the header {HEADER!r})", line=1)
        text = raw.decode("utf-8", errors="replace").removeprefix(_BOM).rstrip("\r\n")
        if text == HEADER:
            return
        if not raw.endswith(b"\n") and text and HEADER.startswith(text):
            raise RecordingError(self.path, "truncated: the file ends inside the header", line=1)
        got = text.split(",")
        column = next(
            (j for j, name in enumerate(FIELDS) if j >= len(got) or got[j] != name), len(FIELDS)
        )
        hint = " (is the header line missing?)" if _is_number(got[0]) else ""
        raise RecordingError(
            self.path,
            f"wrong header {text[:100]!r}{hint}; expected {HEADER!r}",
            line=1,
            field=got[column] if column < len(got) else FIELDS[min(column, _N_FIELDS - 1)],
        )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- writer


class CsvWriter(RecordingWriter):
    """Writes the CSV interchange format, rows in time order across sensors.

    Each sensor's chunks arrive in time order but the sensors interleave arbitrarily,
    so rows are buffered per sensor and written up to the earliest "latest time" of
    all sensors seen (no later chunk can precede it), ties in PLACEMENTS order. Memory
    stays bounded as long as every sensor keeps coming; the rest is written on close.
    """

    kind = "csv"
    #: Rows buffered before a merge is attempted: big enough for fast formatting.
    EMIT_ROWS = 50_000

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        with io_errors(self.path, "write"):
            self._f = open(self.path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
            self._f.write(HEADER + "\n")
        self._pending: dict[str, list[Chunk]] = {}
        self._pending_rows = 0
        self._emit_at = self.EMIT_ROWS

    def _write_checked(self, chunk: Chunk) -> None:
        self._pending.setdefault(chunk.placement, []).append(chunk)
        self._pending_rows += len(chunk)
        if self._pending_rows >= self._emit_at:
            self._emit(min(self._last_t.values()))
            # Rows held back by a lagging sensor are re-examined only after as many
            # new rows again arrive: keeps the merging O(n) overall.
            self._emit_at = max(self.EMIT_ROWS, 2 * self._pending_rows)

    def _close(self) -> None:
        try:
            self._emit(math.inf)
            with io_errors(self.path, "write"):
                self._f.flush()
        finally:
            self._f.close()

    def _emit(self, horizon: float) -> None:
        """Write every buffered row with time <= ``horizon``, merged across sensors."""
        ready = []
        self._pending_rows = 0
        for pending in self._pending.values():
            if not pending:
                continue
            whole = pending[0] if len(pending) == 1 else Chunk.concat(pending)
            cut = int(np.searchsorted(whole.t_s, horizon, side="right"))
            if cut:
                ready.append(whole.slice(0, cut))
            pending[:] = [whole.slice(cut, len(whole))] if cut < len(whole) else []
            self._pending_rows += len(whole) - cut
        if ready:
            with io_errors(self.path, "write"):
                self._f.write(format_rows(ready))


def format_rows(parts: list[Chunk]) -> str:
    """CSV rows of ``parts`` (several sensors), sorted by time then PLACEMENTS order.

    All numbers go through one ``str % tuple`` call, which runs the per-value
    formatting in C. A column whose values are exact decimals with k places is
    written with ``%.kf`` (twice as fast as ``repr`` and parses back to the same
    float64); other columns use ``%r``, the shortest text that round-trips.
    """
    n = sum(len(part) for part in parts)
    values = np.zeros((n, 7))
    placement = np.empty(n, np.int8)
    part_of_row = np.empty(n, np.intp)
    start = 0
    for i, part in enumerate(parts):
        rows = slice(start, start + len(part))
        values[rows, 0] = part.t_s
        values[rows, 1:4] = part.acc_mps2
        if part.gyr_dps is not None:
            values[rows, 4:7] = part.gyr_dps
        placement[rows] = PLACEMENTS.index(part.placement)
        part_of_row[rows] = i
        start += len(part)
    order = np.lexsort((placement, values[:, 0]))
    row_formats = np.array([_row_format(part) for part in parts], dtype=object)
    text: str = "".join(row_formats[part_of_row[order]].tolist()) % tuple(
        values[order].ravel().tolist()
    )
    return text


def _row_format(part: Chunk) -> str:
    columns = [part.t_s, *part.acc_mps2.T]
    if part.gyr_dps is not None:
        columns.extend(part.gyr_dps.T)
    specs = [_number_format(np.ascontiguousarray(column)) for column in columns]
    # "%.0s" consumes the placeholder 0.0 of a row without gyroscope and prints
    # nothing, leaving the three gyr cells empty.
    gyro = ",".join(specs[4:]) if part.gyr_dps is not None else "%.0s,%.0s,%.0s"
    return f"{specs[0]},{part.placement},{specs[1]},{specs[2]},{specs[3]},{gyro}\n"


def _number_format(column: FloatArray) -> str:
    k = decimal_places(column)
    return "%r" if k is None else f"%.{k}f"
