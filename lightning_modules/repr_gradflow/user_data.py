"""The loader for the user's own data: an `.npz` file with `X` (N, T, C) float and `y` (N,) int."""

from __future__ import annotations

import os
import zipfile

import numpy as np

__all__ = ["EXPECTED", "DataFileError", "load_npz"]

EXPECTED = "an .npz file with arrays X (float, shape (N, T, C)) and y (int, shape (N,))"


class DataFileError(ValueError):
    """A user data file is not valid; `.problem` says what is wrong, the message is one line."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


def load_npz(path: str | os.PathLike, *, n_classes: int | None = None,
             name: str = "data_path") -> tuple[np.ndarray, np.ndarray]:
    """Load and check a user data set.

    Args:
        path: the `.npz` file.
        n_classes: if given, every label must lie in [0, n_classes).
        name: the parameter the path came from, used in error messages.

    Returns:
        `X` as float32 (N, T, C) and `y` as int64 (N,).

    Raises:
        DataFileError: (a ValueError) one line naming `name`, the path, what is wrong and what is expected, if
            the file is missing or unreadable, or its keys, shapes, dtypes or labels are wrong.

    Example:
        >>> X, y = load_npz("my_series.npz", n_classes=60)  # doctest: +SKIP
    """
    def fail(problem: str) -> DataFileError:
        problem = " ".join(problem.split())  # one line, whatever the underlying error printed
        return DataFileError(f"{name}={str(path)!r}: {problem}; expected {EXPECTED}", problem)

    if not os.path.isfile(path):
        raise fail("no such file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise fail(f"unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise fail("is a single .npy array, not an .npz archive")
    with archive:
        files = set(archive.files)
        if not {"X", "y"} <= files:
            raise fail(f"has arrays {sorted(files)}, missing {sorted({'X', 'y'} - files)}")
        try:
            x, y = archive["X"], archive["y"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise fail(f"unreadable ({type(exc).__name__}: {exc})") from None
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.floating):
        raise fail(f"X has dtype {x.dtype} and shape {x.shape}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise fail(f"y has dtype {y.dtype} and shape {y.shape}")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise fail(f"X has shape {x.shape} and y has shape {y.shape} (N must match and be > 0)")
    if not np.isfinite(x).all():
        raise fail("X contains NaN or Inf")
    if y.min() < 0 or (n_classes is not None and y.max() >= n_classes):
        allowed = f"[0, {n_classes})" if n_classes is not None else ">= 0"
        raise fail(f"labels range over [{y.min()}, {y.max()}], allowed {allowed}")
    return x.astype(np.float32), y.astype(np.int64)
