"""The command line: `python -m spotting_core COMMAND ...` (also installed as `spotting`).

One module per group of commands (cli/data.py, model.py, run.py, ...), each with `register(sub)`.
A `SpottingError` (bad input) is printed as one line on stderr with exit code 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import sys

from spotting_core.cli import calibrate, data, model, pretrained, run
from spotting_core.errors import SpottingError

GROUPS = (data, model, run, calibrate, pretrained)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spotting", description="Action spotting in soccer broadcasts.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpottingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
