"""MLGWSC-1 files as labelled two-detector windows: read, align, resample, whiten, cut.

MLGWSC-1 (Schäfer et al. 2022, github gwastro/ml-mock-data-challenge-1) writes strain as HDF5
with one group per detector (`H1`, `L1`). Each group holds 1-D datasets, the contiguous
segments, named by their integer GPS start time and carrying the attributes `start_time` [s]
and `delta_t` [s]; both detectors hold the same segments. Injections come in a second HDF5
file of 1-D datasets, one per parameter and one entry per injection: `tc` (GPS merger time),
`mass1`, `mass2`, `distance`, ...
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import h5py
import numpy as np
from scipy.signal import resample_poly

from . import whitening
from .psd import welch_psd

#: Detector groups read from a strain file, in the order of `MLGWSCWindows.x`'s axis 1.
DETECTORS = ("H1", "L1")

_CHUNK = 512  # windows whitened at once: bounds the float64 temporaries on long segments


class MLGWSCFormatError(ValueError):
    """An MLGWSC-1 file is missing, is not HDF5, or is not laid out as the challenge writes it."""


@dataclass(frozen=True)
class MLGWSCWindows:
    """Windows cut from an MLGWSC-1 strain file; the fields of the simulated `Split` plus times.

    Attributes:
        x: (N, 2, n) float32 strain, detectors in `DETECTORS` order; whitened unless asked not to.
        y: (N,) int32, 1 where an injection's `tc` lies in [start, start + window), else 0.
        snr: (N,) float32, all NaN: the files do not record an SNR.
        mass1: (N,) float32 primary mass [solar masses] of that injection; NaN where y == 0.
        mass2: (N,) float32 secondary mass [solar masses]; NaN where y == 0.
        start_times: (N,) float64 GPS time of each window's first sample [s].
    """

    x: np.ndarray
    y: np.ndarray
    snr: np.ndarray
    mass1: np.ndarray
    mass2: np.ndarray
    start_times: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


class _Grid(NamedTuple):
    """How a file's samples become output windows."""

    up: int  # output rate = file rate * up / down
    down: int
    rate: float  # output sample rate [Hz]
    n: int  # samples per window
    step: int  # samples between window starts

    def length(self, n_samples: int) -> int:
        """Samples of a segment after resampling (`resample_poly`'s output length)."""
        return -(-n_samples * self.up // self.down)

    def resample(self, strain: np.ndarray) -> np.ndarray:
        return strain if self.up == self.down else resample_poly(strain, self.up, self.down, axis=-1)


class _Segment(NamedTuple):
    name: str
    start_time: float
    delta_t: float
    n_samples: int


def load_mlgwsc(
    strain_path: str | os.PathLike[str],
    injections_path: str | os.PathLike[str] | None = None,
    *,
    window: float = 1.0,
    stride: float | None = None,
    sample_rate: float | None = None,
    whiten: bool = True,
    f_lower: float = 20.0,
    max_windows: int | None = None,
) -> MLGWSCWindows:
    """Cut an MLGWSC-1 strain file into aligned H1/L1 windows, labelled by injection times.

    Segments are taken in GPS order. Each detector of each segment is resampled if asked, its
    PSD is estimated from the whole segment (median-averaged Welch over `window`-long pieces, so
    a loud injection barely moves it), and its windows are whitened with that PSD.

    Args:
        strain_path: foreground or background strain file.
        injections_path: injection file; without it every label is 0.
        window: window length [s]; a whole number of samples.
        stride: step between window starts [s]; defaults to `window` (no overlap).
        sample_rate: output rate [Hz]; the file's rate times or divided by an integer.
            Defaults to the file's rate.
        whiten: whiten with the segment's PSD; otherwise return raw strain.
        f_lower: the PSD is held constant below this frequency [Hz].
        max_windows: stop after this many windows (the earliest ones).

    Raises:
        MLGWSCFormatError: a file is missing, not HDF5, or malformed (the message names the
            file, the dataset and what was expected), or a segment is too short.
        ValueError: a bad argument.

    Example:
        data = load_mlgwsc("foreground.hdf", "injections.hdf", window=1.0, max_windows=10_000)
        data.x.shape  # (10000, 2, 2048) at the challenge's 2048 Hz
    """
    if not window > 0:
        raise ValueError(f"window={window!r}; allowed: a duration > 0 s")
    stride = window if stride is None else stride
    if not stride > 0:
        raise ValueError(f"stride={stride!r}; allowed: a duration > 0 s, or None for stride = window")
    if max_windows is not None and (type(max_windows) is not int or max_windows < 1):
        raise ValueError(f"max_windows={max_windows!r}; allowed: an integer >= 1, or None for all")
    injections = None if injections_path is None else read_injections(injections_path)
    path = Path(strain_path)
    with _open_hdf5(path) as f:
        segments = _read_segments(f, path)
        grid = _grid(segments[0].delta_t, sample_rate, window, stride)
        if not 0.0 <= f_lower < grid.rate / 2:
            raise ValueError(f"f_lower={f_lower!r}; allowed: 0 <= f_lower < {grid.rate / 2:g} Hz (Nyquist)")
        counts = _window_counts(segments, path, grid, min_samples=grid.n * (2 if whiten else 1), limit=max_windows)
        x = np.empty((sum(counts), len(DETECTORS), grid.n), dtype=np.float32)
        start_times = np.empty(sum(counts), dtype=np.float64)
        offset = 0
        for segment, count in zip(segments, counts):
            if count == 0:
                break
            strain = grid.resample(_read_strain(f, path, segment))
            x[offset : offset + count] = _cut(strain, grid, count, f_lower if whiten else None)
            start_times[offset : offset + count] = segment.start_time + np.arange(count) * grid.step / grid.rate
            offset += count
    y, mass1, mass2 = _labels(start_times, grid.n / grid.rate, injections)
    snr = np.full(len(y), np.nan, dtype=np.float32)
    return MLGWSCWindows(x=x, y=y, snr=snr, mass1=mass1, mass2=mass2, start_times=start_times)


def read_injections(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every dataset of an MLGWSC-1 injection file, by parameter name; `tc` is required.

    Raises:
        MLGWSCFormatError: the file is missing or not HDF5, `tc` is missing or not a 1-D
            numeric dataset, or `mass1`/`mass2` do not have one entry per injection.
    """
    path = Path(path)
    with _open_hdf5(path) as f:
        params = {key: np.asarray(item[()]) for key, item in f.items() if isinstance(item, h5py.Dataset)}
    tc = params.get("tc")
    if tc is None or tc.ndim != 1 or not np.issubdtype(tc.dtype, np.number):
        found = "missing" if tc is None else f"shape {tc.shape}, dtype {tc.dtype}"
        raise MLGWSCFormatError(
            f"{path}: dataset 'tc' is {found}; expected a 1-D numeric dataset of GPS merger times [s]"
        )
    for key in ("mass1", "mass2"):
        if key in params and params[key].shape != tc.shape:
            raise MLGWSCFormatError(
                f"{path}: dataset {key!r} has shape {params[key].shape}; expected {tc.shape}, one entry per 'tc'"
            )
    return params


@contextmanager
def _open_hdf5(path: Path) -> Iterator[h5py.File]:
    """Open read-only, turning a missing or non-HDF5 file into an `MLGWSCFormatError`."""
    if not path.is_file():
        raise MLGWSCFormatError(f"{path}: no such file; expected an MLGWSC-1 HDF5 file")
    if not h5py.is_hdf5(path):
        raise MLGWSCFormatError(f"{path}: not an HDF5 file; expected an MLGWSC-1 HDF5 file")
    with h5py.File(path, "r") as f:
        yield f


def _read_segments(f: h5py.File, path: Path) -> list[_Segment]:
    """The segments both detectors share, checked for alignment, in GPS order."""
    for det in DETECTORS:
        if not isinstance(f.get(det), h5py.Group):
            raise MLGWSCFormatError(
                f"{path}: no group {det!r} (top level holds {sorted(f.keys())}); expected groups {list(DETECTORS)}"
            )
    names = [set(f[det].keys()) for det in DETECTORS]
    if names[0] != names[1] or not names[0]:
        raise MLGWSCFormatError(
            f"{path}: segments only in {DETECTORS[0]}: {sorted(names[0] - names[1])}, only in {DETECTORS[1]}: "
            f"{sorted(names[1] - names[0])}; expected the same non-empty set of segments in both groups"
        )
    segments = []
    for name in names[0]:
        first, second = (_segment_meta(f, path, det, name) for det in DETECTORS)
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
    return sorted(segments, key=lambda segment: segment.start_time)


def _segment_meta(f: h5py.File, path: Path, det: str, name: str) -> _Segment:
    """Start time, sample spacing and length of one detector's segment, validated."""
    item = f[det][name]
    where = f"{path}: dataset '{det}/{name}'"
    if not isinstance(item, h5py.Dataset) or item.ndim != 1 or not np.issubdtype(item.dtype, np.floating):
        found = f"shape {item.shape}, dtype {item.dtype}" if isinstance(item, h5py.Dataset) else "a group"
        raise MLGWSCFormatError(f"{where} is {found}; expected a 1-D floating-point strain series")
    start_time, delta_t = (_float_attr(item, where, key) for key in ("start_time", "delta_t"))
    if not (math.isfinite(delta_t) and delta_t > 0):
        raise MLGWSCFormatError(f"{where}: delta_t = {delta_t!r}; expected a sample spacing > 0 s")
    if not math.isfinite(start_time):
        raise MLGWSCFormatError(f"{where}: start_time = {start_time!r}; expected a finite GPS time [s]")
    return _Segment(name, start_time, delta_t, item.shape[0])


def _float_attr(item: h5py.Dataset, where: str, key: str) -> float:
    try:
        return float(np.asarray(item.attrs[key]).reshape(()))
    except KeyError:
        raise MLGWSCFormatError(
            f"{where}: attribute {key!r} is missing; expected 'start_time' and 'delta_t' [s]"
        ) from None
    except (TypeError, ValueError):
        raise MLGWSCFormatError(
            f"{where}: attribute {key!r} = {item.attrs[key]!r}; expected one number [s]"
        ) from None


def _read_strain(f: h5py.File, path: Path, segment: _Segment) -> np.ndarray:
    """(2, T) float64 strain of one segment, detectors in `DETECTORS` order."""
    strain = np.stack([f[det][segment.name][()] for det in DETECTORS]).astype(np.float64)
    if not np.all(np.isfinite(strain)):
        raise MLGWSCFormatError(f"{path}: segment {segment.name!r} holds NaN or Inf; expected finite strain")
    return strain


def _grid(delta_t: float, sample_rate: float | None, window: float, stride: float) -> _Grid:
    up, down = _resample_factors(1.0 / delta_t, sample_rate)
    rate = up / (down * delta_t)
    return _Grid(up, down, rate, _n_samples(window, rate, "window"), _n_samples(stride, rate, "stride"))


def _resample_factors(file_rate: float, sample_rate: float | None) -> tuple[int, int]:
    """(up, down) taking `file_rate` to `sample_rate` by an integer factor either way."""
    if sample_rate is None or math.isclose(sample_rate, file_rate, rel_tol=1e-9):
        return 1, 1
    if sample_rate > 0:
        ratio = sample_rate / file_rate
        for up, down in ((round(ratio), 1), (1, round(1 / ratio))):
            if up >= 1 and down >= 1 and math.isclose(up / down, ratio, rel_tol=1e-9):
                return up, down
    raise ValueError(
        f"sample_rate={sample_rate!r} Hz; allowed: the file's {file_rate:g} Hz times or divided by an integer "
        f"(e.g. {file_rate / 2:g}, {file_rate * 2:g}), or None"
    )


def _n_samples(seconds: float, rate: float, name: str) -> int:
    n = round(seconds * rate)
    if n < 1 or not math.isclose(n, seconds * rate, rel_tol=0.0, abs_tol=1e-6):
        raise ValueError(
            f"{name}={seconds!r} s; allowed: a whole number of samples at {rate:g} Hz ({1 / rate:g} s each)"
        )
    return n


def _window_counts(
    segments: list[_Segment], path: Path, grid: _Grid, *, min_samples: int, limit: int | None
) -> list[int]:
    """Windows taken from each segment, capped in GPS order at `limit` in all."""
    counts = []
    for segment in segments:
        length = grid.length(segment.n_samples)
        if length < min_samples:
            need = "two windows, for the Welch PSD" if min_samples > grid.n else "one window"
            raise MLGWSCFormatError(
                f"{path}: segment {segment.name!r} has {length} samples at the output rate; "
                f"expected at least {min_samples} ({need})"
            )
        counts.append(1 + (length - grid.n) // grid.step)
    if limit is not None:
        taken = np.minimum(np.cumsum(counts), limit)
        counts = np.diff(taken, prepend=0).tolist()
    return counts


def _cut(strain: np.ndarray, grid: _Grid, count: int, f_lower: float | None) -> np.ndarray:
    """(count, 2, n) float32 windows of a (2, T) segment; whitened with its own PSD unless `f_lower` is None."""
    views = np.lib.stride_tricks.sliding_window_view(strain, grid.n, axis=-1)[:, :: grid.step][:, :count]
    if f_lower is None:
        return views.transpose(1, 0, 2).astype(np.float32)
    out = np.empty((count, len(strain), grid.n), dtype=np.float32)
    for det, series in enumerate(strain):
        psd = welch_psd(series, grid.rate, grid.n, f_lower)
        for lo in range(0, count, _CHUNK):
            out[lo : lo + _CHUNK, det] = whitening.whiten(views[det, lo : lo + _CHUNK], psd, grid.rate)
    return out


def _labels(
    start_times: np.ndarray, duration: float, injections: dict[str, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, mass1, mass2) per window: the earliest injection with start <= tc < start + duration."""
    y = np.zeros(len(start_times), dtype=np.int32)
    masses = [np.full(len(start_times), np.nan, dtype=np.float32) for _ in range(2)]
    if injections is None or injections["tc"].size == 0:
        return y, *masses
    order = np.argsort(injections["tc"], kind="stable")
    tc = injections["tc"][order].astype(np.float64)
    first = np.searchsorted(tc, start_times, side="left")
    hit = first < len(tc)
    hit[hit] = tc[first[hit]] < start_times[hit] + duration
    y[hit] = 1
    for key, out in zip(("mass1", "mass2"), masses):
        if key in injections:
            out[hit] = injections[key][order][first[hit]]
    return y, *masses
