"""MLGWSC-1 files as labelled two-detector windows: read, align, resample, whiten, cut.

The file layout, and how a damaged file is reported, are in `mlgwsc_format`; `mlgwsc_check`
reads a whole file once, block by block, before a run starts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
from scipy.signal import resample_poly

from . import whitening
from .mlgwsc_format import (DETECTORS, MLGWSCFormatError, Segment, injection_datasets, member, open_hdf5, read_all,
                            read_block, read_segments, require_finite)
from .psd import welch_psd

__all__ = ["DETECTORS", "MLGWSCFormatError", "MLGWSCWindows", "load_mlgwsc", "read_injections"]

_CHUNK = 512  # windows whitened at once: bounds the float64 temporaries on long segments


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
        MLGWSCFormatError: a file is missing, not HDF5, damaged (truncated, an unreadable chunk)
            or malformed (the message names the file, the dataset and what was expected), a
            sample is NaN or Inf, a segment is too short, or one is mostly exact zeros.
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
    with open_hdf5(path) as f:
        segments = read_segments(f, path)
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
            where = [f"{path}: dataset '{det}/{segment.name}'" for det in DETECTORS]
            x[offset : offset + count] = _cut(strain, grid, count, f_lower if whiten else None, where=where)
            start_times[offset : offset + count] = segment.start_time + np.arange(count) * grid.step / grid.rate
            offset += count
    y, mass1, mass2 = _labels(start_times, grid.n / grid.rate, injections)
    snr = np.full(len(y), np.nan, dtype=np.float32)
    return MLGWSCWindows(x=x, y=y, snr=snr, mass1=mass1, mass2=mass2, start_times=start_times)


def read_injections(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every dataset of an MLGWSC-1 injection file, by parameter name; `tc` is required.

    Raises:
        MLGWSCFormatError: the file is missing, not HDF5 or damaged, `tc` is missing or not a
            1-D numeric dataset, or `mass1`/`mass2` do not have one entry per injection.
    """
    path = Path(path)
    with open_hdf5(path) as f:
        return {key: read_all(path, dataset) for key, dataset in injection_datasets(f, path).items()}


def _read_strain(f: h5py.File, path: Path, segment: Segment) -> np.ndarray:
    """(2, T) float64 strain of one segment, detectors in `DETECTORS` order."""
    series = []
    for det in DETECTORS:
        dataset = member(f[det], segment.name, path)
        samples = read_block(path, dataset, 0, segment.n_samples, rows=segment.samples,
                             out=np.empty(segment.n_samples, dtype=dataset.dtype))
        require_finite(path, det, segment, 0, samples)
        series.append(samples)
    return np.stack(series).astype(np.float64, copy=False)


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
    segments: list[Segment], path: Path, grid: _Grid, *, min_samples: int, limit: int | None
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


def _cut(strain: np.ndarray, grid: _Grid, count: int, f_lower: float | None, *, where: list[str]) -> np.ndarray:
    """(count, 2, n) float32 windows of a (2, T) segment; whitened with its own PSD unless `f_lower` is None.
    `where[det]` names each detector's dataset in errors."""
    views = np.lib.stride_tricks.sliding_window_view(strain, grid.n, axis=-1)[:, :: grid.step][:, :count]
    if f_lower is None:
        return views.transpose(1, 0, 2).astype(np.float32)
    out = np.empty((count, len(strain), grid.n), dtype=np.float32)
    for det, series in enumerate(strain):
        psd = welch_psd(series, grid.rate, grid.n, f_lower)
        if not np.all(psd > 0):  # whitening would divide by 0: NaN windows, not an error
            raise MLGWSCFormatError(
                f"{where[det]}: its Welch PSD is 0 at {np.sum(~(psd > 0))} of {psd.size} frequencies "
                "(the segment is mostly exact zeros); expected detector strain"
            )
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
