"""``hipstride decode PROTOCOL HEX...``: decode raw BLE packets by hand.

For checking a sniffed or logged notification against what hipstride makes of it.
Prints one JSON object per sample (``acc`` in m/s², ``gyr`` in deg/s) or per RSC
measurement (units in the field names). Several HEX arguments are fed in order, as the
notifications arrived, so split messages (Movesense DATA + DATA_PART2) reassemble.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipeline.cli import UsageError
from sensors.errors import DecodeError
from sensors.protocols import PROTOCOLS, make_decoder
from sensors.protocols.binary import hex_bytes


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "decode",
        help="decode raw sensor packets given as hex",
        description=(
            "Decode BLE notifications given as hex (spaces and colons allowed). "
            "Prints JSON lines; a broken packet is reported and exits with code 2."
        ),
    )
    parser.add_argument(
        "protocol", choices=PROTOCOLS, metavar="PROTOCOL", help=", ".join(PROTOCOLS)
    )
    parser.add_argument("packets", nargs="+", metavar="HEX", help="one notification per argument")
    parser.add_argument(
        "--set",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=(
            "decoder option: polar-pmd rate_hz, factor, gyro_factor, resolution_bits; "
            "movesense path, reference, mtu; witmotion rate_hz"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    decoder = make_decoder(args.protocol, _options(args.options))
    produced = 0
    for index, text in enumerate(args.packets):
        try:
            results = decoder.feed(hex_bytes(text))
        except DecodeError as err:
            where = f"packet {index + 1}: " if len(args.packets) > 1 else ""
            raise DecodeError(f"{where}{err}") from None
        for result in results:
            for row in result.to_json_rows():
                print(json.dumps({"packet": index, **row}))
                produced += 1
    if not produced:
        raise DecodeError(
            f"{args.protocol}: no complete packet in the input (a message split over "
            "several notifications needs all of them)"
        )
    return 0


def _options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {pair!r}")
        options[key.strip()] = value.strip()
    return options
