"""``hipstride decode``: what a user sees on stdout, stderr and in the exit code."""

from __future__ import annotations

import json

import pytest

from pipeline.cli import main

WIT = "55 61 00 08 00 00 00 f8 00 40 00 c0 01 00 00 20 00 e0 00 40"


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_witmotion_sample_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "witmotion", WIT]) == 0
    (row,) = lines(capsys.readouterr().out)
    assert row["acc"] == [9.80665, 0.0, -9.80665]
    assert row["gyr"] == [1000.0, -1000.0, 0.061035]


def test_hex_with_colons_and_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "rsc", "0x07:80:03:aa:7b:00:e8:03:00:00"]) == 0
    (row,) = lines(capsys.readouterr().out)
    assert row == {
        "packet": 0,
        "speed_mps": 3.5,
        "cadence_per_min": 170,
        "stride_length_m": 1.23,
        "total_distance_m": 100.0,
        "running": True,
    }


def test_hipstride_packet_has_counter_and_time(capsys: pytest.CaptureFixture[str]) -> None:
    packet = "01010110d007d000ffffffff04030201 0008 00f8 ff7f 0080 0000 0040"
    assert main(["decode", "hipstride", packet]) == 0
    (row,) = lines(capsys.readouterr().out)
    assert row["counter"] == 4294967295
    assert row["sensor_time_s"] == pytest.approx(16.909060)
    assert row["gyr"] == [-2000.0, 0.0, 1000.0]


def test_movesense_split_message_over_two_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    payload = "40e20100" + "0000803f" * 12
    first, rest = "0263" + payload[:76], "0363" + payload[76:]
    assert main(["decode", "movesense", first, rest]) == 0
    rows = lines(capsys.readouterr().out)
    assert [r["packet"] for r in rows] == [1, 1]
    assert rows[0]["sensor_time_s"] == pytest.approx(123.456)


def test_polar_option_sets_the_factor(capsys: pytest.CaptureFixture[str]) -> None:
    # ACC frame, compressed type 1, reference sample (100, -200, 1000) only.
    frame = "02" + "daebc39e98435208" + "81" + "640038ffe803"
    assert main(["decode", "polar-pmd", frame, "--set", "factor=2"]) == 0
    (row,) = lines(capsys.readouterr().out)
    assert row["acc"][0] == pytest.approx(200 * 9.80665 / 1000)


def test_broken_packet_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "rsc", "01 00 03 b4"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("hipstride: error: RSC measurement: flags 0x01 mean 6 bytes, got 4\n")


def test_which_packet_is_broken(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "witmotion", WIT, "55 51" + WIT[5:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hipstride: error: packet 2: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["decode", "rsc", "zz"], "not hexadecimal: 'zz'"),
        (["decode", "movesense", "0263" + "40e20100" + "00" * 30], "no complete packet"),
        (["decode", "witmotion", WIT, "--set", "rate"], "--set expects KEY=VALUE"),
        (["decode", "witmotion", WIT, "--set", "speed=1"], "unknown option"),
    ],
)
def test_user_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unknown_protocol_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["decode", "ant+", "00"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
