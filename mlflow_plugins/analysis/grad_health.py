"""Gradient health: GRAD_NEVER_UPDATED, GRAD_VANISHING, GRAD_EXPLODING, GRAD_NORM_OUT_OF_RANGE.

Pure: per-step host summaries in, findings out. Adapters feed it, every step, what they know
for free: `observe_missing` (PyTorch: which gradients are None; a present one may still be all
zero) or `observe_zero` (JAX: which gradients are all zero, flagged inside `jit`, so a present
one is known to be non-zero); and `observe` on sampled steps (a full `GradSnapshot` from one
fused device reduction).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..findings import Finding
from ..thresholds import Thresholds
from .once import ReportOnce
from .snapshot import GradSnapshot

TOTAL = "<total>"


class GradientHealth:
    """Stateful detector of the four gradient findings; each is reported once per place.

    Args:
        names: parameter paths the optimizer holds, in the order of every observation.
        thresholds: rule thresholds.
    """

    def __init__(self, names: tuple[str, ...], thresholds: Thresholds) -> None:
        self.names = tuple(names)
        self.t = thresholds
        # Observed steps without a gradient since the last observed gradient, per parameter.
        self.no_grad_run = np.zeros(len(self.names), dtype=np.int64)
        self.first_no_grad = np.full(len(self.names), -1, dtype=np.int64)
        self.band: list[tuple[int, float]] = []
        self._once = ReportOnce()

    def observe_missing(self, step: int, missing: np.ndarray) -> list[Finding]:
        """A step where only "gradient is None" is known; a present gradient is not evidence."""
        self._count_no_grad(step, missing, seen=missing)
        return self._never_updated(step)

    def observe_zero(self, step: int, no_grad: np.ndarray) -> list[Finding]:
        """A step where every parameter is known to have had a non-zero gradient or none."""
        self._count_no_grad(step, no_grad, seen=np.ones_like(no_grad))
        return self._never_updated(step)

    def observe(self, snap: GradSnapshot) -> list[Finding]:
        """A fully observed step: every rule is checked."""
        no_grad = snap.missing | (snap.l2 == 0)
        self._count_no_grad(snap.step, no_grad, seen=np.ones_like(no_grad))
        findings = self._never_updated(snap.step)
        findings += self._vanishing(snap)
        findings += self._exploding(snap)
        findings += self._out_of_range(snap)
        return findings

    def state_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "no_grad_run": self.no_grad_run.tolist(),
                "first_no_grad": self.first_no_grad.tolist(), "band": list(self.band),
                "reported": self._once.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["names"]) != self.names:
            raise ValueError("state_dict names do not match the watched parameters")
        self.no_grad_run = np.asarray(state["no_grad_run"], dtype=np.int64)
        self.first_no_grad = np.asarray(state["first_no_grad"], dtype=np.int64)
        self.band = [(int(s), float(v)) for s, v in state["band"]]
        self._once = ReportOnce(state["reported"])

    def _count_no_grad(self, step: int, no_grad: np.ndarray, seen: np.ndarray) -> None:
        # Unseen parameters keep their count; seen ones increment or reset.
        start = no_grad & (self.no_grad_run == 0)
        self.first_no_grad = np.where(start, step, self.first_no_grad)
        self.no_grad_run = np.where(seen, np.where(no_grad, self.no_grad_run + 1, 0),
                                    self.no_grad_run)

    def _never_updated(self, step: int) -> list[Finding]:
        hits = np.flatnonzero(self.no_grad_run >= self.t.never_updated_steps)
        return [f for i in hits for f in self._once(
            "GRAD_NEVER_UPDATED", int(self.first_no_grad[i]), self.names[i],
            {"steps_without_gradient": int(self.no_grad_run[i]), "last_step": step})]

    def _vanishing(self, snap: GradSnapshot) -> list[Finding]:
        """A layer (all parameters of one module) whose mean |grad| is below the threshold.

        Judged per layer, not per parameter: a bias feeding BatchNorm has a ~0 gradient by
        construction while its layer learns. A layer without any gradient is GRAD_NEVER_UPDATED's.
        """
        findings: list[Finding] = []
        for layer, idx in snap.layers().items():
            idx = idx[~snap.missing[idx]]
            if idx.size == 0 or not np.any(snap.l2[idx] > 0):
                continue
            mean_abs = float(np.sum(snap.mean_abs[idx] * snap.numel[idx]) / np.sum(snap.numel[idx]))
            if mean_abs < self.t.vanishing:
                findings += self._once("GRAD_VANISHING", snap.step, layer,
                                       {"mean_abs_grad": mean_abs, "threshold": self.t.vanishing})
        return findings

    def _exploding(self, snap: GradSnapshot) -> list[Finding]:
        findings: list[Finding] = []
        total = snap.total_norm
        if np.isfinite(total) and total > self.t.exploding:
            findings += self._once("GRAD_EXPLODING", snap.step, TOTAL,
                                   {"grad_norm": total, "threshold": self.t.exploding})
        big = np.isfinite(snap.l2) & (snap.l2 > self.t.exploding)
        for i in np.flatnonzero(big):
            findings += self._once("GRAD_EXPLODING", snap.step, snap.names[i],
                                   {"grad_norm": float(snap.l2[i]), "threshold": self.t.exploding})
        return findings

    def _out_of_range(self, snap: GradSnapshot) -> list[Finding]:
        total = snap.total_norm
        if not np.isfinite(total):
            return []
        self.band = (self.band + [(snap.step, total)])[-self.t.norm_band_window:]
        if len(self.band) < self.t.norm_band_window:
            return []
        values = np.array([v for _, v in self.band])
        low, high = self.t.norm_band_low, self.t.norm_band_high
        if not (np.all(values < low) or np.all(values > high)):
            return []
        return self._once("GRAD_NORM_OUT_OF_RANGE", self.band[0][0], TOTAL, {
            "median_grad_norm": float(np.median(values)), "band_low": low, "band_high": high,
            "window": self.t.norm_band_window})
