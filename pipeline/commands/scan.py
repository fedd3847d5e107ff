"""``hipstride scan``: list advertising BLE sensors and the protocol hipstride would use.

Prints one line per device, strongest signal first, with a ready-made
``[sensors.<placement>]`` table for ``hipstride collect --config``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from pipeline.cli import UsageError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("scan", help="list BLE sensors in range", description=__doc__)
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="default 5")
    p.add_argument("--adapter", metavar="HCI", help="Bluetooth adapter, e.g. hci1")
    p.add_argument("--all", action="store_true", help="also list devices hipstride cannot read")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sensors.ble.transport import scan

    try:
        found = asyncio.run(scan(args.timeout, args.adapter))
    except RuntimeError as err:  # bleak missing: the message names what to install
        raise UsageError(str(err)) from None
    except Exception as err:  # no adapter, BlueZ not running, no permission
        raise UsageError(
            f"Bluetooth unavailable ({type(err).__name__}: {err}); "
            "is BlueZ running and an adapter present?"
        ) from None
    shown = [f for f in found if args.all or f.protocol]
    if not shown:
        print("no sensors found (is one advertising, and not connected to a phone?)")
    for f in shown:
        rssi = "?" if f.rssi_dbm is None else f"{f.rssi_dbm} dBm"
        print(f"{f.address}  {rssi:>8}  {f.protocol or '-':<9}  {f.name}")
    return 0
