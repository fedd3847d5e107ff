"""The ``hipstride`` command line.

Every user-facing failure (bad file, bad option) ends as one line on stderr and exit
code 2; a traceback means a bug in hipstride, never in the user's input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pipeline import __version__
from sensors.errors import DecodeError, RecordingError

#: Sub-command modules under ``pipeline.commands``, in the order ``--help`` lists them.
COMMANDS = (
    "demo",
    "replay",
    "simulate",
    "convert",
    "run",
    "watch",
    "decode",
    "scan",
    "collect",
    "history",
    "report",
)


class UsageError(Exception):
    """A bad option value or combination, reported as one line and exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hipstride",
        description="Running gait and hip-load analysis from wearable motion sensors.",
    )
    parser.add_argument("--version", action="version", version=f"hipstride {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"pipeline.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except (RecordingError, DecodeError, UsageError) as err:
        print(f"hipstride: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    # Run through the imported module so that its exception classes are the ones the
    # commands raise (``python -m pipeline.cli`` would otherwise define them twice).
    from pipeline.cli import main as _main

    sys.exit(_main())
