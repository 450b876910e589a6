"""The one exception type users see.

Every bad-input path raises :class:`SimrealError` with a message that names the file and the problem;
the CLI turns it into one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class SimrealError(Exception):
    """A user-facing error: bad input, a missing file, an impossible request."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)
