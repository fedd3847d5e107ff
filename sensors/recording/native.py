"""hipstride's native recording format: appendable, crash-tolerant, compact, fast.

A file header (magic, version, JSON metadata) is followed by self-framed blocks, each
with its own CRC, so a file cut by a crash or power loss is readable up to the last
complete block and a damaged block costs only itself. The byte layout is specified
in ``docs/formats.md``; keep the two in step.
"""

from __future__ import annotations

import functools
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from sensors.errors import RecordingError
from sensors.model import PLACEMENTS, Chunk, FloatArray
from sensors.recording import RawPacket, Recording, RecordingWriter, io_errors

MAGIC = b"\x89HSTRD\r\n"
VERSION = 1
BLOCK_MARK = b"BK"
BLOCK_CHUNK = 1
BLOCK_RAW = 2
FLAG_ZLIB = 0x01

_FILE_HEAD = struct.Struct("<8sHI")  # magic, version, JSON length
_BLOCK_HEAD = struct.Struct("<2sBBII")  # "BK", type, flags, payload length, CRC32
_CHUNK_PRELUDE = struct.Struct("<BBIB")  # placement, has_gyro, n, device id length
_RAW_PRELUDE = struct.Struct("<dBB")  # arrival_s, placement, protocol length
_COLUMN_ENTRY = struct.Struct("<BBBq")  # codec, k, delta width in bytes, first integer
_TABLES = {n: struct.Struct("<" + "BBBq" * n) for n in (4, 7)}  # 4 or 7 columns

_CODEC_RAW = 0
_CODEC_DECIMAL = 1
_MAX_DECIMALS = 9
# Below 2**52 an integer r is exact in float64 and r / 10**k rounds back to the value
# a decimal text parsed to; above it rint(v * 10**k) may miss the integer.
_MAX_EXACT_INT = 2.0**52
# float(10**k): exact, and the same numbers in the encoder's check and the decoder.
_SCALES = tuple(float(10**k) for k in range(_MAX_DECIMALS + 1))
_SCALE_ARRAY = np.array(_SCALES)
#: Values per column whose decimal places give a first guess for the whole column.
_PLACES_SAMPLE = 16
_DELTA_DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype("<i1"),
    2: np.dtype("<i2"),
    4: np.dtype("<i4"),
    8: np.dtype("<i8"),
}
# Sanity bounds for lengths read from a possibly damaged file.
_MAX_HEADER_BYTES = 1 << 24
_MAX_BLOCK_BYTES = 1 << 28
_RESYNC_WINDOW = 1 << 16
#: CHUNK blocks decoded together; bounds the reader's memory (~32 x 256 samples).
DECODE_BATCH_BLOCKS = 32
_ZLIB_LEVEL = 6


class _Undecodable(Exception):
    """A block whose CRC is right but whose content makes no sense (reported, skipped)."""


def looks_native(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) is, or was meant to be, native.

    A damaged magic (e.g. ``\\r\\n`` turned into ``\\n`` by a text-mode transfer) still
    counts, so the user hears "damaged native file" rather than a CSV complaint.
    """
    if not head:
        return False
    return MAGIC.startswith(head[: len(MAGIC)]) or head[:1] == b"\x89" or b"HSTRD" in head


# --------------------------------------------------------------------------- codecs


def decimal_places(values: FloatArray) -> int | None:
    """Smallest k in 0..9 with ``rint(v * 10**k) / 10**k`` bit-identical to every ``v``.

    Values parsed from decimal text with at most k decimals pass (IEEE division is
    correctly rounded), so a CSV export stores them as small integers. None: some
    value is not such a decimal (full-precision floats, -0.0, NaN).
    """
    k = int(column_places(values.reshape(1, -1))[0])
    return None if k < 0 else k


@np.errstate(over="ignore", invalid="ignore")  # huge values overflow: not decimals
def column_places(columns: FloatArray) -> npt.NDArray[np.int64]:
    """:func:`decimal_places` of each row of ``columns`` (-1 for None), vectorised."""
    columns = np.ascontiguousarray(columns, dtype=np.float64)
    places = _sample_places(columns[:, :_PLACES_SAMPLE])
    bits = columns.view(np.int64)
    todo = np.flatnonzero(places >= 0)
    # If k decimals are exact, so are k + 1 (below 2**52): search upwards from the
    # sample's bound; it is usually right the first time.
    while todo.size:
        scale = _SCALE_ARRAY[places[todo], np.newaxis]
        r = _integers(columns[todo] * scale)
        exact = ((r / scale).view(np.int64) == bits[todo]).all(axis=1)
        exact &= np.abs(r).max(axis=1, initial=0.0) < _MAX_EXACT_INT
        todo = todo[~exact]
        places[todo] += 1
        places[places > _MAX_DECIMALS] = -1
        todo = todo[places[todo] >= 0]
    return places


def _integers(scaled: FloatArray) -> FloatArray:
    """The integers the decimal codec would store, as floats. ``+ 0.0`` turns -0.0
    into 0.0 as the int64 does, so a -0.0 value fails the exactness check (and its
    column is stored raw) instead of coming back as +0.0."""
    return np.rint(scaled) + 0.0


def _sample_places(sample: FloatArray) -> npt.NDArray[np.int64]:
    """Per row, the smallest k that is exact for all of ``sample`` (a lower bound for
    the whole column), all ten candidates tried at once."""
    scale = _SCALE_ARRAY[:, np.newaxis, np.newaxis]
    r = _integers(sample * scale)  # (k, rows, samples)
    exact = (r / scale).view(np.int64) == sample.view(np.int64)
    exact &= np.abs(r) < _MAX_EXACT_INT  # also False for NaN
    fits = exact.all(axis=2)  # (k, rows)
    return np.where(fits.any(axis=0), fits.argmax(axis=0), -1)


def encode_chunk(chunk: Chunk) -> tuple[int, bytes]:
    """``(flags, payload)`` of a CHUNK block.

    The prelude (placement, gyro, count, device) stays uncompressed so a reader can
    list the sensors by reading a few bytes per block, without decompressing. The
    body holds the column table, then each column's data.
    """
    device = chunk.device_id.encode("utf-8")[:255]
    prelude = _CHUNK_PRELUDE.pack(
        PLACEMENTS.index(chunk.placement), chunk.has_gyro, len(chunk), len(device)
    )
    columns = np.empty((7 if chunk.has_gyro else 4, len(chunk)))
    columns[0] = chunk.t_s
    columns[1:4] = chunk.acc_mps2.T
    if chunk.gyr_dps is not None:
        columns[4:7] = chunk.gyr_dps.T
    places = column_places(columns)
    table, data = [], []
    for column, k in zip(columns, places.tolist(), strict=True):
        entry, column_data = _encode_column(column, k)
        table.append(_COLUMN_ENTRY.pack(*entry))
        data.append(column_data)
    body = b"".join(table + data)
    return FLAG_ZLIB, prelude + device + zlib.compress(body, _ZLIB_LEVEL)


def _encode_column(values: FloatArray, k: int) -> tuple[tuple[int, int, int, int], bytes]:
    """``((codec, k, width, first), data)`` of one column with ``k`` decimal places."""
    if k < 0:
        return (_CODEC_RAW, 0, 8, 0), _shuffled(values.astype("<f8"))
    ints = np.rint(values * _SCALES[k]).astype(np.int64)
    deltas = np.diff(ints)
    width = _delta_width(deltas)
    data = _shuffled(deltas.astype(_DELTA_DTYPES[width]))
    return (_CODEC_DECIMAL, k, width, int(ints[0])), data


def _shuffled(values: np.ndarray) -> bytes:
    """Byte planes: plane j holds byte j of every value. The slowly varying high
    bytes (sign and exponent of a float, the mostly 0x00/0xFF top bytes of small
    deltas) sit together, which makes zlib's output ~20% smaller and its
    decompression ~35% faster on IMU data than the plain little-endian bytes."""
    return values.view(np.uint8).reshape(-1, values.itemsize).T.tobytes()


def _delta_width(deltas: npt.NDArray[np.int64]) -> int:
    """Bytes of the narrowest signed integer that holds every delta."""
    if deltas.size == 0:
        return 1
    lo, hi = int(deltas.min()), int(deltas.max())
    for width in (1, 2, 4):
        limit = 1 << (8 * width - 1)
        if -limit <= lo and hi < limit:
            return width
    return 8


@dataclass(frozen=True, slots=True)
class ChunkBlock:
    """A CHUNK block with prelude and column table read, its columns not yet decoded.

    Blocks with the same ``n`` and ``layout`` have their columns at the same places
    and are decoded together (see :func:`decode_blocks`).
    """

    offset: int
    placement: str
    device: str
    n: int
    layout: tuple[tuple[int, int], ...]  # (codec, width) per column
    ks: tuple[int, ...]
    firsts: tuple[int, ...]
    body: bytes  # decompressed: column table, then the columns' data


def parse_chunk_block(offset: int, payload: bytes, flags: int) -> ChunkBlock:
    """Read a CHUNK block's prelude and column table; _Undecodable if inconsistent."""
    if len(payload) < _CHUNK_PRELUDE.size:
        raise _Undecodable("chunk block shorter than its prelude")
    pidx, has_gyro, n, dev_len = _CHUNK_PRELUDE.unpack_from(payload)
    if pidx >= len(PLACEMENTS) or has_gyro > 1 or n == 0:
        raise _Undecodable(f"bad prelude (placement {pidx}, has_gyro {has_gyro}, n {n})")
    start = _CHUNK_PRELUDE.size + dev_len
    device = payload[_CHUNK_PRELUDE.size : start].decode("utf-8", errors="replace")
    body = _body(payload, start, flags)
    table = _TABLES[7 if has_gyro else 4]
    if len(body) < table.size:
        raise _Undecodable("block content shorter than its column table")
    entries = table.unpack_from(body)
    codecs, ks, widths, firsts = entries[0::4], entries[1::4], entries[2::4], entries[3::4]
    layout, size = _layout(n, codecs, ks, widths)
    if size != len(body):
        raise _Undecodable(f"block content is {len(body)} bytes, its columns need {size}")
    return ChunkBlock(offset, PLACEMENTS[pidx], device, n, layout, ks, firsts, body)


@functools.cache
def _layout(
    n: int, codecs: tuple[int, ...], ks: tuple[int, ...], widths: tuple[int, ...]
) -> tuple[tuple[tuple[int, int], ...], int]:
    """``(layout, body size)`` of a column table; cached as blocks repeat a few layouts."""
    size = _COLUMN_ENTRY.size * len(codecs)
    for codec, k, width in zip(codecs, ks, widths, strict=True):
        if codec == _CODEC_DECIMAL and k <= _MAX_DECIMALS and width in _DELTA_DTYPES:
            size += width * (n - 1)
        elif codec == _CODEC_RAW and width == 8:
            size += 8 * n
        else:
            raise _Undecodable(f"bad column (codec {codec}, k {k}, width {width})")
    return tuple(zip(codecs, widths, strict=True)), size


def decode_blocks(blocks: list[ChunkBlock]) -> FloatArray:
    """Samples of blocks that share ``n`` and ``layout``: a (block, sample, column) array.

    One numpy operation per run of alike columns for all the blocks at once (block
    by block, numpy's per-call overhead cost more than the arithmetic), and the
    running sum along the sample axis adds whole rows of columns at a time (along
    the last axis numpy's cumsum is a slow scalar loop).
    """
    first = blocks[0]
    n, n_blocks = first.n, len(blocks)
    rows = np.frombuffer(b"".join(block.body for block in blocks), np.uint8)
    rows = rows.reshape(n_blocks, -1)
    # Float64 throughout: the running sums are the integers r (|r| < 2**52), which
    # float64 adds exactly, and it saves an int64 -> float64 pass.
    values = np.empty((n_blocks, n, len(first.layout)))
    values[:, 0, :] = [block.firsts for block in blocks]
    raw_runs = []
    pos = _TABLES[len(first.layout)].size
    for columns, codec, width in _runs(first.layout):
        count = columns.stop - columns.start
        length = n if codec == _CODEC_RAW else n - 1
        size = count * width * length
        planes = rows[:, pos : pos + size].reshape(n_blocks, count, width, length)
        if codec == _CODEC_RAW:
            raw_runs.append((columns, _unshuffled(planes, np.dtype("<f8"))))
            values[:, :, columns] = 0.0
        else:
            values[:, 1:, columns] = _unshuffled(planes, _DELTA_DTYPES[width]).transpose(0, 2, 1)
        pos += size
    np.cumsum(values, axis=1, out=values)
    scales = _SCALE_ARRAY[np.array([block.ks for block in blocks])]
    np.divide(values, scales[:, np.newaxis, :], out=values)
    for columns, raw in raw_runs:
        values[:, :, columns] = raw.transpose(0, 2, 1)
    return values


def decode_chunk(payload: bytes, flags: int) -> Chunk:
    """The Chunk in one CHUNK block's payload; _Undecodable when it makes no sense."""
    block = parse_chunk_block(0, payload, flags)
    return _chunk_of(block, decode_blocks([block])[0])


def _chunk_of(block: ChunkBlock, samples: FloatArray) -> Chunk:
    """The Chunk of one block's (sample, column) array, with C-contiguous arrays as
    every other source produces."""
    gyr = samples[:, 4:7].copy() if samples.shape[1] == 7 else None
    return Chunk(block.placement, samples[:, 0].copy(), samples[:, 1:4].copy(), gyr, block.device)


def _unshuffled(planes: npt.NDArray[np.uint8], dtype: np.dtype[Any]) -> np.ndarray:
    """Undo the byte shuffle: (block, column, plane, i) bytes -> (block, column, i)
    values. One strided copy per plane: three times faster than a 4-d transpose."""
    *lead, width, length = planes.shape
    out = np.empty((*lead, length, width), np.uint8)
    for j in range(width):
        out[..., j] = planes[..., j, :]
    return out.view(dtype)[..., 0]


@functools.cache
def _runs(layout: tuple[tuple[int, int], ...]) -> list[tuple[slice, int, int]]:
    """``(columns, codec, width)`` for each run of consecutive alike columns."""
    runs: list[tuple[slice, int, int]] = []
    for j, (codec, width) in enumerate(layout):
        if runs and runs[-1][1:] == (codec, width):
            runs[-1] = (slice(runs[-1][0].start, j + 1), codec, width)
        else:
            runs.append((slice(j, j + 1), codec, width))
    return runs


def _body(payload: bytes, start: int, flags: int) -> bytes:
    if not flags & FLAG_ZLIB:
        return payload[start:]
    try:
        return zlib.decompress(memoryview(payload)[start:])
    except zlib.error as err:
        raise _Undecodable(f"cannot decompress: {err}") from None


def encode_raw(arrival_s: float, placement: str, protocol: str, data: bytes) -> bytes:
    name = protocol.encode("ascii")
    if len(name) > 255:
        raise ValueError("protocol name longer than 255 bytes")
    prelude = _RAW_PRELUDE.pack(arrival_s, PLACEMENTS.index(placement), len(name))
    return prelude + name + struct.pack("<I", len(data)) + data


def decode_raw(payload: bytes, flags: int) -> RawPacket:
    body = _body(payload, 0, flags)
    try:
        arrival_s, pidx, name_len = _RAW_PRELUDE.unpack_from(body)
        pos = _RAW_PRELUDE.size + name_len
        protocol = body[_RAW_PRELUDE.size : pos].decode("ascii")
        (size,) = struct.unpack_from("<I", body, pos)
    except (struct.error, UnicodeDecodeError) as err:
        raise _Undecodable(f"bad raw packet block: {err}") from None
    data = body[pos + 4 : pos + 4 + size]
    if pidx >= len(PLACEMENTS) or len(data) != size:
        raise _Undecodable("bad raw packet block (placement or length)")
    return arrival_s, PLACEMENTS[pidx], protocol, data


# --------------------------------------------------------------------------- framing


def _read_file_header(f: IO[bytes], path: Path) -> tuple[dict[str, Any], int]:
    """``(meta, offset of the first block)``; RecordingError when unusable."""
    head = f.read(_FILE_HEAD.size)
    if not head:
        raise RecordingError(path, "empty file", offset=0)
    if not MAGIC.startswith(head[: len(MAGIC)]):
        damaged = (
            f"damaged magic bytes {head[: len(MAGIC)]!r} (expected {MAGIC!r}; copied in text mode?)"
            if looks_native(head)
            else f"it starts with {head[: len(MAGIC)]!r}"
        )
        raise RecordingError(path, f"not a hipstride native file: {damaged}", offset=0)
    if len(head) < _FILE_HEAD.size:
        raise RecordingError(path, "truncated file header", offset=len(head))
    _, version, size = _FILE_HEAD.unpack(head)
    if version != VERSION:
        raise RecordingError(
            path,
            f"unsupported native format version {version} (this hipstride reads {VERSION})",
            offset=len(MAGIC),
        )
    if size > _MAX_HEADER_BYTES:
        raise RecordingError(path, f"implausible header length {size}", offset=len(MAGIC) + 2)
    text = f.read(size)
    if len(text) < size:
        raise RecordingError(path, "truncated file header", offset=_FILE_HEAD.size + len(text))
    try:
        meta = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RecordingError(
            path, f"file header is not valid JSON: {err}", offset=_FILE_HEAD.size
        ) from None
    if not isinstance(meta, dict):
        raise RecordingError(path, "file header is not a JSON object", offset=_FILE_HEAD.size)
    return meta, _FILE_HEAD.size + size


def _file_size(f: IO[bytes]) -> int:
    return os.fstat(f.fileno()).st_size


def _parse_head(head: bytes, pos: int, size: int) -> tuple[int, int, int, int] | None:
    """``(type, flags, length, crc)`` when ``head`` frames a block that fits the file."""
    if len(head) < _BLOCK_HEAD.size:
        return None
    mark, btype, flags, length, crc = _BLOCK_HEAD.unpack_from(head)
    if mark != BLOCK_MARK or flags & ~FLAG_ZLIB or length > _MAX_BLOCK_BYTES:
        return None
    if pos + _BLOCK_HEAD.size + length > size:
        return None
    return btype, flags, length, crc


def _valid_block_at(f: IO[bytes], pos: int, size: int) -> bool:
    f.seek(pos)
    framed = _parse_head(f.read(_BLOCK_HEAD.size), pos, size)
    if framed is None:
        return False
    _, _, length, crc = framed
    return zlib.crc32(f.read(length)) == crc


def _find_block(f: IO[bytes], start: int, size: int) -> int | None:
    """Offset of the first valid block (framing and CRC) at or after ``start``.

    A CRC32 match by chance is a 1 in 4 billion event, so "BK" bytes inside a
    damaged payload are not mistaken for a block.
    """
    window_start = start
    while window_start < size:
        f.seek(window_start)
        window = f.read(_RESYNC_WINDOW + 1)  # +1: a mark straddling the window edge
        i = window.find(BLOCK_MARK)
        while i >= 0:
            if _valid_block_at(f, window_start + i, size):
                return window_start + i
            i = window.find(BLOCK_MARK, i + 1)
        window_start += _RESYNC_WINDOW
    return None


# --------------------------------------------------------------------------- reader


class NativeRecording(Recording):
    """A native file opened for reading; see the module docstring."""

    kind = "native"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        with self._open() as f:
            self.meta, self._data_start = _read_file_header(f, self.path)
            self.placements, first, last = self._scan_placements(f)
            self.duration_s = _time_span(f, first, last)

    def _open(self) -> IO[bytes]:
        with io_errors(self.path, "read"):
            return open(self.path, "rb")

    def _scan_placements(self, f: IO[bytes]) -> tuple[tuple[str, ...], int | None, int | None]:
        """Sensors in file order, from block preludes: seeks over payloads, no zlib.
        Also the offsets of the first and last CHUNK blocks (for ``duration_s``)."""
        size = _file_size(f)
        found: list[str] = []
        first = last = None
        pos, previous = self._data_start, None
        while pos < size:
            f.seek(pos)
            head = f.read(_BLOCK_HEAD.size + 1)
            framed = _parse_head(head, pos, size)
            if framed is None:
                # The previous block's length may be the damaged part, so search from
                # just after its start. Terminates: ``previous`` only ever grows.
                nxt = _find_block(f, (pos if previous is None else previous) + 1, size)
                if nxt is None:
                    break
                pos = nxt
                continue
            btype, _, length, _ = framed
            end = pos + _BLOCK_HEAD.size + length
            if btype == BLOCK_CHUNK:
                first = pos if first is None else first
                last = pos
            if btype == BLOCK_CHUNK and len(head) > _BLOCK_HEAD.size:
                pidx = head[_BLOCK_HEAD.size]
                # A sensor seen for the first time: make sure the byte is not damage.
                new = pidx < len(PLACEMENTS) and PLACEMENTS[pidx] not in found
                if new and _valid_block_at(f, pos, size):
                    found.append(PLACEMENTS[pidx])
            previous, pos = pos, end
        return tuple(found), first, last

    def chunks(self) -> Iterator[Chunk]:
        # Blocks are decoded in batches (see decode_blocks); the sensors' order in
        # time is checked here because a damaged-but-CRC-valid file could break it.
        sequence = _SequenceCheck()
        batch: list[ChunkBlock] = []
        for pos, btype, flags, payload in self._blocks():
            if btype == BLOCK_CHUNK:
                try:
                    batch.append(parse_chunk_block(pos, payload, flags))
                except _Undecodable as err:
                    self._warn(f"{self.path}: byte {pos}: skipped an undecodable block ({err})")
                if len(batch) >= DECODE_BATCH_BLOCKS:
                    yield from self._decode_batch(batch, sequence)
                    batch = []
            elif btype != BLOCK_RAW:
                self._warn(f"{self.path}: byte {pos}: skipped a block of unknown type {btype}")
        yield from self._decode_batch(batch, sequence)

    def _decode_batch(self, batch: list[ChunkBlock], sequence: _SequenceCheck) -> Iterator[Chunk]:
        """Decode ``batch``; yield one chunk per run of blocks of one sensor and device."""
        runs: dict[str, list[tuple[ChunkBlock, FloatArray]]] = {}
        for block, samples, increasing in _decode_all(batch):
            problem = sequence.problem(block, samples, increasing)
            if problem:
                self._warn(f"{self.path}: byte {block.offset}: skipped a block of {problem}")
                continue
            run = runs.setdefault(block.placement, [])
            if run and run[0][0].device != block.device:
                yield self._joined(run)
                run.clear()
            run.append((block, samples))
        for run in runs.values():
            if run:
                yield self._joined(run)

    def _joined(self, run: list[tuple[ChunkBlock, FloatArray]]) -> Chunk:
        """One chunk of consecutive blocks of one sensor (contiguous arrays)."""
        block = run[0][0]
        if block.placement not in self.placements:  # the scan missed it (damage)
            self.placements += (block.placement,)
        if len(run) == 1:
            return _chunk_of(block, run[0][1])
        t = np.concatenate([samples[:, 0] for _, samples in run])
        acc = np.concatenate([samples[:, 1:4] for _, samples in run])
        has_gyro = run[0][1].shape[1] == 7
        gyr = np.concatenate([samples[:, 4:7] for _, samples in run]) if has_gyro else None
        return Chunk(block.placement, t, acc, gyr, block.device)

    def raw_packets(self) -> Iterator[RawPacket]:
        for pos, btype, flags, payload in self._blocks():
            if btype != BLOCK_RAW:
                continue
            try:
                yield decode_raw(payload, flags)
            except _Undecodable as err:
                self._warn(f"{self.path}: byte {pos}: skipped an undecodable block ({err})")

    def _blocks(self) -> Iterator[tuple[int, int, int, bytes]]:
        """``(offset, type, flags, payload)`` of every block whose CRC is right.

        Damage is skipped with a warning by searching for the next valid block; a
        torn last block (crash while writing) ends the stream with a warning.
        """
        with self._open() as f:
            size = _file_size(f)
            pos = self._data_start
            f.seek(pos)
            blocks = samples = 0
            while pos < size:
                head = f.read(_BLOCK_HEAD.size)
                framed = _parse_head(head, pos, size)
                payload = b""
                if framed is not None:
                    payload = f.read(framed[2])
                    if zlib.crc32(payload) != framed[3]:
                        framed = None
                if framed is None:
                    nxt = _find_block(f, pos + 1, size)
                    if nxt is None:
                        self._warn(self._tail_message(head, pos, size, blocks, samples))
                        return
                    self._warn(
                        f"{self.path}: byte {pos}: skipped {nxt - pos} damaged bytes (bad "
                        f"block framing or CRC); reading resumed at byte {nxt}"
                    )
                    pos = nxt
                    f.seek(pos)
                    continue
                btype, flags, length, _ = framed
                yield pos, btype, flags, payload
                blocks += 1
                if btype == BLOCK_CHUNK and length >= _CHUNK_PRELUDE.size:
                    samples += _CHUNK_PRELUDE.unpack_from(payload)[2]
                pos += _BLOCK_HEAD.size + length

    def _tail_message(self, head: bytes, pos: int, size: int, blocks: int, samples: int) -> str:
        torn = len(head) < _BLOCK_HEAD.size or head[:2] == BLOCK_MARK
        what = (
            "the file ends inside a block (cut off by a crash or power loss?)"
            if torn
            else "damaged bytes at the end of the file"
        )
        return (
            f"{self.path}: byte {pos}: {what}; recovered {samples} samples in {blocks} "
            f"complete blocks before it, lost the last {size - pos} bytes"
        )


def _time_span(f: IO[bytes], first: int | None, last: int | None) -> float | None:
    """From the first sample of the first block to the last of the last block."""
    if first is None or last is None:
        return None
    try:
        start = decode_chunk(*_read_block(f, first)).t_s[0]
        end = decode_chunk(*_read_block(f, last)).t_s[-1]
    except _Undecodable:
        return None
    return max(0.0, float(end - start))


def _read_block(f: IO[bytes], pos: int) -> tuple[bytes, int]:
    """``(payload, flags)`` of the block at ``pos``; _Undecodable if its CRC is wrong."""
    f.seek(pos)
    _, _, flags, length, crc = _BLOCK_HEAD.unpack(f.read(_BLOCK_HEAD.size))
    payload = f.read(length)
    if zlib.crc32(payload) != crc:
        raise _Undecodable("bad CRC")
    return payload, flags


def _decode_all(batch: list[ChunkBlock]) -> list[tuple[ChunkBlock, FloatArray, bool]]:
    """Every block of ``batch`` in file order, with its (sample, column) values and
    whether its times increase, decoded group by group of alike blocks."""
    groups: dict[tuple[int, tuple[tuple[int, int], ...]], list[int]] = {}
    for i, block in enumerate(batch):
        groups.setdefault((block.n, block.layout), []).append(i)
    decoded: dict[int, tuple[ChunkBlock, FloatArray, bool]] = {}
    for indices in groups.values():
        values = decode_blocks([batch[i] for i in indices])
        t = values[:, :, 0]
        increasing = np.all(t[:, 1:] > t[:, :-1], axis=1).tolist()
        for i, block_values, ok in zip(indices, values, increasing, strict=True):
            decoded[i] = (batch[i], block_values, ok)
    return [decoded[i] for i in range(len(batch))]


class _SequenceCheck:
    """Per sensor: time strictly increasing across blocks, gyroscope always or never."""

    def __init__(self) -> None:
        self.last_t: dict[str, float] = {}
        self.n_columns: dict[str, int] = {}

    def problem(self, block: ChunkBlock, samples: FloatArray, increasing: bool) -> str | None:
        n_columns = samples.shape[1]
        name = block.placement
        if n_columns != self.n_columns.setdefault(name, n_columns):
            return f"'{name}' whose gyroscope comes and goes"
        previous = self.last_t.get(name)
        if not increasing or (previous is not None and not samples[0, 0] > previous):
            return f"'{name}' whose samples are out of time order"
        self.last_t[name] = float(samples[-1, 0])
        return None


# --------------------------------------------------------------------------- writer


def _software() -> str:
    try:
        return f"hipstride {metadata.version('hipstride')}"
    except metadata.PackageNotFoundError:
        return "hipstride (not installed)"


class NativeWriter(RecordingWriter):
    """Writes a native file block by block; see the module docstring.

    Each sensor's samples are buffered and written as one block every
    ``block_samples`` samples (and on ``close``), followed by a ``flush`` so that a
    crashed process loses at most the blocks still being filled. ``fsync_every_s``
    (seconds of recorded data, not of wall clock) bounds what a power loss can take;
    None: only on close.
    """

    kind = "native"

    def __init__(
        self,
        path: str | Path,
        meta: dict[str, Any] | None = None,
        *,
        append: bool = False,
        block_samples: int = 256,
        fsync_every_s: float | None = 5.0,
    ) -> None:
        super().__init__(path)
        if block_samples < 1:
            raise ValueError("block_samples must be >= 1")
        self._block_samples = block_samples
        self._fsync_every_s = fsync_every_s
        self._synced_until_s: float | None = None
        self._pending: dict[str, list[Chunk]] = {}
        self._pending_n: dict[str, int] = {}
        resume = append and self.path.exists() and self.path.stat().st_size > 0
        self._f = self._reopen(meta) if resume else self._create(meta)

    # -- opening

    def _create(self, meta: dict[str, Any] | None) -> IO[bytes]:
        header = {
            "software": _software(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **(meta or {}),
        }
        try:
            text = json.dumps(header, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as err:
            raise RecordingError(self.path, f"metadata is not JSON-serialisable: {err}") from None
        with io_errors(self.path, "write"):
            f = open(self.path, "wb")  # noqa: SIM115 (open until close())
            f.write(_FILE_HEAD.pack(MAGIC, VERSION, len(text)) + text)
            f.flush()
        return f

    def _reopen(self, meta: dict[str, Any] | None) -> IO[bytes]:
        """Continue an existing file: check it, drop a torn last block, learn each
        sensor's last time so the appended samples continue it."""
        existing = NativeRecording(self.path)
        _check_meta(self.path, existing.meta, meta)
        end = existing._data_start
        last: dict[int, tuple[bytes, int]] = {}
        for pos, btype, flags, payload in existing._blocks():
            end = pos + _BLOCK_HEAD.size + len(payload)
            if btype == BLOCK_CHUNK and payload:
                last[payload[0]] = (payload, flags)
        self.warnings.extend(existing.warnings)
        for payload, flags in last.values():
            try:
                chunk = decode_chunk(payload, flags)
            except _Undecodable:
                continue
            self._last_t[chunk.placement] = float(chunk.t_s[-1])
            self._has_gyro[chunk.placement] = chunk.has_gyro
        with io_errors(self.path, "append to"):
            f = open(self.path, "r+b")  # noqa: SIM115 (open until close())
            size = _file_size(f)
            if end < size:
                f.truncate(end)
                self.warnings.append(
                    f"{self.path}: byte {end}: removed {size - end} bytes of a torn or "
                    "damaged block before appending"
                )
            f.seek(end)
        return f

    # -- writing

    def _write_checked(self, chunk: Chunk) -> None:
        p = chunk.placement
        pending = self._pending.setdefault(p, [])
        if pending and pending[0].device_id != chunk.device_id:
            self._flush_sensor(p)  # one device id per block
        pending.append(chunk)
        self._pending_n[p] = self._pending_n.get(p, 0) + len(chunk)
        if self._pending_n[p] < self._block_samples:
            return
        # Concatenate only once a block is full: tiny chunks stay O(n) overall.
        whole = pending[0] if len(pending) == 1 else Chunk.concat(pending)
        full = len(whole) // self._block_samples * self._block_samples
        for start in range(0, full, self._block_samples):
            self._write_chunk_block(whole.slice(start, start + self._block_samples))
        rest = whole.slice(full, len(whole))
        # Copy the remainder so a huge input chunk is not kept alive by a small view.
        pending[:] = [_copy(rest)] if len(rest) else []
        self._pending_n[p] = len(rest)

    def _flush_sensor(self, placement: str) -> None:
        pending = self._pending.get(placement)
        if pending:
            self._write_chunk_block(pending[0] if len(pending) == 1 else Chunk.concat(pending))
        self._pending[placement] = []
        self._pending_n[placement] = 0

    def _write_chunk_block(self, chunk: Chunk) -> None:
        flags, payload = encode_chunk(chunk)
        self._write_block(BLOCK_CHUNK, flags, payload)
        end_s = float(chunk.t_s[-1])
        every = self._fsync_every_s
        if every is not None and (
            self._synced_until_s is None or end_s - self._synced_until_s >= every
        ):
            with io_errors(self.path, "write"):
                os.fsync(self._f.fileno())
            self._synced_until_s = end_s

    def _write_block(self, btype: int, flags: int, payload: bytes) -> None:
        head = _BLOCK_HEAD.pack(BLOCK_MARK, btype, flags, len(payload), zlib.crc32(payload))
        # One write, then flush: a crash tears at most the block being written.
        with io_errors(self.path, "write"):
            self._f.write(head + payload)
            self._f.flush()

    def write_raw(self, arrival_s: float, placement: str, protocol: str, data: bytes) -> None:
        if self._closed:
            raise RecordingError(self.path, "cannot write: the writer is closed")
        if placement not in PLACEMENTS:
            raise RecordingError(
                self.path, f"unknown placement {placement!r} (valid: {', '.join(PLACEMENTS)})"
            )
        try:
            payload = encode_raw(float(arrival_s), placement, protocol, bytes(data))
        except (ValueError, UnicodeEncodeError) as err:
            raise RecordingError(self.path, f"bad raw packet: {err}", field="protocol") from None
        # Raw packets are a few dozen bytes: zlib would only make them larger.
        self._write_block(BLOCK_RAW, 0, payload)

    def _close(self) -> None:
        try:
            for placement in PLACEMENTS:
                self._flush_sensor(placement)
            with io_errors(self.path, "write"):
                self._f.flush()
                os.fsync(self._f.fileno())
        finally:
            self._f.close()


def _copy(chunk: Chunk) -> Chunk:
    gyr = None if chunk.gyr_dps is None else chunk.gyr_dps.copy()
    return Chunk(chunk.placement, chunk.t_s.copy(), chunk.acc_mps2.copy(), gyr, chunk.device_id)


def _check_meta(path: Path, stored: dict[str, Any], meta: dict[str, Any] | None) -> None:
    """Appending cannot rewrite the header: refuse metadata that contradicts it."""
    for key, value in (meta or {}).items():
        try:
            same = json.loads(json.dumps(value)) == stored.get(key)
        except (TypeError, ValueError):
            same = False
        if not same:
            raise RecordingError(
                path,
                f"cannot append with metadata {key}={value!r}: the file has "
                f"{stored.get(key)!r} and its header cannot be rewritten",
            )
