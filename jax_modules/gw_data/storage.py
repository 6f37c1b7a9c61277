"""On-disk form of a `GWDataset`: one `.npz` (no pickle), written atomically, validated on read."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from .config import FORMAT_VERSION, SPLITS, GWDataConfig
from .dataset import GWDataset, Split


class InvalidCacheError(ValueError):
    """A stored data set is unreadable, incomplete, or not the one the config asks for."""


def write_dataset(dataset: GWDataset, path: Path) -> None:
    """Write `dataset` to `path` via a temporary file and `os.replace`: never half-written."""
    path = Path(path)
    data = _data_arrays(dataset)
    meta = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "cache_key": np.array(dataset.config.cache_key()),
        "config": np.array(dataset.config.to_json()),
        "checksum": np.array(_checksum(data)),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, allow_pickle=False, **data, **meta)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache entry is plain data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_dataset(path: Path, config: GWDataConfig) -> GWDataset:
    """Read the data set for `config` from `path`, checking everything before trusting it.

    Raises:
        InvalidCacheError: unreadable or truncated file, missing arrays, another format version
            or config, a checksum mismatch, or arrays of the wrong shape or dtype.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as exc:  # a damaged zip fails in many ways; all of them mean "regenerate"
        raise InvalidCacheError(f"unreadable ({type(exc).__name__}: {exc})") from None
    meta = {name: arrays.pop(name, None) for name in ("format_version", "cache_key", "config", "checksum")}
    missing = sorted(name for name, value in meta.items() if value is None)
    if missing:
        raise InvalidCacheError(f"missing {missing}")
    if int(meta["format_version"]) != FORMAT_VERSION:
        raise InvalidCacheError(f"format version {int(meta['format_version'])}, expected {FORMAT_VERSION}")
    if str(meta["cache_key"]) != config.cache_key():
        raise InvalidCacheError(f"written for config {str(meta['cache_key'])}, expected {config.cache_key()}")
    expected = _expected_shapes(config)
    if set(arrays) != set(expected):
        raise InvalidCacheError(f"arrays {sorted(arrays)}, expected {sorted(expected)}")
    if str(meta["checksum"]) != _checksum(arrays):
        raise InvalidCacheError("checksum mismatch")
    for name, (shape, dtype) in expected.items():
        if arrays[name].shape != shape or arrays[name].dtype != dtype:
            got = f"{arrays[name].dtype} {arrays[name].shape}"
            raise InvalidCacheError(f"{name} is {got}, expected {np.dtype(dtype)} {shape}")
    splits = {
        split: Split(**{name.split("/", 1)[1]: a for name, a in arrays.items() if name.startswith(f"{split}/")})
        for split in SPLITS
    }
    return GWDataset(**splits, config=config, psd=arrays["psd"], generated=False, path=path)


def _data_arrays(dataset: GWDataset) -> dict[str, np.ndarray]:
    arrays = {f"{split}/{name}": a for split, s in dataset.splits().items() for name, a in s.arrays().items()}
    arrays["psd"] = np.asarray(dataset.psd, dtype=np.float64)
    return arrays


def _expected_shapes(config: GWDataConfig) -> dict[str, tuple[tuple[int, ...], type]]:
    window = (len(config.detectors), config.n_samples)
    expected: dict[str, tuple[tuple[int, ...], type]] = {"psd": ((config.n_samples // 2 + 1,), np.float64)}
    for split, n in config.split_sizes().items():
        expected[f"{split}/x"] = ((n, *window), np.float32)
        expected[f"{split}/y"] = ((n,), np.int32)
        for name in ("snr", "mass1", "mass2"):
            expected[f"{split}/{name}"] = ((n,), np.float32)
        if config.keep_clean:
            expected[f"{split}/clean"] = ((n, *window), np.float32)
    return expected


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.data)
    return digest.hexdigest()
