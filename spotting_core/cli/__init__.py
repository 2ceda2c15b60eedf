"""The command line: `python -m spotting_core COMMAND ...` (also installed as `spotting`).

One module per group of commands (cli/data.py, model.py, run.py, ...), each with `register(sub)`.
Bad input never ends in a traceback: a usage mistake (argparse), a `SpottingError` or an `OSError`
(a path that cannot be read or written) is one line on stderr with exit code 2. Anything else is a
bug: one line naming it, exit code 1, and the traceback only with SPOTTING_DEBUG=1.
"""

from __future__ import annotations

import argparse
import os
import sys

from spotting_core.cli import batch, calibrate, data, media, model, pretrained, run
from spotting_core.errors import SpottingError

GROUPS = (data, model, run, calibrate, batch, media, pretrained)


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (the subcommands' parsers are of this class too)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="spotting", description="Action spotting in soccer broadcasts.")
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
    except OSError as e:
        print(f"error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("SPOTTING_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
              "(SPOTTING_DEBUG=1 shows the traceback; please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
