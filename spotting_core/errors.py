"""User-facing errors.

Raise `SpottingError` for anything a user can fix (a bad file, a wrong flag, a missing download).
The CLI prints it as one line and exits with code 2; the app shows it in the page. Never raise it
for programming errors: those should keep their traceback.

`warn(message)` prints one "warning: ..." line on stderr, once per message and process.
"""

import sys

_WARNED: set[str] = set()


class SpottingError(Exception):
    """A problem with the user's input, explained in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def warn(message: str) -> None:
    """One line on stderr, "warning: <message>", printed once per distinct message in a process."""
    text = " ".join(str(message).split())
    if text not in _WARNED:
        _WARNED.add(text)
        print(f"warning: {text}", file=sys.stderr)


class UnknownName(SpottingError, KeyError):
    """An unknown registry name (model, backbone...): a KeyError to code, one line to a user."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
