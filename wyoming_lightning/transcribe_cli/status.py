"""How the command ends: its exit codes, and the error that becomes one line on stderr."""

from __future__ import annotations

PROG = "wyoming-lightning-client"
EXIT_OK, EXIT_SERVER, EXIT_LOCAL, EXIT_EMPTY = 0, 1, 2, 3


class ClientError(Exception):
    """A problem worth one line to the user, not a traceback; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_LOCAL) -> None:
        super().__init__(message)
        self.code = code
