"""The CSV interchange format: exact round trips, row order, and one clear error per
kind of bad input (file, line, field, problem)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import RecordingError
from sensors.model import PLACEMENTS, Chunk
from sensors.recording import csv_format, open_recording, open_writer, write_recording
from tests.helpers import rechunk

HEADER = "time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z"


# --- test data ----------------------------------------------------------------------


def make_chunks(
    duration_s: float = 20.0,
    fs_hz: float = 200.0,
    decimals: int | None = 4,
    seed: int = 0,
    sensors: Iterable[str] = ("pelvis", "left_foot", "right_foot", "chest"),
) -> list[Chunk]:
    """One chunk per sensor: sinusoids + noise like a running IMU; ``chest`` has no
    gyroscope. ``decimals`` rounds like a real export; None keeps full precision
    (and a clock that is not a round number of seconds)."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * fs_hz)
    chunks = []
    for i, name in enumerate(sensors):
        t = 0.0011 * i + np.arange(n) / fs_hz
        phase = 2 * np.pi * 2.8 * t[:, np.newaxis] + np.array([0.0, 1.0, 2.0]) + i
        acc = 6.0 * np.sin(phase) + rng.normal(0, 0.3, (n, 3)) + [0.0, 0.0, 9.80665]
        gyr = 250.0 * np.cos(phase) + rng.normal(0, 2.0, (n, 3))
        if decimals is None:
            t = t * (1 + 3.7e-6) + 0.123456789  # a drifting clock: no short decimals
        else:
            t, acc, gyr = (np.round(a, decimals) for a in (t, acc, gyr))
            t = np.round(t, 4)
        chunks.append(Chunk(name, t, acc, None if name == "chest" else gyr, f"dev-{name}"))
    return chunks


def per_sensor(chunks: Iterable[Chunk]) -> dict[str, Chunk]:
    parts: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        parts.setdefault(chunk.placement, []).append(chunk)
    return {name: Chunk.concat(p) for name, p in parts.items()}


def assert_same_samples(got: dict[str, Chunk], want: Iterable[Chunk]) -> None:
    """Bit-exact per sensor: np.array_equal on every column, and on the bits too
    (array_equal alone takes -0.0 for 0.0). Device ids are not compared."""
    want_by = per_sensor(want)
    assert set(got) == set(want_by)
    for name, w in want_by.items():
        g = got[name]
        assert (g.gyr_dps is None) == (w.gyr_dps is None), name
        pairs = [(g.t_s, w.t_s), (g.acc_mps2, w.acc_mps2)]
        if g.gyr_dps is not None and w.gyr_dps is not None:
            pairs.append((g.gyr_dps, w.gyr_dps))
        for a, b in pairs:
            assert np.array_equal(a, b), name
            assert np.array_equal(a.view(np.int64), b.view(np.int64)), f"{name}: -0.0 lost"


def read_all(path: Path) -> dict[str, Chunk]:
    return per_sensor(open_recording(path).chunks())


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [4, 6, None])
def test_write_then_read_is_bit_exact(tmp_path: Path, decimals: int | None) -> None:
    chunks = make_chunks(decimals=decimals)
    path = tmp_path / "run.csv"
    write_recording(path, rechunk(chunks, 50))
    rec = open_recording(path)
    assert rec.kind == "csv" and rec.meta == {}
    assert rec.placements == ("pelvis", "left_foot", "right_foot", "chest")
    assert_same_samples(per_sensor(rec.chunks()), chunks)
    assert rec.warnings == []


def test_negative_zero_and_awkward_values_survive(tmp_path: Path) -> None:
    t = np.array([0.0, 0.005, 0.01, 0.015])
    acc = np.array(
        [[-0.0, 1e-7, 1e16], [0.1, -2.5e-5, 123456.789], [3.0, 5.0, 7.0], [0.1, 0.2, 0.3]]
    )
    gyr = np.array([[1 / 3, -0.0, 2000.0], [0.0, 1e-300, -1e300], [1, 2, 3], [4, 5, 6]])
    chunk = Chunk("pelvis", t, acc, gyr.astype(float))
    write_recording(tmp_path / "odd.csv", [chunk])
    assert_same_samples(read_all(tmp_path / "odd.csv"), [chunk])


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_input_chunking_does_not_change_the_samples(tmp_path: Path, size: int) -> None:
    chunks = make_chunks(duration_s=3.0)
    write_recording(tmp_path / "a.csv", chunks)
    write_recording(tmp_path / "b.csv", rechunk(chunks, size))
    assert_same_samples(read_all(tmp_path / "b.csv"), chunks)
    # The text is the same too, for this data (every column has 4 decimals).
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_rows_are_merged_in_time_order_ties_in_placement_order(tmp_path: Path) -> None:
    t = np.arange(6) * 0.01
    acc = np.zeros((6, 3))
    chest = Chunk("chest", t, acc)
    pelvis = Chunk("pelvis", t + 0.005, acc, acc)
    left = Chunk("left_foot", t, acc, acc)
    path = tmp_path / "m.csv"
    with open_writer(path, "csv") as writer:
        # One sensor far ahead of the others: the writer must hold its rows back.
        writer.write(chest)
        for a, b in zip(pelvis.split(2), left.split(2), strict=True):
            writer.write(a)
            writer.write(b)
    rows = [line.split(",")[:2] for line in path.read_text().splitlines()[1:]]
    order = [(float(time), sensor) for time, sensor in rows]
    assert [time for time, _ in order] == sorted(time for time, _ in order)
    # Same time: left_foot before chest (PLACEMENTS order), whatever the write order.
    assert order[:3] == [(0.0, "left_foot"), (0.0, "chest"), (0.005, "pelvis")]
    assert PLACEMENTS.index("left_foot") < PLACEMENTS.index("chest")


def test_reader_accepts_bom_crlf_and_no_final_newline(tmp_path: Path) -> None:
    text = (
        f"\ufeff{HEADER}\r\n"
        "0.0,pelvis,0.1,0.2,9.8,1,2,3\r\n"
        "0.0,chest,0.1,0.2,9.8,,,\r\n"
        "0.005,pelvis,0.1,0.2,9.8,1,2,3"
    )
    path = tmp_path / "win.csv"
    path.write_bytes(text.encode("utf-8"))
    got = read_all(path)
    assert got["pelvis"].t_s.tolist() == [0.0, 0.005]
    assert got["chest"].gyr_dps is None and got["chest"].acc_mps2[0, 2] == 9.8


def test_sensors_need_only_be_in_time_order_each(tmp_path: Path) -> None:
    # left_foot's rows lag pelvis's a little: allowed (per-sensor order only).
    text = (
        f"{HEADER}\n0.010,pelvis,0,0,9.8,0,0,0\n0.005,left_foot,0,0,9.8,0,0,0\n"
        "0.015,pelvis,0,0,9.8,0,0,0\n0.010,left_foot,0,0,9.8,0,0,0\n"
    )
    (tmp_path / "lag.csv").write_text(text)
    got = read_all(tmp_path / "lag.csv")
    assert got["left_foot"].t_s.tolist() == [0.005, 0.010]


def test_placements_come_from_the_first_batch_late_sensors_are_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_format, "BATCH_BYTES", 4096)
    early = make_chunks(duration_s=2.0, sensors=("pelvis", "left_foot"))
    late = Chunk("chest", np.array([1.5, 1.6]), np.ones((2, 3)))
    path = tmp_path / "late.csv"
    write_recording(path, [*early, late])
    rec = open_recording(path)
    assert rec.placements == ("pelvis", "left_foot")
    got = per_sensor(rec.chunks())
    assert rec.placements == ("pelvis", "left_foot", "chest")
    assert got["chest"].t_s.tolist() == [1.5, 1.6]


@pytest.mark.parametrize("batch_bytes", [64, 1000, 3 << 20])
def test_batch_size_does_not_change_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_bytes: int
) -> None:
    chunks = make_chunks(duration_s=2.0)
    write_recording(tmp_path / "r.csv", chunks)
    monkeypatch.setattr(csv_format, "BATCH_BYTES", batch_bytes)
    assert_same_samples(read_all(tmp_path / "r.csv"), chunks)


def test_line_by_line_reference_parser_agrees_with_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = make_chunks(duration_s=2.0, decimals=None)
    write_recording(tmp_path / "r.csv", chunks)
    monkeypatch.setattr(csv_format, "_fast_columns", lambda *args: None)
    assert_same_samples(read_all(tmp_path / "r.csv"), chunks)


def test_writer_rejects_what_a_reader_would(tmp_path: Path) -> None:
    writer = open_writer(tmp_path / "w.csv", "csv")
    writer.write(Chunk("pelvis", np.array([0.0, 0.1]), np.zeros((2, 3)), np.zeros((2, 3))))
    with pytest.raises(RecordingError, match="not after the previous sample"):
        writer.write(Chunk("pelvis", np.array([0.1]), np.zeros((1, 3)), np.zeros((1, 3))))
    with pytest.raises(RecordingError, match="NaN or infinite"):
        writer.write(Chunk("chest", np.array([0.0]), np.full((1, 3), np.nan)))
    with pytest.raises(RecordingError, match="gyroscope"):
        writer.write(Chunk("pelvis", np.array([0.2]), np.zeros((1, 3))))
    with pytest.raises(RecordingError, match="only be stored in a native"):
        writer.write_raw(0.0, "pelvis", "movesense", b"\x01")
    writer.close()
    with pytest.raises(RecordingError, match="appending is only supported"):
        open_writer(tmp_path / "w.csv", "csv", append=True)


# --- bad input: one case per problem --------------------------------------------------

GOOD = [
    "0.000,pelvis,0.1,0.2,9.8,1.0,2.0,3.0",
    "0.000,chest,0.1,0.2,9.8,,,",
    "0.005,pelvis,0.1,0.2,9.8,1.0,2.0,3.0",
    "0.005,chest,0.1,0.2,9.8,,,",
]


def rows(*lines: str, end: str = "\n") -> bytes:
    return (HEADER + "\n" + "\n".join(lines) + end).encode()


#: (id, file content, line, field, words the message must contain)
BAD_CSV: list[tuple[str, bytes, int, str | None, str]] = [
    ("empty-file", b"", 1, None, "empty file"),
    (
        "wrong-header",
        rows(*GOOD).replace(b"time_s,", b"time,", 1),
        1,
        "time",
        "wrong header 'time,sensor",
    ),
    (
        "header-extra-column",
        rows(*GOOD).replace(b"gyr_z\n", b"gyr_z,mag_x\n", 1),
        1,
        "mag_x",
        "wrong header",
    ),
    (
        "header-missing-column",
        rows(*GOOD).replace(b",gyr_z\n", b"\n", 1),
        1,
        "gyr_z",
        "expected 'time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z'",
    ),
    ("missing-header", "\n".join(GOOD).encode(), 1, "0.000", "is the header line missing?"),
    ("no-samples", (HEADER + "\n").encode(), 2, None, "no samples after the header"),
    (
        "field-count",
        rows(*GOOD[:2], "0.005,pelvis,0.1,0.2,9.8,1.0,2.0"),
        4,
        None,
        "wrong number of fields: 7; expected 8",
    ),
    ("empty-line", rows(GOOD[0], "", *GOOD[1:]), 3, None, "wrong number of fields: 1 (an empty"),
    (
        "unknown-sensor",
        rows(*GOOD[:3], "0.005,wrist,0.1,0.2,9.8,1.0,2.0,3.0"),
        5,
        "sensor",
        "unknown sensor 'wrist' (valid: pelvis, left_foot, right_foot, chest)",
    ),
    (
        "non-numeric",
        rows(GOOD[0], "0.000,chest,0.1,abc,9.8,,,"),
        3,
        "acc_y",
        "not a number: 'abc'",
    ),
    ("missing-value", rows(GOOD[0], "0.000,chest,0.1,,9.8,,,"), 3, "acc_y", "missing value"),
    (
        "nan",
        rows(*GOOD[:2], "0.005,pelvis,0.1,0.2,9.8,1.0,2.0,nan"),
        4,
        "gyr_z",
        "'nan' is not a finite number",
    ),
    (
        "infinite",
        rows(GOOD[0], "0.000,chest,-Infinity,0.2,9.8,,,"),
        3,
        "acc_x",
        "'-Infinity' is not a finite number",
    ),
    (
        "gyr-partly-empty",
        rows(*GOOD[:2], "0.005,pelvis,0.1,0.2,9.8,1.0,,3.0"),
        4,
        "gyr_y",
        "gyroscope partly empty",
    ),
    (
        "gyro-comes-and-goes",
        rows(*GOOD[:2], "0.005,pelvis,0.1,0.2,9.8,,,"),
        4,
        "gyr_x",
        "sensor 'pelvis' has gyroscope values on line 2 but none here",
    ),
    (
        "time-goes-back",
        rows(*GOOD, "0.001,pelvis,0.1,0.2,9.8,1.0,2.0,3.0"),
        6,
        "time_s",
        "time not strictly increasing for sensor 'pelvis': 0.001 s comes after 0.005 s on line 4",
    ),
    (
        "time-repeats",
        rows(*GOOD, "0.005,chest,0.1,0.2,9.8,,,"),
        6,
        "time_s",
        "0.005 s comes after 0.005 s on line 5",
    ),
    (
        "truncated-row",
        rows(*GOOD, "0.010,pelvis,0.1,0.2,9.8,1.0,2.", end=""),
        6,
        None,
        "truncated: the file ends in the middle of a row",
    ),
    (
        "truncated-number",
        rows(*GOOD, "0.010,pelvis,0.1,0.2,9.8,1.0,2.0,3.0e", end=""),
        6,
        "gyr_z",
        "truncated: the file ends in the middle of a row (not a number: '3.0e')",
    ),
    (
        "truncated-header",
        HEADER[:20].encode(),
        1,
        None,
        "truncated: the file ends inside the header",
    ),
]


@pytest.mark.parametrize(
    ("content", "line", "field", "words"),
    [case[1:] for case in BAD_CSV],
    ids=[case[0] for case in BAD_CSV],
)
def test_bad_csv_names_line_field_and_problem(
    tmp_path: Path, content: bytes, line: int, field: str | None, words: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as caught:
        for _ in open_recording(path).chunks():
            pass
    err = caught.value
    assert (err.line, err.field) == (line, field)
    assert words in err.problem
    assert str(err).startswith(f"{path}:{line}: ")
    assert "\n" not in str(err)


def test_error_line_numbers_are_exact_in_later_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_format, "BATCH_BYTES", 1000)
    lines = [f"{i * 0.005:.3f},pelvis,0.1,0.2,9.8,1.0,2.0,3.0" for i in range(400)]
    lines[321] = lines[321].replace("9.8", "9.8.1")
    (tmp_path / "late.csv").write_bytes(rows(*lines))
    with pytest.raises(RecordingError) as caught:
        for _ in open_recording(tmp_path / "late.csv").chunks():
            pass
    assert (caught.value.line, caught.value.field) == (323, "acc_z")


def test_only_the_first_problem_is_reported(tmp_path: Path) -> None:
    # Line 3 has two problems, line 4 another: the message is about line 3's first.
    content = rows(GOOD[0], "0.000,wrist,x,0.2,9.8,,,", "0.000,chest,y,0.2,9.8,,,")
    (tmp_path / "two.csv").write_bytes(content)
    with pytest.raises(RecordingError) as caught:
        open_recording(tmp_path / "two.csv")
    assert (caught.value.line, caught.value.field) == (3, "sensor")
