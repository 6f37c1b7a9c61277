"""Detection statistics of a binary GW classifier: ROC AUC, sensitivity at a false-alarm rate,
and detection efficiency versus SNR. Pure numpy, so they can be tested on known scores."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["roc_auc", "roc_curve", "threshold_at_far", "far_resolved", "tpr_at_far", "EfficiencyCurve",
           "efficiency_vs_snr", "snr_at_efficiency"]


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape}; allowed: two 1-D arrays of one length")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels hold values other than 0 and 1; allowed: 0 (noise) and 1 (signal)")
    if labels.min(initial=1) == 1 or labels.max(initial=0) == 0:
        raise ValueError("labels hold one class only; allowed: both noise (0) and signal (1) examples")
    return scores, labels.astype(bool)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a signal > score of a noise example), ties counting half."""
    scores, positive = _check(scores, labels)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    ranks[order] = np.repeat(start + (counts + 1) / 2.0, counts)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-alarm rate, true-positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
    scores, positive = _check(scores, labels)
    order = np.argsort(-scores, kind="mergesort")
    hits, ranked = np.cumsum(positive[order]), scores[order]
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    tp, fp = hits[last_of_tie], (np.arange(1, len(scores) + 1) - hits)[last_of_tie]
    return np.r_[0.0, fp / (~positive).sum()], np.r_[0.0, tp / positive.sum()]


def threshold_at_far(noise_scores: np.ndarray, far: float) -> float:
    """The lowest threshold whose false-alarm rate on `noise_scores` (fraction strictly above) is <= `far`.

    With fewer than 1/far noise examples the rate cannot be resolved: the threshold is then the
    loudest noise score, whose false-alarm rate (0) is only bounded by 1/len(noise_scores).
    """
    if not 0.0 < far < 1.0:
        raise ValueError(f"far={far!r} is out of range; allowed: 0 < far < 1")
    noise = np.sort(np.asarray(noise_scores, dtype=np.float64))[::-1]
    if noise.size == 0:
        raise ValueError("noise_scores is empty; allowed: at least one noise example")
    allowed = int(np.floor(far * noise.size))  # noise examples that may lie above the threshold
    return float(noise[allowed]) if allowed < noise.size else float(noise[-1])


def far_resolved(n_noise: int, far: float) -> bool:
    """Whether `n_noise` noise examples can measure a false-alarm rate of `far` (at least 1/far)."""
    return n_noise * far >= 1.0


def tpr_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> tuple[float, bool]:
    """Fraction of signals above the threshold of `threshold_at_far`, and whether `far` is resolved
    (at least 1/far noise examples)."""
    scores, positive = _check(scores, labels)
    threshold = threshold_at_far(scores[~positive], far)
    return float(np.mean(scores[positive] > threshold)), far_resolved(int((~positive).sum()), far)


@dataclass(frozen=True)
class EfficiencyCurve:
    """Detected fraction of injections per SNR bin, at one threshold."""

    label: str               # what the threshold is, e.g. "false-alarm rate 0.01"
    threshold: float
    bin_edges: np.ndarray
    efficiency: np.ndarray   # NaN where a bin is empty
    counts: np.ndarray

    def stderr(self) -> np.ndarray:
        """Binomial standard error per bin."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(self.efficiency * (1.0 - self.efficiency) / self.counts)


def efficiency_vs_snr(scores: np.ndarray, labels: np.ndarray, snr: np.ndarray, threshold: float,
                      bin_edges: np.ndarray, label: str) -> EfficiencyCurve:
    """Detection efficiency (score > `threshold`) of the injections in each SNR bin."""
    scores, positive = _check(scores, labels)
    snr = np.asarray(snr, dtype=np.float64)
    if snr.shape != scores.shape:
        raise ValueError(f"snr has shape {snr.shape}; allowed: {scores.shape}, like scores")
    n_bins = len(bin_edges) - 1
    which = np.digitize(snr[positive], bin_edges) - 1
    inside = (which >= 0) & (which < n_bins)
    detected = scores[positive] > threshold
    counts = np.bincount(which[inside], minlength=n_bins)
    hits = np.bincount(which[inside], weights=detected[inside], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        efficiency = np.where(counts > 0, hits / counts, np.nan)
    return EfficiencyCurve(label, float(threshold), np.asarray(bin_edges, dtype=np.float64), efficiency, counts)


def snr_at_efficiency(scores: np.ndarray, labels: np.ndarray, snr: np.ndarray, threshold: float,
                      target: float = 0.5) -> float:
    """The SNR at which `target` of the injections score above `threshold`: a logistic curve
    sigmoid(a + b SNR) fitted to every injection's detected/missed by maximum likelihood (Newton's
    method), solved for `target`. NaN when the curve does not rise with SNR (nothing, or
    everything, detected), since the crossing is then not measured.

    Raises:
        ValueError: `target` outside (0, 1), or `snr` not shaped like `scores`.
    """
    if not 0 < target < 1:
        raise ValueError(f"target={target!r} is not allowed; allowed: a number in (0, 1)")
    scores, positive = _check(scores, labels)
    snr = np.asarray(snr, dtype=np.float64)
    if snr.shape != scores.shape:
        raise ValueError(f"snr has shape {snr.shape}; allowed: {scores.shape}, like scores")
    x, hit = snr[positive], (scores[positive] > threshold).astype(np.float64)
    if not 0 < hit.sum() < len(hit):
        return math.nan
    centre, scale = x.mean(), x.std() or 1.0
    design = np.stack([np.ones_like(x), (x - centre) / scale], axis=1)
    coef = np.zeros(2)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-design @ coef))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, design.T @ (hit - p))
        coef += step
        if np.max(np.abs(step)) < 1e-10:
            break
    a, b = coef
    if not b > 0:
        return math.nan
    return float(centre + scale * (math.log(target / (1 - target)) - a) / b)
