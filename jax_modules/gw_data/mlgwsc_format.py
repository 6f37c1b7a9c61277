"""The MLGWSC-1 file layout, and every HDF5 failure as one line naming the file and the object.

MLGWSC-1 (Schäfer et al. 2022, github gwastro/ml-mock-data-challenge-1) writes strain as HDF5
with one group per detector (`H1`, `L1`). Each group holds 1-D datasets, the contiguous
segments, named by their integer GPS start time and carrying the attributes `start_time` [s]
and `delta_t` [s]; both detectors hold the same segments. Injections come in a second HDF5
file of 1-D datasets, one per parameter and one entry per injection: `tc` (GPS merger time),
`mass1`, `mass2`, `distance`, ...

The loader (`mlgwsc`) and the whole-file check (`mlgwsc_check`) open files, list segments and
read samples only through these functions, so a damaged file fails the same way in both, and
never with an h5py traceback: h5py raises OSError (open, read, a failing filter), KeyError (an
object whose header is unreadable) or RuntimeError (a damaged group index).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import h5py
import numpy as np

__all__ = [
    "DETECTORS",
    "MLGWSCFormatError",
    "Segment",
    "injection_datasets",
    "member",
    "open_hdf5",
    "read_all",
    "read_block",
    "read_segments",
    "require_finite",
]

#: Detector groups read from a strain file, in the order of `MLGWSCWindows.x`'s axis 1.
DETECTORS = ("H1", "L1")

_HDF5_ERRORS = (OSError, KeyError, RuntimeError)
_DAMAGED = "expected an undamaged HDF5 file (truncated or overwritten? copy it again)"


class MLGWSCFormatError(ValueError):
    """An MLGWSC-1 file is missing, is not HDF5, is damaged, or is not laid out as the challenge writes it."""


class Segment(NamedTuple):
    """One contiguous stretch of strain, as both detectors hold it."""

    name: str
    start_time: float  # GPS time of sample 0 [s]
    delta_t: float  # sample spacing [s]
    n_samples: int

    @property
    def end_time(self) -> float:
        """GPS time just past the last sample [s]."""
        return self.start_time + self.n_samples * self.delta_t

    def samples(self, first: int, end: int) -> str:
        """Samples [first, end) in words, with their GPS times, for error messages."""
        t0, t1 = self.start_time + first * self.delta_t, self.start_time + (end - 1) * self.delta_t
        return f"samples {first} to {end - 1} (GPS {t0:.4f} to {t1:.4f})"


def _reason(exc: BaseException) -> str:
    """h5py's own words on one line (a KeyError's str() would quote them)."""
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return " ".join(text.split()) or type(exc).__name__


@contextmanager
def open_hdf5(path: Path) -> Iterator[h5py.File]:
    """Open read-only; a missing, non-HDF5, truncated or otherwise unreadable file is an `MLGWSCFormatError`."""
    if not path.is_file():
        raise MLGWSCFormatError(f"{path}: no such file; expected an MLGWSC-1 HDF5 file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
        f = h5py.File(path, "r") if is_hdf5 else None
    except OSError as exc:
        raise MLGWSCFormatError(
            f"{path}: cannot be opened as HDF5 ({_reason(exc)}); expected a complete, undamaged HDF5 file"
        ) from None
    if f is None:
        raise MLGWSCFormatError(f"{path}: not an HDF5 file; expected an MLGWSC-1 HDF5 file")
    with f:
        try:
            yield f
        except (OSError, RuntimeError) as exc:  # damage met outside `member`/`read_block`, e.g. a group index
            raise MLGWSCFormatError(f"{path}: HDF5 structure cannot be read ({_reason(exc)}); {_DAMAGED}") from None


def member(parent: h5py.Group, name: str, path: Path) -> h5py.Group | h5py.Dataset | None:
    """`parent[name]`, or None where there is no such link; a damaged object is an `MLGWSCFormatError`."""
    where = f"{parent.name.rstrip('/')}/{name}".lstrip("/")
    try:
        return parent[name] if name in parent else None
    except _HDF5_ERRORS as exc:
        raise MLGWSCFormatError(f"{path}: '{where}' cannot be read ({_reason(exc)}); {_DAMAGED}") from None


def read_block(
    path: Path,
    dataset: h5py.Dataset,
    first: int,
    end: int,
    *,
    rows: Callable[[int, int], str] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Rows [first, end) of `dataset`, into `out` (a reused buffer of that length) when given.

    An unreadable stretch (a chunk whose filter fails, an I/O error) is an `MLGWSCFormatError`
    naming the dataset and the first unreadable chunk, described by `rows(first, end)`
    (default: "entries first to end - 1").
    """
    try:
        if out is None:
            return dataset[first:end]
        dataset.read_direct(out, np.s_[first:end], np.s_[0 : end - first])
        return out
    except _HDF5_ERRORS as exc:
        first, end, exc = _first_unreadable(dataset, first, end, exc)
        describe = rows or (lambda a, b: f"entries {a} to {b - 1}")
        raise MLGWSCFormatError(
            f"{path}: dataset '{dataset.name.lstrip('/')}': {describe(first, end)} cannot be read "
            f"({_reason(exc)}); {_DAMAGED}"
        ) from None


def _first_unreadable(dataset: h5py.Dataset, first: int, end: int, exc: BaseException) -> tuple[int, int, BaseException]:
    """The first chunk of [first, end) that fails to read, so the message points at the damage."""
    if dataset.chunks is None:
        return first, end, exc
    step, lo = dataset.chunks[0], first
    while lo < end:
        hi = min(end, (lo // step + 1) * step)
        try:
            dataset[lo:hi]
        except _HDF5_ERRORS as chunk_exc:
            return lo, hi, chunk_exc
        lo = hi
    return first, end, exc


def read_all(path: Path, dataset: h5py.Dataset) -> np.ndarray:
    """The whole of a (small) dataset, through `read_block` so damage reads as one line."""
    if dataset.shape is None or dataset.ndim == 0:
        try:
            return np.asarray(dataset[()])
        except _HDF5_ERRORS as exc:
            raise MLGWSCFormatError(
                f"{path}: dataset '{dataset.name.lstrip('/')}' cannot be read ({_reason(exc)}); {_DAMAGED}"
            ) from None
    return np.asarray(read_block(path, dataset, 0, dataset.shape[0]))


def require_finite(path: Path, det: str, segment: Segment, first: int, samples: np.ndarray) -> None:
    """Raise naming the first NaN or Inf of `samples`, which start at sample `first` of `det`'s `segment`."""
    finite = np.isfinite(samples)
    if finite.all():
        return
    i = int(np.argmin(finite))
    time = segment.start_time + (first + i) * segment.delta_t
    raise MLGWSCFormatError(
        f"{path}: dataset '{det}/{segment.name}': sample {first + i} (GPS {time:.4f}) is {samples[i]}; "
        "expected finite strain"
    )


def read_segments(f: h5py.File, path: Path) -> list[Segment]:
    """The segments both detectors share, checked for alignment and overlap, in GPS order."""
    groups = []
    for det in DETECTORS:
        group = member(f, det, path)
        if not isinstance(group, h5py.Group):
            raise MLGWSCFormatError(
                f"{path}: no group {det!r} (top level holds {sorted(f.keys())}); expected groups {list(DETECTORS)}"
            )
        groups.append(group)
    names = [set(group.keys()) for group in groups]
    if names[0] != names[1] or not names[0]:
        raise MLGWSCFormatError(
            f"{path}: segments only in {DETECTORS[0]}: {sorted(names[0] - names[1])}, only in {DETECTORS[1]}: "
            f"{sorted(names[1] - names[0])}; expected the same non-empty set of segments in both groups"
        )
    segments = []
    for name in names[0]:
        first, second = (_segment_meta(group, path, name) for group in groups)
        for field in ("start_time", "delta_t", "n_samples"):
            if getattr(first, field) != getattr(second, field):
                raise MLGWSCFormatError(
                    f"{path}: segment {name!r} has {field} {getattr(first, field)!r} in {DETECTORS[0]} but "
                    f"{getattr(second, field)!r} in {DETECTORS[1]}; expected aligned segments"
                )
        segments.append(first)
    delta_ts = sorted({segment.delta_t for segment in segments})
    if len(delta_ts) > 1:
        raise MLGWSCFormatError(f"{path}: segments have delta_t {delta_ts}; expected one sample rate per file")
    segments.sort(key=lambda segment: segment.start_time)
    for before, after in zip(segments, segments[1:]):
        if after.start_time < before.end_time - before.delta_t / 2:
            raise MLGWSCFormatError(
                f"{path}: segment {after.name!r} starts at GPS {after.start_time:.4f}, before segment "
                f"{before.name!r} ends at {before.end_time:.4f}; expected disjoint segments"
            )
    return segments


def _segment_meta(group: h5py.Group, path: Path, name: str) -> Segment:
    """Start time, sample spacing and length of one detector's segment, validated."""
    item = member(group, name, path)
    where = f"{path}: dataset '{group.name.lstrip('/')}/{name}'"
    if not isinstance(item, h5py.Dataset) or item.ndim != 1 or not np.issubdtype(item.dtype, np.floating):
        found = f"shape {item.shape}, dtype {item.dtype}" if isinstance(item, h5py.Dataset) else "a group"
        raise MLGWSCFormatError(f"{where} is {found}; expected a 1-D floating-point strain series")
    start_time, delta_t = (_float_attr(item, where, key) for key in ("start_time", "delta_t"))
    if not (math.isfinite(delta_t) and delta_t > 0):
        raise MLGWSCFormatError(f"{where}: delta_t = {delta_t!r}; expected a sample spacing > 0 s")
    if not math.isfinite(start_time):
        raise MLGWSCFormatError(f"{where}: start_time = {start_time!r}; expected a finite GPS time [s]")
    return Segment(name, start_time, delta_t, item.shape[0])


def _float_attr(item: h5py.Dataset, where: str, key: str) -> float:
    try:
        value = item.attrs[key]
    except KeyError:
        raise MLGWSCFormatError(
            f"{where}: attribute {key!r} is missing; expected 'start_time' and 'delta_t' [s]"
        ) from None
    except (OSError, RuntimeError) as exc:
        raise MLGWSCFormatError(f"{where}: attribute {key!r} cannot be read ({_reason(exc)}); {_DAMAGED}") from None
    try:
        return float(np.asarray(value).reshape(()))
    except (TypeError, ValueError):
        raise MLGWSCFormatError(f"{where}: attribute {key!r} = {value!r}; expected one number [s]") from None


def injection_datasets(f: h5py.File, path: Path) -> dict[str, h5py.Dataset]:
    """The top-level datasets of an injection file by parameter name, checked from metadata alone:
    `tc` a 1-D numeric dataset, `mass1`/`mass2` (where present) one entry per `tc`."""
    datasets = {}
    for key in f.keys():
        item = member(f, key, path)
        if isinstance(item, h5py.Dataset):
            datasets[key] = item
    tc = datasets.get("tc")
    if tc is None or tc.ndim != 1 or not np.issubdtype(tc.dtype, np.number):
        found = "missing" if tc is None else f"shape {tc.shape}, dtype {tc.dtype}"
        raise MLGWSCFormatError(
            f"{path}: dataset 'tc' is {found}; expected a 1-D numeric dataset of GPS merger times [s]"
        )
    for key in ("mass1", "mass2"):
        if key in datasets and datasets[key].shape != tc.shape:
            raise MLGWSCFormatError(
                f"{path}: dataset {key!r} has shape {datasets[key].shape}; expected {tc.shape}, one entry per 'tc'"
            )
        if key in datasets and not np.issubdtype(datasets[key].dtype, np.number):
            raise MLGWSCFormatError(
                f"{path}: dataset {key!r} has dtype {datasets[key].dtype}; expected numbers [solar masses]"
            )
    return datasets
