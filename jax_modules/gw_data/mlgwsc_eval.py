"""MLGWSC-1's evaluation of a search: false-alarm rate and sensitive distance, from its triggers.

Follows `evaluate.py` of gwastro/ml-mock-data-challenge-1 (Schäfer et al. 2023, section "Evaluation"):
- only injections whose merger time `tc` lies at least 30 s inside a foreground segment count
  (`find_injection_times`, padding 30 s), and the duration is the foreground's total;
- a foreground event is a true positive when the injection closest to it in time is within the
  event's `var` (`get_stats`: `diff <= fgevents[2]`);
- the false-alarm rate at a threshold is the number of background events with a larger `stat`
  divided by the duration; the curve has one point per background event (its stat the threshold);
- an injection is found at a threshold when a true-positive event for it has a larger `stat`. Here
  each injection is counted once (the challenge counts true-positive events, so two events near
  one injection would count it twice; with clustered triggers the two agree);
- sensitive volume V = V_max / (N w_max) * sum over found injections of w, V_max = 4/3 pi d_max^3
  (d_max the largest luminosity distance among the counted injections). With a `chirp_distance`
  dataset (the challenge draws chirp distance uniformly in volume, so the luminosity distance reach
  scales as M_c^(5/6)), w = M_c^(5/2) and w_max = max M_c^(5/2); without one, injections are taken
  as uniform in volume and w = 1. The sensitive distance is the radius of a sphere of volume V.
  Its Monte-Carlo error is V_max / (N w_max) sqrt(N Var(w found)) (the challenge's for w = 1);
- rates per month use the challenge's month of 30 days.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import h5py
import numpy as np

from .chirp import chirp_mass
from .mlgwsc import read_injections
from .mlgwsc_format import MLGWSCFormatError, open_hdf5, read_segments
from .triggers import read_triggers

__all__ = ["SECONDS_PER_MONTH", "EVAL_PADDING_S", "Sensitivity", "SensitivityPoint", "evaluate_files", "found_stat",
           "injections_inside", "sensitivity", "write_sensitivity"]

SECONDS_PER_MONTH = 30 * 24 * 3600.0
EVAL_PADDING_S = 30.0


def injections_inside(tc: np.ndarray, spans: Sequence[tuple[float, float]], padding: float = EVAL_PADDING_S) -> np.ndarray:
    """Which merger times lie in [start + padding, end - padding] of one of the (start, end) `spans`."""
    tc = np.asarray(tc, dtype=np.float64)
    inside = np.zeros(tc.shape, dtype=bool)
    for start, end in spans:
        inside |= (tc >= start + padding) & (tc <= end - padding)
    return inside


def found_stat(time: np.ndarray, stat: np.ndarray, var: np.ndarray, tc: np.ndarray) -> np.ndarray:
    """(n_injections,) the largest `stat` of the true-positive events of each injection (-inf: none).

    An event is a true positive of the injection closest to it in time, when within its `var`.
    """
    time, stat, var = (np.asarray(a, dtype=np.float64) for a in (time, stat, var))
    tc = np.asarray(tc, dtype=np.float64)
    best = np.full(tc.shape, -np.inf)
    if tc.size == 0 or time.size == 0:
        return best
    order = np.argsort(tc, kind="stable")
    sorted_tc = tc[order]
    right = np.clip(np.searchsorted(sorted_tc, time), 0, len(tc) - 1)
    left = np.clip(right - 1, 0, len(tc) - 1)
    # the challenge's `find_closest_index`: the earlier one only when strictly closer
    closest = np.where(np.abs(sorted_tc[left] - time) < np.abs(sorted_tc[right] - time), left, right)
    hit = np.abs(sorted_tc[closest] - time) <= var
    np.maximum.at(best, order[closest[hit]], stat[hit])
    return best


class SensitivityPoint(NamedTuple):
    """The curve at one false-alarm rate: NaN everywhere when the background cannot resolve it."""

    far_per_month: float  # the rate asked for
    resolved: bool        # the background is long enough: at least one false alarm allowed
    threshold: float
    measured_far_per_month: float
    found_fraction: float
    volume: float         # [Mpc^3]
    distance: float       # [Mpc]


@dataclass(frozen=True)
class Sensitivity:
    """The sensitivity curve: one point per background event, thresholds ascending (FAR descending)."""

    threshold: np.ndarray
    far: np.ndarray            # false alarms per second
    n_found: np.ndarray
    volume: np.ndarray         # [Mpc^3]
    volume_error: np.ndarray
    duration: float            # [s] of background
    n_injections: int

    @property
    def far_per_month(self) -> np.ndarray:
        return self.far * SECONDS_PER_MONTH

    @property
    def distance(self) -> np.ndarray:
        """Sensitive distance [Mpc]: radius of the sphere of the sensitive volume."""
        return (3.0 * self.volume / (4.0 * np.pi)) ** (1.0 / 3.0)

    @property
    def found_fraction(self) -> np.ndarray:
        return self.n_found / max(self.n_injections, 1)

    def at_far(self, far_per_month: float) -> SensitivityPoint:
        """The point at the lowest threshold whose false-alarm rate is at most `far_per_month`.

        Resolved only when the background allows at least one false alarm at that rate
        (duration x rate >= 1); otherwise every value is NaN.
        """
        nan = SensitivityPoint(far_per_month, False, *(math.nan,) * 5)
        if self.duration * far_per_month / SECONDS_PER_MONTH < 1.0 or self.threshold.size == 0:
            return nan
        i = int(np.argmax(self.far_per_month <= far_per_month))  # far descends along the curve
        if not self.far_per_month[i] <= far_per_month:
            return nan
        return SensitivityPoint(far_per_month, True, float(self.threshold[i]), float(self.far_per_month[i]),
                                float(self.found_fraction[i]), float(self.volume[i]), float(self.distance[i]))


def sensitivity(foreground: Mapping[str, np.ndarray], background_stat: np.ndarray,
                injections: Mapping[str, np.ndarray], duration: float) -> Sensitivity:
    """The challenge's sensitivity curve (see the module docstring).

    Args:
        foreground: `time`, `stat`, `var` of the events on the foreground data.
        background_stat: `stat` of the events on the background data.
        injections: the counted injections: `tc`, `distance` [Mpc], and for chirp-distance weighting
            `chirp_distance`, `mass1`, `mass2`.
        duration: seconds of background data.

    Raises:
        ValueError: no injection, a non-positive duration, or distances that are not positive.
    """
    tc = np.asarray(injections["tc"], dtype=np.float64)
    distance = np.asarray(injections["distance"], dtype=np.float64)
    if tc.size == 0:
        raise ValueError("no injection to evaluate against; allowed: at least one injection inside the foreground")
    if not duration > 0:
        raise ValueError(f"duration={duration!r}; allowed: > 0 s")
    if not np.all(np.isfinite(distance) & (distance > 0)):
        raise ValueError("injection distances are not all positive and finite; allowed: luminosity distances > 0 Mpc")
    if "chirp_distance" in injections:
        weight = chirp_mass(injections["mass1"], injections["mass2"]) ** 2.5
    else:
        weight = np.ones(tc.shape)
    n = tc.size
    prefactor = (4.0 / 3.0) * np.pi * distance.max() ** 3 / (weight.max() * n)
    best = found_stat(foreground["time"], foreground["stat"], foreground["var"], tc)
    threshold = np.sort(np.asarray(background_stat, dtype=np.float64))
    far = (threshold.size - np.searchsorted(threshold, threshold, side="right")) / duration
    order = np.argsort(best)
    ranked_best, ranked_weight = best[order], weight[order]
    # found above threshold k: the injections ranked after searchsorted(best, threshold, 'right')
    cut = np.searchsorted(ranked_best, threshold, side="right")
    sum_w = np.concatenate([np.cumsum(ranked_weight[::-1])[::-1], [0.0]])[cut]
    sum_w2 = np.concatenate([np.cumsum(ranked_weight[::-1] ** 2)[::-1], [0.0]])[cut]
    variance = np.maximum(sum_w2 / n - (sum_w / n) ** 2, 0.0)
    return Sensitivity(threshold=threshold, far=far, n_found=n - cut, volume=prefactor * sum_w,
                       volume_error=prefactor * np.sqrt(n * variance), duration=float(duration), n_injections=n)


def evaluate_files(injections: str | os.PathLike[str], foreground: str | os.PathLike[str],
                   foreground_triggers: str | os.PathLike[str], background_triggers: str | os.PathLike[str],
                   background: str | os.PathLike[str] | None = None) -> Sensitivity:
    """The sensitivity curve of a search from the challenge's files, checked against each other.

    Args:
        injections: the injection file (`tc`, `distance`, `mass1`, `mass2`, optionally `chirp_distance`).
        foreground: the foreground strain file (its segments say which injections count, and the
            duration when `background` is not given, as the challenge assumes both equally long).
        foreground_triggers, background_triggers: the search's trigger files on each.
        background: the background strain file, whose duration then sets the false-alarm rate.

    Raises:
        MLGWSCFormatError: a file is unusable, or the files do not belong together (no injection 30 s
            inside the foreground's segments, triggers outside the strain they claim to come from);
            the message names the file.
    """
    fg_spans = _spans(Path(foreground))
    bg_spans = _spans(Path(background)) if background is not None else fg_spans
    params = read_injections(injections)
    if "distance" not in params or np.shape(params["distance"]) != np.shape(params["tc"]):
        raise MLGWSCFormatError(f"{injections}: dataset 'distance' is missing or not one entry per 'tc'; expected "
                                "luminosity distances [Mpc] (an MLGWSC-1 injection file)")
    counted = injections_inside(params["tc"], fg_spans)
    if not counted.any():
        n = len(params["tc"])
        span = f"GPS {min(s for s, _ in fg_spans):.1f} to {max(e for _, e in fg_spans):.1f}"
        raise MLGWSCFormatError(f"{injections}: none of its {n} merger times lies {EVAL_PADDING_S:g} s inside a "
                                f"segment of {foreground} ({span}); expected the injection file of that strain file")
    fg = _triggers_within(Path(foreground_triggers), fg_spans, Path(foreground))
    bg = _triggers_within(Path(background_triggers), bg_spans, Path(background or foreground))
    keys = ("tc", "distance") + (("chirp_distance", "mass1", "mass2") if "chirp_distance" in params else ())
    duration = sum(end - start for start, end in bg_spans)
    return sensitivity(fg, bg["stat"], {k: np.asarray(params[k], dtype=np.float64)[counted] for k in keys}, duration)


def _spans(path: Path) -> list[tuple[float, float]]:
    """(GPS start, end) of each segment of a strain file (metadata only)."""
    with open_hdf5(path) as f:
        return [(s.start_time, s.end_time) for s in read_segments(f, path)]


def _triggers_within(path: Path, spans: list[tuple[float, float]], strain: Path) -> dict[str, np.ndarray]:
    """The triggers of `path`, refused when one lies outside every segment of `strain` (another file's)."""
    triggers = read_triggers(path)
    outside = ~injections_inside(triggers["time"], spans, padding=0.0)
    if outside.any():
        t = triggers["time"][np.argmax(outside)]
        raise MLGWSCFormatError(f"{path}: {int(outside.sum())} triggers lie outside the segments of {strain} (the first "
                                f"at GPS {t:.3f}); expected the triggers of a search of that file")
    return triggers


def write_sensitivity(path: str | os.PathLike[str], curve: Sensitivity, attrs: Mapping[str, object] | None = None) -> None:
    """The curve as an HDF5 file (datasets named as the challenge's output, plus `threshold` and
    `far-per-month`), written under a temporary name and renamed when complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            for name, values in (("threshold", curve.threshold), ("far", curve.far),
                                 ("far-per-month", curve.far_per_month), ("sensitive-volume", curve.volume),
                                 ("sensitive-volume-error", curve.volume_error),
                                 ("sensitive-distance", curve.distance), ("sensitive-fraction", curve.found_fraction),
                                 ("found", curve.n_found)):
                f.create_dataset(name, data=values)
            f.attrs.update({"duration": curve.duration, "injections": curve.n_injections,
                            "seconds_per_month": SECONDS_PER_MONTH, **dict(attrs or {})})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
