"""Search triggers: clustered in time, and written in the MLGWSC-1 trigger format.

MLGWSC-1 (Schäfer et al. 2023, `evaluate.py` of gwastro/ml-mock-data-challenge-1) reads a search's
events from an HDF5 file with three 1-D datasets of one length: `time` (GPS time of the candidate
merger [s]), `stat` (ranking statistic, larger is more significant) and `var` (how far from an
injection's merger time the event may lie and still count as finding it [s]). The challenge asks for
clustered events; here a trigger is kept when it is the loudest within +/- `window` seconds (ties go
to the earliest), the rule PyCBC's time clustering applies, which does not depend on the order or
batching in which triggers arrive.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from .mlgwsc_format import MLGWSCFormatError, member, open_hdf5, read_all

__all__ = ["TRIGGER_DATASETS", "Clusterer", "TriggerWriter", "cluster_triggers", "read_triggers"]

TRIGGER_DATASETS = ("time", "stat", "var")


class Clusterer:
    """Keeps the triggers that are the loudest within +/- `window` s, fed in time order in batches.

    `push(times, stats, horizon)` takes triggers (times ascending, after every earlier push) and the
    earliest time a later trigger can have; it returns the kept triggers it can decide already (those
    whose whole neighbourhood is known). `flush()` decides the rest. Holds only the triggers of the
    last 2 `window` s before `horizon`: memory does not grow with the data.

    Raises:
        ValueError: window <= 0, or times out of order.
    """

    def __init__(self, window: float) -> None:
        if not window > 0:
            raise ValueError(f"window={window!r} is out of range; allowed: a duration > 0 s")
        self.window = float(window)
        self._times, self._stats = np.zeros(0), np.zeros(0)
        self._decided = 0  # leading triggers already decided (kept for their neighbours' sake)

    def push(self, times: np.ndarray, stats: np.ndarray, horizon: float) -> tuple[np.ndarray, np.ndarray]:
        times, stats = np.asarray(times, dtype=np.float64), np.asarray(stats, dtype=np.float64)
        if times.shape != stats.shape or times.ndim != 1:
            raise ValueError(f"times {times.shape} and stats {stats.shape}; allowed: two 1-D arrays of one length")
        last = self._times[-1] if self._times.size else -np.inf
        if np.any(np.diff(times) < 0) or (times.size and times[0] < last):
            raise ValueError("times are out of order; allowed: ascending, after every trigger pushed before")
        self._times, self._stats = np.concatenate([self._times, times]), np.concatenate([self._stats, stats])
        ready = int(np.searchsorted(self._times, horizon - self.window, side="left"))
        kept = [i for i in range(self._decided, ready) if self._is_peak(i)]
        self._decided = max(self._decided, ready)
        out = self._times[kept], self._stats[kept]
        drop = min(int(np.searchsorted(self._times, horizon - 2 * self.window, side="left")), self._decided)
        self._times, self._stats, self._decided = self._times[drop:], self._stats[drop:], self._decided - drop
        return out

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """The kept triggers not returned yet; the clusterer is then empty."""
        out = self.push(np.zeros(0), np.zeros(0), np.inf)
        self._times, self._stats, self._decided = np.zeros(0), np.zeros(0), 0
        return out

    def _is_peak(self, i: int) -> bool:
        t, s = self._times[i], self._stats[i]
        lo = int(np.searchsorted(self._times, t - self.window, side="left"))
        hi = int(np.searchsorted(self._times, t + self.window, side="right"))
        return bool(np.all(self._stats[lo:i] < s) and np.all(self._stats[i + 1:hi] <= s))


def cluster_triggers(times: np.ndarray, stats: np.ndarray, window: float) -> tuple[np.ndarray, np.ndarray]:
    """The triggers that are the loudest within +/- `window` s (ties: the earliest); times ascending."""
    clusterer = Clusterer(window)
    clusterer.push(times, stats, -np.inf)
    return clusterer.flush()


class TriggerWriter:
    """Writes a trigger file under a temporary name, appended batch by batch; renamed into place when
    the block completes, removed if it raises (so no half-written file is ever left under `path`).

    Example:
        with TriggerWriter("triggers.hdf", {"detector": "models:/cpc-snn-gw@champion"}) as out:
            out.append(times, stats, var=0.275)
    """

    def __init__(self, path: str | os.PathLike[str], attrs: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._attrs = dict(attrs or {})
        self._file: h5py.File | None = None
        self.count = 0

    def __enter__(self) -> "TriggerWriter":
        self._file = h5py.File(self._tmp, "w")
        for name in TRIGGER_DATASETS:
            self._file.create_dataset(name, shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(4096,))
        self._file.attrs.update(self._attrs)
        return self

    def append(self, times: np.ndarray, stats: np.ndarray, var: float) -> None:
        """Add triggers (one `var` for all of them)."""
        n = len(times)
        if n == 0:
            return
        for name, values in zip(TRIGGER_DATASETS, (times, stats, np.full(n, var))):
            dataset = self._open()[name]
            dataset.resize((self.count + n,))
            dataset[self.count:] = values
        self.count += n

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Attributes of the file (e.g. what the search read), set before it is closed."""
        self._open().attrs.update(dict(attrs))

    def _open(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError("TriggerWriter is used outside its with block; allowed: inside `with TriggerWriter(...)`")
        return self._file

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        try:
            if self._file is not None:
                self._file.close()
            if kind is None:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)


def read_triggers(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """`time`, `stat`, `var` of a trigger file, checked: 1-D, one length, finite, var >= 0.

    Raises:
        MLGWSCFormatError: one line naming the file and the dataset.
    """
    path = Path(path)
    with open_hdf5(path) as f:
        out = {}
        for name in TRIGGER_DATASETS:
            item = member(f, name, path)
            if not isinstance(item, h5py.Dataset) or item.ndim != 1 or not np.issubdtype(item.dtype, np.number):
                found = "missing" if item is None else (f"shape {item.shape}, dtype {item.dtype}"
                                                        if isinstance(item, h5py.Dataset) else "a group")
                raise MLGWSCFormatError(f"{path}: dataset {name!r} is {found}; expected 1-D numeric datasets "
                                        f"{list(TRIGGER_DATASETS)} of one length (an MLGWSC-1 trigger file)")
            out[name] = np.asarray(read_all(path, item), dtype=np.float64)
    lengths = {name: len(values) for name, values in out.items()}
    if len(set(lengths.values())) != 1:
        raise MLGWSCFormatError(f"{path}: datasets have lengths {lengths}; expected one length")
    for name, values in out.items():
        bad = ~np.isfinite(values) | ((values < 0) if name == "var" else False)
        if bad.any():
            i = int(np.argmax(bad))
            raise MLGWSCFormatError(f"{path}: dataset {name!r}: entry {i} is {values[i]}; expected finite values"
                                    + (" >= 0 [s]" if name == "var" else ""))
    return out
