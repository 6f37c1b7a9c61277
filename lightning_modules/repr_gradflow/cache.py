"""A disk cache for generated data sets, keyed by their config and checked on every load.

An entry is one `.npz` file holding `X`, `y` and `meta` (JSON: the key and SHA-256 digests of
`X` and `y`). An entry that cannot be read, belongs to another key or fails its digests is not
trusted: it is regenerated and rewritten. Writes go to a temporary file first and are moved in
place, so a crash never leaves a half-written entry under the real name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["CACHE_ENV", "default_cache_dir", "cache_path", "cached_arrays"]

CACHE_ENV = "FIXLAB_CACHE"
_FORMAT = 1  # bump when the entry layout changes; old entries then miss instead of mis-load


def default_cache_dir() -> Path:
    """`$FIXLAB_CACHE` if set, else `~/.cache/fixlab`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "fixlab")


def _key_json(name: str, key: Mapping[str, Any]) -> str:
    return json.dumps({"name": name, "format": _FORMAT, "key": dict(key)}, sort_keys=True)


def cache_path(name: str, key: Mapping[str, Any], cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the entry for `key` of data set `name` lives."""
    digest = hashlib.sha256(_key_json(name, key).encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / name / f"{digest}.npz"


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _read(path: Path, key_json: str) -> tuple[np.ndarray, np.ndarray]:
    """The entry's arrays; ValueError saying why if it is not a valid entry for `key_json`."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"X", "y", "meta"} - set(f.files)
            if missing:
                raise ValueError(f"missing arrays {sorted(missing)}")
            x, y, meta = f["X"], f["y"], json.loads(str(f["meta"]))
    except ValueError:
        raise
    except Exception as exc:  # zip, pickle and JSON errors all mean "unreadable"
        raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from None
    if meta.get("key") != key_json:
        raise ValueError("written for another config")
    if meta.get("X_sha256") != _digest(x) or meta.get("y_sha256") != _digest(y):
        raise ValueError("contents do not match their digests")
    return x, y


def _write(path: Path, key_json: str, x: np.ndarray, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"key": key_json, "X_sha256": _digest(x), "y_sha256": _digest(y)})
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, X=x, y=y, meta=np.array(meta))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_arrays(
    name: str,
    key: Mapping[str, Any],
    build: Callable[[], tuple[np.ndarray, np.ndarray]],
    *,
    cache_dir: str | os.PathLike | None = None,
    check: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`(X, y)` for `key`: from the cache when a valid entry exists, else `build()` and store.

    Args:
        name: the data set's name (a folder under the cache dir).
        key: everything the arrays depend on (JSON-serializable).
        build: makes the arrays when there is no valid entry.
        cache_dir: defaults to `default_cache_dir()`.
        check: raises ValueError if loaded arrays do not fit `key` (shapes, dtypes).

    Returns:
        The arrays. A cache that cannot be written is warned about and skipped.
    """
    path = cache_path(name, key, cache_dir)
    key_json = _key_json(name, key)
    if path.exists():
        try:
            x, y = _read(path, key_json)
            if check is not None:
                check(x, y)
            return x, y
        except ValueError as exc:
            warnings.warn(f"cache entry {path} is invalid ({exc}); regenerating it", stacklevel=2)
    x, y = build()
    try:
        _write(path, key_json, x, y)
    except OSError as exc:
        warnings.warn(f"could not write cache entry {path} ({exc}); continuing without cache", stacklevel=2)
    return x, y
