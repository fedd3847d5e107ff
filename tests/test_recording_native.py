"""The native block format: exact round trips, compactness, crash and damage
tolerance, appending, raw packets and clear errors for files it cannot read."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import RecordingError
from sensors.model import Chunk
from sensors.recording import native, open_recording, open_writer, write_recording
from tests.helpers import rechunk
from tests.test_recording_csv import assert_same_samples, make_chunks, per_sensor, read_all

BLOCK_HEAD = struct.Struct("<2sBBII")


def block_offsets(path: Path) -> list[tuple[int, int, int]]:
    """``(offset, type, total size)`` of every block, walking the framing."""
    data = path.read_bytes()
    _, _, header_len = struct.unpack_from("<8sHI", data)
    pos, out = 14 + header_len, []
    while pos < len(data):
        mark, btype, _, length, _ = BLOCK_HEAD.unpack_from(data, pos)
        assert mark == b"BK"
        out.append((pos, btype, BLOCK_HEAD.size + length))
        pos += BLOCK_HEAD.size + length
    return out


def samples_in(chunks: list[Chunk]) -> int:
    return sum(len(c) for c in chunks)


def chunk_blocks(path: Path) -> list[Chunk]:
    """Every CHUNK block of an intact file, decoded on its own, in file order."""
    data = path.read_bytes()
    return [
        native.decode_chunk(data[pos + BLOCK_HEAD.size : pos + size], data[pos + 3])
        for pos, btype, size in block_offsets(path)
        if btype == native.BLOCK_CHUNK
    ]


def assert_all_but(got: list[Chunk], path: Path, lost: int) -> None:
    """``got`` holds exactly the blocks of intact ``path`` except block ``lost``."""
    blocks = chunk_blocks(path)
    assert_same_samples(per_sensor(got), blocks[:lost] + blocks[lost + 1 :])


# --- round trips and size ------------------------------------------------------------


@pytest.mark.parametrize("decimals", [4, 6, None])
def test_write_then_read_is_bit_exact(tmp_path: Path, decimals: int | None) -> None:
    chunks = make_chunks(decimals=decimals)
    path = tmp_path / "run.hsr"
    write_recording(path, rechunk(chunks, 50), meta={"runner": "ana", "shoe": "x"})
    rec = open_recording(path)
    assert rec.kind == "native"
    assert rec.placements == ("pelvis", "left_foot", "right_foot", "chest")
    assert rec.meta["runner"] == "ana" and rec.meta["software"].startswith("hipstride")
    assert "created" in rec.meta
    got = list(rec.chunks())
    assert_same_samples(per_sensor(got), chunks)
    assert {c.device_id for c in got} == {f"dev-{c.placement}" for c in chunks}
    assert rec.warnings == []
    assert rec.duration_s == pytest.approx(20.0, abs=0.01)


def test_negative_zero_huge_and_tiny_values_survive(tmp_path: Path) -> None:
    t = np.array([0.0, 0.005, 0.01, 0.015])
    acc = np.array([[-0.0, 1e-7, 1e16], [0.1, -2.5e-5, 123456.789], [3.0, 5.0, 7.0], [0, 0, 0]])
    gyr = np.array([[1 / 3, -0.0, 2000.0], [0.0, 1e-300, -1e300], [1, 2, 3], [4, 5, 6]])
    chunk = Chunk("pelvis", t, acc, gyr.astype(float))
    write_recording(tmp_path / "odd.hsr", [chunk])
    assert_same_samples(read_all(tmp_path / "odd.hsr"), [chunk])


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_input_chunking_does_not_change_the_samples(tmp_path: Path, size: int) -> None:
    chunks = make_chunks(duration_s=4.0)
    write_recording(tmp_path / "r.hsr", rechunk(chunks, size))
    assert_same_samples(read_all(tmp_path / "r.hsr"), chunks)


def test_csv_native_csv_and_native_csv_native_are_bit_exact(tmp_path: Path) -> None:
    for decimals in (4, None):
        chunks = make_chunks(duration_s=5.0, decimals=decimals, seed=decimals or 9)
        write_recording(tmp_path / "a.csv", chunks)
        write_recording(tmp_path / "b.hsr", open_recording(tmp_path / "a.csv").chunks())
        write_recording(tmp_path / "c.csv", open_recording(tmp_path / "b.hsr").chunks())
        assert_same_samples(read_all(tmp_path / "c.csv"), chunks)
        write_recording(tmp_path / "d.hsr", open_recording(tmp_path / "c.csv").chunks())
        assert_same_samples(read_all(tmp_path / "d.hsr"), chunks)


def test_native_is_much_smaller_than_csv_for_4_decimal_data(tmp_path: Path) -> None:
    chunks = make_chunks(duration_s=60.0, decimals=4)
    write_recording(tmp_path / "r.csv", chunks)
    write_recording(tmp_path / "r.hsr", chunks)
    ratio = (tmp_path / "r.hsr").stat().st_size / (tmp_path / "r.csv").stat().st_size
    print(f"native / CSV size for 4-decimal data: {100 * ratio:.1f}%")
    assert ratio < 0.35


def test_recognised_by_content_whatever_the_name(tmp_path: Path) -> None:
    chunks = make_chunks(duration_s=1.0)
    write_recording(tmp_path / "looks.csv", chunks, kind="native")
    assert (tmp_path / "looks.csv").read_bytes().startswith(native.MAGIC)
    rec = open_recording(tmp_path / "looks.csv")
    assert rec.kind == "native"
    assert_same_samples(per_sensor(rec.chunks()), chunks)


def test_blocks_hold_block_samples_per_sensor(tmp_path: Path) -> None:
    chunk = make_chunks(duration_s=1.0, sensors=("pelvis",))[0]  # 200 samples
    with open_writer(tmp_path / "b.hsr", block_samples=64) as writer:
        writer.write(chunk)
    sizes = [len(c) for c in native.NativeRecording(tmp_path / "b.hsr").chunks()]
    assert samples_in_blocks(tmp_path / "b.hsr") == [64, 64, 64, 8]
    assert sum(sizes) == 200


def samples_in_blocks(path: Path) -> list[int]:
    data = path.read_bytes()
    return [
        struct.unpack_from("<I", data, pos + BLOCK_HEAD.size + 2)[0]
        for pos, btype, _ in block_offsets(path)
        if btype == native.BLOCK_CHUNK
    ]


# --- the decimal codec ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "places"),
    [
        ([0.0, 1.0, -3.0], 0),
        ([0.1, 0.25, -7.125], 3),
        ([9.80665, 0.00001], 5),
        ([1e-9, 2e-9], 9),
        ([1 / 3], None),
        ([0.1, -0.0], None),  # -0.0 would come back as +0.0
        ([1e300], None),
        ([float("nan")], None),
        ([123456789.123], 3),
    ],
)
def test_decimal_places(values: list[float], places: int | None) -> None:
    assert native.decimal_places(np.array(values)) == places


def test_each_column_picks_its_codec(tmp_path: Path) -> None:
    n = 300
    t = np.arange(n) / 200
    acc = np.column_stack([np.round(np.sin(t), 3), np.sin(t) / 3, np.full(n, 9.81)])
    chunk = Chunk("chest", t, acc)
    write_recording(tmp_path / "mix.hsr", [chunk])
    assert_same_samples(read_all(tmp_path / "mix.hsr"), [chunk])


# --- crashes and damage ----------------------------------------------------------------


def written(tmp_path: Path, seconds: float = 6.0) -> tuple[Path, list[Chunk]]:
    chunks = make_chunks(duration_s=seconds, sensors=("pelvis", "left_foot", "chest"))
    path = tmp_path / "crash.hsr"
    write_recording(path, rechunk(chunks, 20))
    return path, chunks


def test_truncated_last_block_keeps_every_complete_block(tmp_path: Path) -> None:
    path, _ = written(tmp_path)
    data = path.read_bytes()
    last, _, size = block_offsets(path)[-1]
    complete = open_recording(path)
    full = list(complete.chunks())
    last_block_samples = samples_in_blocks(path)[-1]
    for cut in (last + 1, last + 5, last + 12, last + 13, last + size // 2, last + size - 1):
        (tmp_path / "cut.hsr").write_bytes(data[:cut])
        rec = open_recording(tmp_path / "cut.hsr")
        got = list(rec.chunks())
        assert samples_in(got) == samples_in(full) - last_block_samples, cut
        assert_all_but(got, path, len(chunk_blocks(path)) - 1)
        assert len(rec.warnings) == 1
        warning = rec.warnings[0]
        assert str(tmp_path / "cut.hsr") in warning and f"byte {last}:" in warning
        assert "ends inside a block" in warning and "recovered" in warning
        assert f"lost the last {cut - last} bytes" in warning


def test_file_cut_right_after_a_block_or_the_header_is_fine(tmp_path: Path) -> None:
    path, _ = written(tmp_path)
    data = path.read_bytes()
    first, _, _ = block_offsets(path)[0]
    (tmp_path / "head.hsr").write_bytes(data[:first])
    rec = open_recording(tmp_path / "head.hsr")
    assert rec.placements == () and list(rec.chunks()) == [] and rec.warnings == []


def test_damaged_middle_block_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    path, chunks = written(tmp_path)
    blocks = block_offsets(path)
    pos, _, size = blocks[5]
    data = bytearray(path.read_bytes())
    data[pos + size // 2] ^= 0xFF  # one flipped bit-pattern inside the payload
    (tmp_path / "bad.hsr").write_bytes(bytes(data))
    rec = open_recording(tmp_path / "bad.hsr")
    got = list(rec.chunks())
    assert samples_in(got) == samples_in(chunks) - samples_in_blocks(path)[5]
    assert_all_but(got, path, 5)  # everything before and after it, bit-exact
    assert len(rec.warnings) == 1 and f"byte {pos}: skipped {size} damaged bytes" in rec.warnings[0]


def test_damaged_block_length_is_resynchronised(tmp_path: Path) -> None:
    path, chunks = written(tmp_path)
    pos, _, _ = block_offsets(path)[3]
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, pos + 4, 10**6)  # length field now points past the end
    (tmp_path / "len.hsr").write_bytes(bytes(data))
    rec = open_recording(tmp_path / "len.hsr")
    assert rec.placements == ("pelvis", "left_foot", "chest")
    got = list(rec.chunks())
    assert samples_in(got) == samples_in(chunks) - samples_in_blocks(path)[3]
    assert_all_but(got, path, 3)
    assert "damaged bytes" in rec.warnings[0]


def test_garbage_between_blocks_is_skipped(tmp_path: Path) -> None:
    path, chunks = written(tmp_path)
    pos, _, _ = block_offsets(path)[2]
    data = path.read_bytes()
    junk = b"BK\x01\x01junk that looks like a block" * 3
    (tmp_path / "junk.hsr").write_bytes(data[:pos] + junk + data[pos:])
    rec = open_recording(tmp_path / "junk.hsr")
    assert samples_in(list(rec.chunks())) == samples_in(chunks)
    assert f"skipped {len(junk)} damaged bytes" in rec.warnings[0]


def test_valid_crc_but_nonsense_content_is_skipped(tmp_path: Path) -> None:
    path, chunks = written(tmp_path)
    pos, _, size = block_offsets(path)[1]
    data = path.read_bytes()
    payload = b"\x00\x01" + struct.pack("<I", 5) + b"\x00" + zlib.compress(b"nonsense")
    block = BLOCK_HEAD.pack(b"BK", 1, 1, len(payload), zlib.crc32(payload)) + payload
    (tmp_path / "odd.hsr").write_bytes(data[:pos] + block + data[pos + size :])
    rec = open_recording(tmp_path / "odd.hsr")
    got = list(rec.chunks())
    assert samples_in(got) == samples_in(chunks) - samples_in_blocks(path)[1]
    assert_all_but(got, path, 1)
    assert "undecodable block" in rec.warnings[0]


def test_blocks_that_break_a_sensors_sequence_are_skipped(tmp_path: Path) -> None:
    # Well-formed blocks (right CRC) spliced from other files: one goes back in
    # time, one drops the gyroscope. Both are skipped; what follows is kept.
    pelvis = make_chunks(duration_s=3.0, sensors=("pelvis",))[0]
    parts = {
        "a": pelvis.slice(0, 256),
        "back": pelvis.slice(100, 356),
        "no_gyro": Chunk("pelvis", pelvis.t_s[256:300], pelvis.acc_mps2[256:300]),
        "b": pelvis.slice(300, 600),
    }
    blocks = {}
    for name, chunk in parts.items():
        write_recording(tmp_path / f"{name}.hsr", [chunk])
        pos, _, _ = block_offsets(tmp_path / f"{name}.hsr")[0]
        blocks[name] = (tmp_path / f"{name}.hsr").read_bytes()[pos:]
    head = (tmp_path / "a.hsr").read_bytes()[: block_offsets(tmp_path / "a.hsr")[0][0]]
    spliced = head + blocks["a"] + blocks["back"] + blocks["no_gyro"] + blocks["b"]
    (tmp_path / "spliced.hsr").write_bytes(spliced)
    rec = open_recording(tmp_path / "spliced.hsr")
    got = per_sensor(rec.chunks())
    assert_same_samples(got, [parts["a"], parts["b"]])
    assert len(rec.warnings) == 2
    assert "'pelvis' whose samples are out of time order" in rec.warnings[0]
    assert "'pelvis' whose gyroscope comes and goes" in rec.warnings[1]


def test_append_after_a_crash(tmp_path: Path) -> None:
    chunks = make_chunks(duration_s=8.0, sensors=("pelvis", "chest"))
    first = [c.slice(0, 1000) for c in chunks]
    second = [c.slice(1000, len(c)) for c in chunks]
    path = tmp_path / "live.hsr"
    write_recording(path, first, meta={"session": 7})
    # A crash while writing one more block: a torn block at the end.
    data = path.read_bytes()
    last, _, size = block_offsets(path)[-1]
    torn = data + data[last : last + size // 2]
    path.write_bytes(torn)
    with open_writer(path, "native", meta={"session": 7}, append=True) as writer:
        assert any("removed" in w for w in writer.warnings)
        for chunk in second:
            writer.write(chunk)
    rec = open_recording(path)
    assert rec.meta["session"] == 7
    assert_same_samples(per_sensor(rec.chunks()), chunks)
    assert rec.warnings == []


def test_append_continues_each_sensors_time(tmp_path: Path) -> None:
    chunk = make_chunks(duration_s=2.0, sensors=("pelvis",))[0]
    path = tmp_path / "a.hsr"
    write_recording(path, [chunk.slice(0, 300)])
    with (
        open_writer(path, append=True) as writer,
        pytest.raises(RecordingError, match="not after the previous sample"),
    ):
        writer.write(chunk.slice(100, 200))
    with pytest.raises(RecordingError, match="cannot append with metadata"):
        open_writer(path, meta={"session": 8}, append=True)
    (tmp_path / "x.csv").write_text("time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n")
    with pytest.raises(RecordingError, match="not a hipstride native file: it starts with"):
        open_writer(tmp_path / "x.csv", append=True)


def test_append_to_a_missing_or_empty_file_starts_it(tmp_path: Path) -> None:
    chunk = make_chunks(duration_s=1.0, sensors=("chest",))[0]
    (tmp_path / "empty.hsr").write_bytes(b"")
    for name in ("empty.hsr", "new.hsr"):
        with open_writer(tmp_path / name, append=True) as writer:
            writer.write(chunk)
        assert_same_samples(read_all(tmp_path / name), [chunk])


# --- raw packets -----------------------------------------------------------------------


def test_raw_packets_round_trip_and_chunks_skip_them(tmp_path: Path) -> None:
    chunks = make_chunks(duration_s=2.0, sensors=("pelvis", "left_foot"))
    packets = [
        (0.0125, "pelvis", "movesense", bytes(range(20))),
        (0.0131, "left_foot", "hipstride-v1", b""),
        (0.02, "pelvis", "movesense", b"\x00\xff" * 100),
    ]
    path = tmp_path / "raw.hsr"
    with open_writer(path) as writer:
        writer.write(chunks[0].slice(0, 100))
        for packet in packets:
            writer.write_raw(*packet)
        writer.write(chunks[0].slice(100, len(chunks[0])))
        writer.write(chunks[1])
    rec = open_recording(path)
    assert list(rec.raw_packets()) == packets
    assert_same_samples(per_sensor(rec.chunks()), chunks)
    with pytest.raises(RecordingError, match="unknown placement 'wrist'"):
        open_writer(tmp_path / "x.hsr").write_raw(0.0, "wrist", "movesense", b"")


# --- files that cannot be read ---------------------------------------------------------


def native_header(version: int = 1, meta: bytes = b"{}") -> bytes:
    return native.MAGIC + struct.pack("<HI", version, len(meta)) + meta


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (native.MAGIC[:5], "truncated file header"),
        (native_header()[:11], "truncated file header"),
        (native_header(meta=b'{"a": 1}')[:18], "truncated file header"),
        (b"\x89HSTRD\n\x01\x00", "damaged magic bytes"),  # text-mode copy ate the \r
        (b"\x89PNG\r\n\x1a\n", "damaged magic bytes"),
        (native_header(version=2), "unsupported native format version 2"),
        (native_header(meta=b"[1]"), "not a JSON object"),
        (native_header(meta=b"{oops"), "not valid JSON"),
    ],
    ids=["magic-only", "short-header", "short-json", "text-mode", "png", "v2", "list", "json"],
)
def test_unreadable_native_files_raise_one_clear_error(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "bad.hsr"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as caught:
        open_recording(path)
    assert words in caught.value.problem
    assert str(caught.value).startswith(f"{path}: byte ")


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.hsr").write_bytes(b"")
    with pytest.raises(RecordingError, match="empty file"):
        open_recording(tmp_path / "empty.hsr")


def test_writer_checks_its_input(tmp_path: Path) -> None:
    with open_writer(tmp_path / "w.hsr") as writer:
        writer.write(Chunk("chest", np.array([0.0, 0.1]), np.zeros((2, 3))))
        with pytest.raises(RecordingError, match="time not strictly increasing"):
            writer.write(Chunk("chest", np.array([0.3, 0.2]), np.zeros((2, 3))))
        with pytest.raises(RecordingError, match="NaN or infinite"):
            writer.write(Chunk("pelvis", np.array([np.inf]), np.zeros((1, 3))))
    with pytest.raises(RecordingError, match="not JSON-serialisable"):
        open_writer(tmp_path / "m.hsr", meta={"when": object()})
    with pytest.raises(RecordingError, match="cannot write"):
        open_writer(tmp_path / "no" / "such" / "dir.hsr")


def test_header_is_plain_json(tmp_path: Path) -> None:
    write_recording(tmp_path / "h.hsr", make_chunks(duration_s=0.5), meta={"ünï": "cödé"})
    data = (tmp_path / "h.hsr").read_bytes()
    magic, version, length = struct.unpack_from("<8sHI", data)
    assert (magic, version) == (native.MAGIC, 1)
    assert json.loads(data[14 : 14 + length])["ünï"] == "cödé"
