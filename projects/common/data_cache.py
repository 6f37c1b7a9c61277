"""The disk cache every project keeps its generated data in: keyed by config, checked on every load.

An entry is one `.npz` file (no pickle) holding the data set's named arrays and `__meta__`: the
key it was written for and one SHA-256 digest over every array's name, dtype, shape and bytes.
An entry that cannot be read, was written for another key or fails its digest is never
trusted: it is rebuilt, with a one-line warning. Writes go to a temporary file in the same folder
and are moved into place, so a crash never leaves a half-written entry under the real name.

Example:
    >>> entry = cached_arrays("motifs", {"n": 100, "seed": 0}, lambda: {"X": make_x(), "y": make_y()})
    >>> entry.arrays["X"].shape, entry.built
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["CACHE_ENV", "CacheEntry", "cache_path", "cached_arrays", "default_cache_dir"]

CACHE_ENV = "FIXLAB_CACHE"
_META = "__meta__"
_FORMAT = 2  # bump when the entry layout changes; old entries then miss instead of mis-load

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class CacheEntry:
    """A data set from the cache: its arrays, where it lives, and whether this call built it."""

    arrays: Arrays
    path: Path
    built: bool


def default_cache_dir() -> Path:
    """`$FIXLAB_CACHE` if set, else `~/.cache/fixlab`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "fixlab")


def _key_json(name: str, key: Mapping[str, Any]) -> str:
    return json.dumps({"name": name, "format": _FORMAT, "key": dict(key)}, sort_keys=True)


def cache_path(name: str, key: Mapping[str, Any], cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the entry for `key` of data set `name` lives."""
    digest = hashlib.sha256(_key_json(name, key).encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / name / f"{digest}.npz"


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _read(path: Path, key_json: str) -> Arrays:
    """The entry's arrays; ValueError saying why if it is not a valid entry for `key_json`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop(_META)))
    except KeyError:
        raise ValueError("no metadata") from None
    except Exception as exc:  # zip, pickle and JSON errors all mean "unreadable"
        raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from None
    if meta.get("key") != key_json:
        raise ValueError("written for another config")
    if meta.get("sha256") != _digest(arrays):
        raise ValueError("contents do not match their digest")
    return arrays


def _write(path: Path, key_json: str, arrays: Mapping[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"key": key_json, "sha256": _digest(arrays)})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, allow_pickle=False, **arrays, **{_META: np.array(meta)})
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache entry is plain data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_arrays(
    name: str,
    key: Mapping[str, Any],
    build: Callable[[], Mapping[str, np.ndarray]],
    *,
    cache_dir: str | os.PathLike | None = None,
    check: Callable[[Arrays], None] | None = None,
) -> CacheEntry:
    """The arrays for `key`: from the cache when a valid entry exists, else `build()` and store.

    Args:
        name: the data set's name (a folder under the cache dir).
        key: everything the arrays depend on (JSON-serializable).
        build: makes the named arrays when there is no valid entry.
        cache_dir: defaults to `default_cache_dir()`.
        check: raises ValueError if arrays do not fit `key` (names, shapes, dtypes); run on
            loaded and on built arrays alike.

    Returns:
        The entry. A cache that cannot be written is warned about and skipped.

    Raises:
        ValueError: `build()` made arrays that fail `check` (a bug in the builder, not the cache).
    """
    if not name:
        raise ValueError(f"name={name!r} is not allowed; allowed: a non-empty data set name")
    path = cache_path(name, key, cache_dir)
    key_json = _key_json(name, key)
    if path.exists():
        try:
            arrays = _read(path, key_json)
            if check is not None:
                check(arrays)
            return CacheEntry(arrays, path, built=False)
        except ValueError as exc:
            warnings.warn(f"cache entry {path} is invalid ({exc}); regenerating it", RuntimeWarning,
                          stacklevel=2)
    arrays = {str(k): np.asarray(v) for k, v in build().items()}
    if _META in arrays:
        raise ValueError(f"build() returned an array named {_META!r}; allowed: any other name")
    if check is not None:
        check(arrays)
    try:
        _write(path, key_json, arrays)
    except OSError as exc:
        warnings.warn(f"could not write cache entry {path} ({exc}); continuing without cache", RuntimeWarning,
                      stacklevel=2)
    return CacheEntry(arrays, path, built=True)
