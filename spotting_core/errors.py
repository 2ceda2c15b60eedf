"""User-facing errors.

Raise `SpottingError` for anything a user can fix (a bad file, a wrong flag, a missing download).
The CLI prints it as one line and exits with code 2; the app shows it in the page. Never raise it
for programming errors: those should keep their traceback.
"""


class SpottingError(Exception):
    """A problem with the user's input, explained in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
