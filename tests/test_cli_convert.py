"""``hipstride convert``: what a user sees (one summary line, one error line, exit
codes) and what lands on disk (exact data, never a half-written OUT)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pipeline.cli import main
from sensors.recording import native, open_recording, write_recording
from tests.test_recording_csv import (
    BAD_CSV,
    assert_same_samples,
    make_chunks,
    per_sensor,
    read_all,
)


def convert(capsys: pytest.CaptureFixture[str], source: Path, target: Path) -> tuple[int, str, str]:
    code = main(["convert", str(source), str(target)])
    out, err = capsys.readouterr()
    return code, out, err


def test_csv_to_native_to_csv_is_bit_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chunks = make_chunks(duration_s=10.0)
    write_recording(tmp_path / "in.csv", chunks)
    code, out, err = convert(capsys, tmp_path / "in.csv", tmp_path / "mid.hsr")
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert "pelvis 2000, left_foot 2000, right_foot 2000, chest 2000 samples" in out
    assert "over 10.0 s" in out and "(csv," in out and "(native," in out
    assert open_recording(tmp_path / "mid.hsr").kind == "native"
    assert convert(capsys, tmp_path / "mid.hsr", tmp_path / "out.csv")[0] == 0
    assert_same_samples(read_all(tmp_path / "out.csv"), chunks)


def test_native_to_csv_to_native_is_bit_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chunks = make_chunks(duration_s=5.0, decimals=None)
    write_recording(tmp_path / "in.hsr", chunks, meta={"runner": "ana"})
    assert convert(capsys, tmp_path / "in.hsr", tmp_path / "mid.csv")[0] == 0
    assert convert(capsys, tmp_path / "mid.csv", tmp_path / "out.hsr")[0] == 0
    assert_same_samples(read_all(tmp_path / "out.hsr"), chunks)
    assert open_recording(tmp_path / "out.hsr").meta["converted_from"] == "mid.csv"


def test_native_to_native_keeps_metadata_and_raw_packets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sensors.recording import open_writer

    chunk = make_chunks(duration_s=1.0, sensors=("pelvis",))[0]
    with open_writer(tmp_path / "in.hsr", meta={"runner": "ana"}) as writer:
        writer.write(chunk)
        writer.write_raw(0.5, "pelvis", "movesense", b"\x01\x02")
    code, out, _ = convert(capsys, tmp_path / "in.hsr", tmp_path / "out.hsr")
    assert code == 0 and "1 raw packets" in out
    rec = open_recording(tmp_path / "out.hsr")
    assert rec.meta["runner"] == "ana"
    assert list(rec.raw_packets()) == [(0.5, "pelvis", "movesense", b"\x01\x02")]
    code, _, err = convert(capsys, tmp_path / "in.hsr", tmp_path / "out.csv")
    assert code == 0 and "hipstride: warning: " in err and "1 raw sensor packets" in err


def test_native_input_is_recognised_under_a_csv_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chunks = make_chunks(duration_s=1.0)
    write_recording(tmp_path / "disguised.csv", chunks, kind="native")
    code, out, _ = convert(capsys, tmp_path / "disguised.csv", tmp_path / "plain.csv")
    assert code == 0 and "(native," in out
    assert_same_samples(per_sensor(open_recording(tmp_path / "plain.csv").chunks()), chunks)


@pytest.mark.parametrize(
    ("content", "line", "field", "words"),
    [case[1:] for case in BAD_CSV],
    ids=[case[0] for case in BAD_CSV],
)
def test_bad_csv_is_one_error_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    line: int,
    field: str | None,
    words: str,
) -> None:
    source = tmp_path / "bad.csv"
    source.write_bytes(content)
    code, out, err = convert(capsys, source, tmp_path / "out.hsr")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"hipstride: error: {source}:{line}: ")
    assert words in err
    if field is not None:
        assert f"field '{field}'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # no OUT, no temp


def test_error_late_in_a_long_file_leaves_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_recording(tmp_path / "long.csv", make_chunks(duration_s=90.0))
    lines = (tmp_path / "long.csv").read_bytes().splitlines(keepends=True)
    cells = lines[-10].split(b",")
    lines[-10] = b",".join([cells[0], b"pelvic", *cells[2:]])
    (tmp_path / "long.csv").write_bytes(b"".join(lines))
    code, _, err = convert(capsys, tmp_path / "long.csv", tmp_path / "out.hsr")
    assert code == 2 and f"long.csv:{len(lines) - 9}: field 'sensor'" in err
    assert not (tmp_path / "out.hsr").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["long.csv"]


def test_truncated_native_input_converts_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_recording(tmp_path / "full.hsr", make_chunks(duration_s=5.0))
    data = (tmp_path / "full.hsr").read_bytes()
    (tmp_path / "cut.hsr").write_bytes(data[: len(data) - 100])
    code, out, err = convert(capsys, tmp_path / "cut.hsr", tmp_path / "out.csv")
    assert code == 0 and out.startswith("converted ")
    assert err.startswith(f"hipstride: warning: {tmp_path / 'cut.hsr'}: byte ")
    assert "ends inside a block" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty file"),
        (native.MAGIC + b"\x01\x00", "truncated file header"),
        (native.MAGIC + struct.pack("<HI", 9, 2) + b"{}", "unsupported native format"),
    ],
    ids=["empty", "short-header", "version"],
)
def test_unreadable_native_input_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, words: str
) -> None:
    (tmp_path / "in.hsr").write_bytes(content)
    code, out, err = convert(capsys, tmp_path / "in.hsr", tmp_path / "out.csv")
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"hipstride: error: {tmp_path / 'in.hsr'}") and words in err
    assert not (tmp_path / "out.csv").exists()


def test_header_only_native_input_has_nothing_to_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_recording(tmp_path / "none.hsr", [])
    code, _, err = convert(capsys, tmp_path / "none.hsr", tmp_path / "out.csv")
    assert code == 2 and "no samples to convert" in err
    assert not (tmp_path / "out.csv").exists()


def test_missing_input_or_output_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = convert(capsys, tmp_path / "nope.csv", tmp_path / "out.hsr")
    assert code == 2 and "nope.csv: cannot read: No such file" in err
    write_recording(tmp_path / "in.csv", make_chunks(duration_s=0.5))
    code, _, err = convert(capsys, tmp_path / "in.csv", tmp_path / "no" / "out.hsr")
    assert code == 2 and err.count("\n") == 1
    assert f"{tmp_path / 'no' / 'out.hsr'}: cannot write" in err


def test_output_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_recording(tmp_path / "in.csv", make_chunks(duration_s=0.5))
    (tmp_path / "out.hsr").mkdir()
    code, _, err = convert(capsys, tmp_path / "in.csv", tmp_path / "out.hsr")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{tmp_path / 'out.hsr'}: cannot write" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.hsr"]
