"""The one error type of the cvkan data loaders: a user file that is not what a loader accepts."""

from __future__ import annotations

import os

__all__ = ["DataFileError", "file_error"]


class DataFileError(ValueError):
    """A data file or folder is not valid; the message is one line naming it, the problem and what is allowed."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


def file_error(path: str | os.PathLike, problem: str, allowed: str) -> DataFileError:
    """A `DataFileError` whose one-line message names `path`, `problem` and what is `allowed`."""
    problem = " ".join(str(problem).split())  # one line, whatever an underlying error printed
    return DataFileError(f"{os.fspath(path)}: {problem}; allowed: {' '.join(allowed.split())}", problem)
