"""Whole-file checks of MLGWSC-1 strain and injection files, read once, block by block.

`load_mlgwsc` reads a segment when it reaches it, so a check that cuts one window never sees a
NaN, a zero-filled stretch or an unreadable chunk later in the file: the run would die there,
after minutes. These checks read every sample of every segment of both detectors once, in
blocks of bounded size (aligned to the file's chunks), and raise the loader's one-line
`MLGWSCFormatError` at the first problem, naming the file, the dataset (detector/segment), the
sample and its GPS time. Cost: one sequential read of the file; memory: one block.

Example:
    strain = check_strain("foreground.hdf")
    check_injections("injections.hdf", strain)  # each tc readable and finite, some inside the strain
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .mlgwsc_format import (DETECTORS, MLGWSCFormatError, Segment, injection_datasets, member, open_hdf5, read_all,
                            read_block, read_segments, require_finite)

__all__ = ["StrainSummary", "check_injections", "check_strain"]

#: Samples read at once: 8 MiB of float64, small next to any segment worth training on.
BLOCK_SAMPLES = 1 << 20

_FINITE = {"tc": "GPS merger times [s]", "mass1": "masses [solar masses]", "mass2": "masses [solar masses]"}


@dataclass(frozen=True)
class StrainSummary:
    """What `check_strain` read: every segment, in GPS order, readable and finite in both detectors."""

    path: Path
    segments: tuple[Segment, ...]

    @property
    def seconds(self) -> float:
        """Strain per detector [s]."""
        return sum(segment.n_samples * segment.delta_t for segment in self.segments)

    def inside(self, times: np.ndarray) -> np.ndarray:
        """Which GPS `times` lie in a segment, [start_time, end_time)."""
        starts = np.array([segment.start_time for segment in self.segments])
        ends = np.array([segment.end_time for segment in self.segments])
        i = np.searchsorted(starts, times, side="right") - 1
        return (i >= 0) & (times < ends[np.maximum(i, 0)])


def check_strain(
    path: str | os.PathLike[str], *, block_samples: int = BLOCK_SAMPLES, zero_run_s: float = 2.0
) -> StrainSummary:
    """Read every sample of an MLGWSC-1 strain file once and raise at the first problem.

    Checks the layout the loader relies on (`mlgwsc_format.read_segments`), then each segment of
    each detector: every sample readable, finite, and no run of exact zeros `zero_run_s` long or
    longer (detector noise is never exactly 0 for that long: such a run is a zero-filled stretch
    of an incomplete copy, and whitens to NaN once it fills most of a segment).

    Args:
        path: the strain file.
        block_samples: samples read at once (rounded to whole chunks of a chunked dataset).
        zero_run_s: the shortest run of exact zeros that is refused [s].

    Raises:
        MLGWSCFormatError: the first problem, in one line naming the file, the dataset and where.
        ValueError: a bad argument.
    """
    if type(block_samples) is not int or block_samples < 1:
        raise ValueError(f"block_samples={block_samples!r}; allowed: an integer >= 1")
    if not (isinstance(zero_run_s, (int, float)) and zero_run_s > 0 and math.isfinite(zero_run_s)):
        raise ValueError(f"zero_run_s={zero_run_s!r}; allowed: a finite duration > 0 s")
    path = Path(path)
    with open_hdf5(path) as f:
        segments = read_segments(f, path)
        for segment in segments:
            for det in DETECTORS:
                dataset = member(f[det], segment.name, path)
                _check_series(path, dataset, det, segment, block_samples, math.ceil(zero_run_s / segment.delta_t))
    return StrainSummary(path, tuple(segments))


def _check_series(path: Path, dataset: h5py.Dataset, det: str, segment: Segment, block: int, min_run: int) -> None:
    """One detector's segment, block by block through one reused buffer."""
    block = _whole_chunks(block, dataset)
    buffer = np.empty(min(block, segment.n_samples), dtype=dataset.dtype)
    mask = np.empty(len(buffer), dtype=bool)  # reused: a fresh 1 MiB temporary per block costs page faults
    last_nonzero = -1  # index of the latest nonzero sample: a zero run may span blocks
    for first in range(0, segment.n_samples, block):
        end = min(first + block, segment.n_samples)
        samples = read_block(path, dataset, first, end, rows=segment.samples, out=buffer[: end - first])
        if not np.isfinite(samples, out=mask[: end - first]).all():
            require_finite(path, det, segment, first, samples)  # raises, naming the first
        if np.equal(samples, 0, out=mask[: end - first]).any():
            last_nonzero = _zero_runs(path, det, segment, first, samples, last_nonzero, min_run)
        else:  # the usual block: no zero at all, so a run from the previous block ends here
            if first - last_nonzero - 1 >= min_run:
                _refuse_zeros(path, det, segment, last_nonzero + 1, first)
            last_nonzero = end - 1
    if segment.n_samples - last_nonzero - 1 >= min_run:
        _refuse_zeros(path, det, segment, last_nonzero + 1, segment.n_samples)


def _whole_chunks(block: int, dataset: h5py.Dataset) -> int:
    """`block` rounded down to whole chunks (at least one), so no chunk is decompressed twice."""
    return block if dataset.chunks is None else max(1, block // dataset.chunks[0]) * dataset.chunks[0]


def _zero_runs(
    path: Path, det: str, segment: Segment, first: int, samples: np.ndarray, last_nonzero: int, min_run: int
) -> int:
    """Raise on a run of >= `min_run` zeros that ends in this block (which holds a zero); the new `last_nonzero`."""
    nonzero = first + np.flatnonzero(samples)
    if nonzero.size == 0:
        return last_nonzero
    bounds = np.concatenate(([last_nonzero], nonzero))
    long = np.flatnonzero(np.diff(bounds) - 1 >= min_run)
    if long.size:
        _refuse_zeros(path, det, segment, int(bounds[long[0]]) + 1, int(bounds[long[0] + 1]))
    return int(nonzero[-1])


def _refuse_zeros(path: Path, det: str, segment: Segment, first: int, end: int) -> None:
    raise MLGWSCFormatError(
        f"{path}: dataset '{det}/{segment.name}': {segment.samples(first, end)} are all exactly 0 "
        f"({(end - first) * segment.delta_t:g} s); expected detector strain (a zero-filled stretch: an incomplete copy?)"
    )


def check_injections(
    path: str | os.PathLike[str], strain: StrainSummary | None = None, *, block_samples: int = BLOCK_SAMPLES
) -> int:
    """Read every dataset of an MLGWSC-1 injection file once; the number of its merger times in `strain`
    (all of them without `strain`).

    Checks the layout the loader relies on (`mlgwsc_format.injection_datasets`), that every entry
    of every dataset reads, that `tc`, `mass1` and `mass2` are finite, and, given the strain
    file's summary, that at least one `tc` lies inside its segments (else this is another data
    set's injection file, and every window would be labelled 0).

    Raises:
        MLGWSCFormatError: the first problem, in one line naming the file and the dataset.
        ValueError: a bad argument.
    """
    if type(block_samples) is not int or block_samples < 1:
        raise ValueError(f"block_samples={block_samples!r}; allowed: an integer >= 1")
    path = Path(path)
    inside, low, high = 0, math.inf, -math.inf
    with open_hdf5(path) as f:
        datasets = injection_datasets(f, path)
        for key, dataset in datasets.items():
            if dataset.shape is None or dataset.ndim == 0:  # a scalar: nothing to stream
                read_all(path, dataset)
                continue
            block = _whole_chunks(block_samples, dataset)
            for first in range(0, dataset.shape[0], block):
                values = read_block(path, dataset, first, min(first + block, dataset.shape[0]))
                if key in _FINITE:
                    _require_finite_entries(path, key, first, values)
                if key == "tc" and values.size:
                    low, high = min(low, float(values.min())), max(high, float(values.max()))
                    inside += int(strain.inside(values).sum()) if strain is not None else values.size
        n = datasets["tc"].shape[0]
    if strain is not None and inside == 0:
        times = f" (GPS {low:.1f} to {high:.1f})" if n else ""
        span = f"GPS {strain.segments[0].start_time:.1f} to {strain.segments[-1].end_time:.1f}"
        raise MLGWSCFormatError(
            f"{path}: none of its {n} merger times 'tc'{times} lies in a segment of {strain.path} ({span}, "
            f"{len(strain.segments)} segments); expected the injection file of that strain file"
        )
    return inside


def _require_finite_entries(path: Path, key: str, first: int, values: np.ndarray) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        i = int(np.argmin(finite))
        raise MLGWSCFormatError(
            f"{path}: dataset {key!r}: entry {first + i} is {values[i]}; expected finite {_FINITE[key]}"
        )
