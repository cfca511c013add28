"""Errors that reach the user as one clear line instead of a traceback."""

from __future__ import annotations

from pathlib import Path


class ArcticError(Exception):
    """Base of every error the CLI reports as a message rather than a traceback."""


class DataError(ArcticError):
    """A user's data file is missing, unreadable or malformed; names the file (and line) and the problem."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # keeps the fields when the error crosses a process boundary
        return (type(self), (self.path, self.problem, self.line))
