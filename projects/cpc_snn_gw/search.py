"""A search over continuous two-detector strain: slide a detector over an MLGWSC-1 file, block by
block, and write its clustered triggers in the challenge's format (`time`, `stat`, `var`).

The file is first read once whole (`mlgwsc_check.check_strain`: layout, damage, NaN/Inf, zero-filled
stretches, each a one-line error naming the file, dataset and GPS time), then block by block
(`strain_blocks`): memory is bounded by one block whatever the file's length. Each block's PSD is a
median-averaged Welch estimate over `chunk` seconds of its own strain, on the 1 s grid the network
was trained on (as `mlgwsc.load_mlgwsc` estimates it, over a block instead of a whole segment).

Two detectors share the machinery:
- `NetworkScorer`: 1 s windows every `stride` s, each whitened exactly as the training windows were
  (`whitening.whiten`: Tukey taper 0.1 over the window, the PSD on the window's grid), scored by the
  registered model. Its trigger time is the window start plus the middle of the merger range the
  network was trained on (0.6-0.9 s of the window: 0.75 s), and `var` covers that range and one
  stride: 0.15 s + stride (MLGWSC-1's example search does the same with its own range and 0.2 s).
- `MatchedFilterScorer`: the matched filter of `matched_filter.continuous_statistic` over the whole
  whitened block (a template bank as the reference run's), its loudest merger sample per `stride`
  bin; time = that merger's arrival in H1, `var` 0.1 s (the light-travel time and the bank's timing).
Triggers above `threshold` are clustered (`triggers.Clusterer`: the loudest within +/- `cluster` s)
per segment, so gaps between segments are never bridged.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from jax_modules.gw_data.config import GWDataConfig
from jax_modules.gw_data.matched_filter import TemplateBank, continuous_statistic
from jax_modules.gw_data.mlgwsc_check import check_strain
from jax_modules.gw_data.mlgwsc_format import DETECTORS, MLGWSCFormatError, open_hdf5
from jax_modules.gw_data.psd import welch_psd
from jax_modules.gw_data.strain_blocks import Block, iter_blocks, plan_strain
from jax_modules.gw_data.stretch_whitening import whiten_stretch
from jax_modules.gw_data.triggers import Clusterer, TriggerWriter
from jax_modules.gw_data.whitening import whiten
from projects.common.params import ParamError

__all__ = ["SAMPLE_RATE", "MatchedFilterScorer", "NetworkScorer", "SearchConfig", "SearchSummary", "check_searchable",
           "search_file"]

SAMPLE_RATE = 2048.0  # the registered detectors are trained on 1 s windows at 2048 Hz
WINDOW_S = 1.0
F_LOWER = 20.0
#: Segments shorter than this are skipped (and reported): too short for a PSD estimate.
MIN_SEGMENT_S = 16.0
#: The network's training windows hold their merger in this range of the window [s] (GWDataConfig).
TRAINING_MERGERS = (GWDataConfig.merger_min * WINDOW_S, GWDataConfig.merger_max * WINDOW_S)
MF_VAR_S = 0.1
MF_PAD_S = 2.0  # whitening taper and filter settling at each end of a matched-filter stretch


@dataclass(frozen=True)
class SearchConfig:
    """How a file is searched.

    Args:
        threshold: triggers with a larger `stat` are kept (probability for the network, SNR for the
            matched filter).
        stride: seconds between window starts (network) or bins (matched filter); whole samples.
        chunk: seconds searched at once with one PSD estimate; rounded down to whole strides.
        cluster: of triggers within +/- `cluster` s only the loudest is kept.

    Raises:
        ParamError: a value out of range (the message names it).
    """

    threshold: float
    stride: float = 0.125
    chunk: float = 128.0
    cluster: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise ParamError("threshold", self.threshold, "a finite number")
        steps = self.stride * SAMPLE_RATE
        if not (1 <= steps <= SAMPLE_RATE and abs(steps - round(steps)) < 1e-9):
            raise ParamError("stride", self.stride, f"a whole number of samples at {SAMPLE_RATE:g} Hz from "
                             f"{1 / SAMPLE_RATE:g} to {WINDOW_S:g} s, e.g. 0.125 or 0.25")
        if not 2 * WINDOW_S <= self.chunk <= 3600.0:
            raise ParamError("chunk", self.chunk, f"a number of seconds from {2 * WINDOW_S:g} to 3600")
        if not 0 < self.cluster <= 60.0:
            raise ParamError("cluster", self.cluster, "a number of seconds > 0 and <= 60")

    @property
    def step(self) -> int:
        """Samples between window starts."""
        return round(self.stride * SAMPLE_RATE)

    @property
    def block(self) -> int:
        """Samples per block: `chunk` rounded down to whole strides."""
        return max(1, int(self.chunk * SAMPLE_RATE) // self.step) * self.step


class Scorer(Protocol):
    """A detector run over blocks: candidate (GPS times, stats) of the block's core, time ascending."""

    name: str
    var: float    # the trigger's tolerance [s]
    before: int   # samples of context it needs before a block's core
    after: int

    def score(self, block: Block, psd: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class NetworkScorer:
    """The registered network over 1 s windows every `config.stride` s, each whitened as in training.

    Args:
        predict: (N, 2, 2048) float32 whitened windows -> (N,) probabilities (the pyfunc's `predict`).
        name: what the triggers came from (the model URI).
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], config: SearchConfig, name: str) -> None:
        self.name, self._predict, self._step = name, predict, config.step
        self._n = round(WINDOW_S * SAMPLE_RATE)
        self._peak = round(sum(TRAINING_MERGERS) / 2 * SAMPLE_RATE)
        self.var = (TRAINING_MERGERS[1] - TRAINING_MERGERS[0]) / 2 + config.stride
        self.before, self.after = 0, self._n
        self.windows = 0  # scored so far

    def score(self, block: Block, psd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = block.core
        starts = np.arange(-(-lo // self._step) * self._step, hi, self._step)
        starts = starts[starts + self._n <= block.segment.n_samples]
        if starts.size == 0:
            return np.zeros(0), np.zeros(0)
        x = np.empty((len(starts), len(DETECTORS), self._n), dtype=np.float32)
        for d, series in enumerate(block.strain):
            views = np.lib.stride_tricks.sliding_window_view(series, self._n)[starts - block.first]
            x[:, d] = whiten(views, psd[d], SAMPLE_RATE)
        stats = np.asarray(self._predict(x), dtype=np.float64).reshape(-1)
        self.windows += len(starts)
        return block.time(starts + self._peak), stats


class MatchedFilterScorer:
    """The matched filter over each whitened block: the loudest merger sample per stride bin.

    Args:
        bank: whitened templates on the 2048 Hz grid (`reference`'s bank, any template length).
    """

    def __init__(self, bank: TemplateBank, config: SearchConfig, name: str = "matched filter") -> None:
        if not math.isclose(bank.sample_rate, SAMPLE_RATE):
            raise ValueError(f"bank.sample_rate={bank.sample_rate}; allowed: {SAMPLE_RATE:g} Hz")
        self.name, self._bank, self._step, self.var = name, bank, config.step, MF_VAR_S
        self._pad = round(MF_PAD_S * SAMPLE_RATE)
        self._m, self._n = bank.merger_index, bank.templates.shape[-1]
        self.before, self.after = self._m + self._pad, self._n - self._m + self._pad
        self.windows = 0  # merger samples searched so far

    def score(self, block: Block, psd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = block.core
        end = block.first + block.strain.shape[1]
        t0 = max(lo, block.first + self._pad + self._m)  # merger samples whose template lies untapered
        t1 = min(hi, end - self._pad - (self._n - self._m) + 1)
        if t1 <= t0:
            return np.zeros(0), np.zeros(0)
        white = whiten_stretch(block.strain, psd, SAMPLE_RATE, self._pad)
        stat = continuous_statistic(white, self._bank)[t0 - self._m - block.first:t1 - self._m - block.first]
        self.windows += t1 - t0
        # The loudest merger sample of each stride bin (bins aligned to the segment start).
        b0, b1 = t0 // self._step, -(-t1 // self._step)
        padded = np.full((b1 - b0) * self._step, -np.inf)
        padded[t0 - b0 * self._step:t1 - b0 * self._step] = stat
        bins = padded.reshape(b1 - b0, self._step)
        best = np.argmax(bins, axis=1)
        samples = (b0 + np.arange(b1 - b0)) * self._step + best
        return block.time(samples), bins[np.arange(len(bins)), best]


@dataclass
class SearchSummary:
    """What a search read, found and how fast."""

    detector: str
    strain: Path
    output: Path
    data_seconds: float       # strain per detector in the file
    searched_seconds: float   # in the segments searched
    wall_seconds: float
    n_triggers: int
    n_segments: int
    skipped: list[str] = field(default_factory=list)  # segments too short, with their length
    gaps: int = 0
    gap_seconds: float = 0.0
    scored: int = 0           # windows (network) or merger samples (matched filter) scored

    @property
    def speed_ratio(self) -> float:
        """Seconds of strain searched per second of wall time."""
        return self.searched_seconds / self.wall_seconds if self.wall_seconds > 0 else math.inf

    def text(self) -> str:
        lines = [f"{self.detector}: {self.n_triggers} triggers -> {self.output}",
                 f"  searched {self.searched_seconds:g} s of {self.data_seconds:g} s in {self.n_segments} segments "
                 f"in {self.wall_seconds:.1f} s ({self.speed_ratio:.0f}x real time)"]
        if self.gaps:
            lines.append(f"  {self.gaps} gaps between segments ({self.gap_seconds:g} s) skipped")
        if self.skipped:
            lines.append(f"  {len(self.skipped)} segments under {MIN_SEGMENT_S:g} s skipped: {', '.join(self.skipped)}")
        return "\n".join(lines)

    def attrs(self) -> dict[str, object]:
        return {"detector": self.detector, "strain_file": str(self.strain), "data_seconds": self.data_seconds,
                "searched_seconds": self.searched_seconds, "segments": self.n_segments,
                "skipped_segments": len(self.skipped), "gaps": self.gaps, "gap_seconds": self.gap_seconds}


def search_file(strain: str | os.PathLike[str], scorer: Scorer, config: SearchConfig,
                output: str | os.PathLike[str], progress: Callable[[float], object] | None = None) -> SearchSummary:
    """Search `strain` with `scorer`; write the clustered triggers to `output` (replaced only when complete).

    Args:
        progress: called with the seconds of strain done after each block.

    Raises:
        MLGWSCFormatError: the strain file is unusable (layout, damage, NaN/Inf, zero-filled stretch,
            a sample rate other than 2048 Hz, a PSD estimate that is 0 somewhere); no output is left.
    """
    path, output = Path(strain), Path(output)
    start, scored = time.perf_counter(), int(getattr(scorer, "windows", 0))
    check_searchable(path)
    with open_hdf5(path) as f:
        plan = plan_strain(f, path, sample_rate=SAMPLE_RATE, min_seconds=MIN_SEGMENT_S)
        summary = SearchSummary(scorer.name, path, output, plan.seconds, plan.searched_seconds, 0.0, 0,
                                len(plan.searched), [f"{s.name} ({s.n_samples * s.delta_t:g} s)" for s in plan.skipped],
                                len(plan.gaps), plan.gap_seconds)
        attrs = {**summary.attrs(), "stride": config.stride, "chunk": config.chunk, "threshold": config.threshold,
                 "cluster": config.cluster, "var": scorer.var}
        with TriggerWriter(output, attrs) as writer:
            for segment in plan.searched:
                clusterer = Clusterer(config.cluster)
                for block in iter_blocks(f, path, segment, block=config.block, before=scorer.before,
                                         after=scorer.after):
                    times, stats = scorer.score(block, _block_psd(block, path))
                    if not np.all(np.isfinite(stats)):
                        raise RuntimeError(f"{scorer.name} returned non-finite statistics on {path} GPS "
                                           f"{block.time(block.core[0]):.3f} to {block.time(block.core[1]):.3f}")
                    keep = stats > config.threshold
                    writer.append(*clusterer.push(times[keep], stats[keep], float(block.time(block.core[1]))),
                                  var=scorer.var)
                    if progress is not None:
                        progress((block.core[1] - block.core[0]) * segment.delta_t)
                writer.append(*clusterer.flush(), var=scorer.var)
            summary.n_triggers = writer.count
            summary.wall_seconds = time.perf_counter() - start
            summary.scored = int(getattr(scorer, "windows", 0)) - scored
            writer.set_attrs({"wall_seconds": summary.wall_seconds})
    return summary


def check_searchable(path: Path) -> None:
    """Read the whole strain file once (`check_strain`: layout, damage, NaN/Inf, zero-filled stretches)
    and check its sample rate, so a search fails before it starts rather than hours in.

    Raises:
        MLGWSCFormatError: the first problem, one line naming the file, dataset and GPS time.
    """
    check_strain(path)
    with open_hdf5(path) as f:
        plan_strain(f, path, sample_rate=SAMPLE_RATE, min_seconds=MIN_SEGMENT_S)


def _block_psd(block: Block, path: Path) -> np.ndarray:
    """(2, 1025) Welch PSD of each detector over the block's PSD stretch (1 s segments, median)."""
    n = round(WINDOW_S * SAMPLE_RATE)
    psd = np.stack([welch_psd(series, SAMPLE_RATE, n, F_LOWER) for series in block.psd_strain()])
    for det, row in zip(DETECTORS, psd):
        if not np.all(row > 0):
            lo, hi = block.psd_span
            raise MLGWSCFormatError(
                f"{path}: dataset '{det}/{block.segment.name}': the PSD of {block.segment.samples(lo, hi)} is 0 at "
                f"{int(np.sum(~(row > 0)))} frequencies; expected detector strain")
    return psd
