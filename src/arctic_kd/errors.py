"""Errors that reach the user as one clear line instead of a traceback."""

from __future__ import annotations

import errno
from collections.abc import Sequence
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


class ConfigError(ArcticError):
    """A config file or override is malformed."""


class ConfigValueError(ConfigError):
    """A value of the right type that breaks a rule (a range, a choice, a rule between keys); `load_config`
    names where it came from (the YAML file or --set)."""


_CAUSES = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOSPC: "disk full (no space left on the device)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "exists and is not a folder",  # what makes creating a folder fail in practice
}


def shortlist(items: Sequence[str], shown: int, separator: str = ", ") -> str:
    """The first `shown` items, then how many more: a long listing stays one readable line."""
    more = len(items) - shown
    return separator.join(items[:shown]) + (f"{separator}and {more} more" if more > 0 else "")


def os_error(error: OSError, path: str | Path | None = None, action: str = "") -> ArcticError:
    """An OS failure as one line naming the path and the cause (disk full said as such), never a traceback."""
    where = path if path is not None else (error.filename or "")
    cause = _CAUSES.get(error.errno, error.strerror or str(error))
    return ArcticError(f"{where}: {action + ': ' if action else ''}{cause}")
