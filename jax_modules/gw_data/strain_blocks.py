"""An MLGWSC-1 strain file read block by block, with context on either side, for searches over hours.

A search never holds more than one block of a segment (plus the context its detector needs before
and after it): each segment is cut into consecutive blocks of `block` samples, the *cores*; a block's
PSD is estimated from `block` samples of its own (the last block of a segment, which may be
shorter, takes the segment's last `block` samples), and the samples read are the core, its context
and its PSD stretch, clipped to the segment. So results do not depend on what was read before, and
memory is bounded by `block + before + after` samples per detector whatever the file's length.

Gaps (time between consecutive segments) are not filled: each segment is searched on its own, and
the plan says how many gaps there are and how long. Segments too short to search are skipped and
listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from .mlgwsc_format import DETECTORS, MLGWSCFormatError, Segment, member, read_block, read_segments

__all__ = ["Block", "StrainPlan", "iter_blocks", "plan_strain"]


@dataclass(frozen=True)
class StrainPlan:
    """The segments of a strain file, in GPS order, split into those searched and those skipped."""

    path: Path
    sample_rate: float
    searched: tuple[Segment, ...]
    skipped: tuple[Segment, ...]        # shorter than the search's minimum
    gaps: tuple[tuple[float, float], ...]  # (GPS start, GPS end) of the time between segments

    @property
    def seconds(self) -> float:
        """Strain per detector in all segments [s]."""
        return sum(s.n_samples * s.delta_t for s in (*self.searched, *self.skipped))

    @property
    def searched_seconds(self) -> float:
        return sum(s.n_samples * s.delta_t for s in self.searched)

    @property
    def gap_seconds(self) -> float:
        return sum(end - start for start, end in self.gaps)


def plan_strain(f: h5py.File, path: Path, *, sample_rate: float, min_seconds: float) -> StrainPlan:
    """The file's segments (`mlgwsc_format.read_segments`: aligned, disjoint, one rate), checked to
    be at `sample_rate`; segments under `min_seconds` are skipped.

    Raises:
        MLGWSCFormatError: the layout is wrong, or the file's rate is not `sample_rate` (it is not
            resampled: a detector trained at one rate is not run on data at another).
    """
    segments = read_segments(f, path)
    rate = 1.0 / segments[0].delta_t
    if not math.isclose(rate, sample_rate, rel_tol=1e-9):
        raise MLGWSCFormatError(
            f"{path}: strain sampled at {rate:g} Hz (delta_t = {segments[0].delta_t!r} s); expected {sample_rate:g} Hz, "
            "the rate the detector was trained at (resample the file first)")
    gaps = tuple((before.end_time, after.start_time) for before, after in zip(segments, segments[1:])
                 if after.start_time - before.end_time > before.delta_t / 2)
    short = [s.n_samples * s.delta_t < min_seconds for s in segments]
    return StrainPlan(path, rate, tuple(s for s, k in zip(segments, short) if not k),
                      tuple(s for s, k in zip(segments, short) if k), gaps)


@dataclass(frozen=True)
class Block:
    """One block of a segment: `strain` holds samples [first, first + strain.shape[1]) of both detectors.

    Attributes:
        core: the samples [lo, hi) of the segment this block is responsible for.
        psd_span: the samples [lo, hi) its PSD is estimated from.
    """

    segment: Segment
    first: int
    strain: np.ndarray  # (2, m) float64, detectors in DETECTORS order
    core: tuple[int, int]
    psd_span: tuple[int, int]

    def psd_strain(self) -> np.ndarray:
        """(2, k) the samples of `psd_span`."""
        lo, hi = self.psd_span
        return self.strain[:, lo - self.first:hi - self.first]

    def time(self, sample: np.ndarray | int) -> np.ndarray:
        """GPS time of segment sample index `sample` [s]."""
        return self.segment.start_time + np.asarray(sample) * self.segment.delta_t


def iter_blocks(f: h5py.File, path: Path, segment: Segment, *, block: int, before: int = 0,
                after: int = 0) -> Iterator[Block]:
    """The blocks of `segment` in order (see the module docstring); each reads at most
    block + before + after samples per detector.

    Raises:
        MLGWSCFormatError: a stretch cannot be read (damage); the message names the dataset and samples.
        ValueError: block < 1 or negative context.
    """
    if block < 1 or before < 0 or after < 0:
        raise ValueError(f"block={block}, before={before}, after={after}; allowed: block >= 1, before, after >= 0")
    n = segment.n_samples
    datasets = [member(f[det], segment.name, path) for det in DETECTORS]
    for lo in range(0, n, block):
        core = (lo, min(lo + block, n))
        psd_span = (lo, lo + block) if lo + block <= n else (max(0, n - block), n)
        first, end = max(0, min(core[0] - before, psd_span[0])), min(n, max(core[1] + after, psd_span[1]))
        strain = np.empty((len(DETECTORS), end - first), dtype=np.float64)
        for row, dataset in zip(strain, datasets):
            read_block(path, dataset, first, end, rows=segment.samples, out=row)  # HDF5 converts float32
        yield Block(segment, first, strain, core, psd_span)
