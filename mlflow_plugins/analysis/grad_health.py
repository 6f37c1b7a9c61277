"""Gradient health: GRAD_NEVER_UPDATED, GRAD_VANISHING, GRAD_EXPLODING, GRAD_NORM_OUT_OF_RANGE, PARAMS_FROZEN.

Pure: per-step host summaries in, findings out. Adapters feed it, every step, a `GradPresence`
with what they know for free (PyTorch: which gradients are None, a present one may still be all
zero; JAX: which gradients are all zero, flagged inside `jit`, so a present one is known to be
non-zero), and on sampled steps a full `GradSnapshot` from one fused device reduction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..findings import Finding, name_list
from ..thresholds import Thresholds
from .once import report_once
from .rule import Rule
from .snapshot import GradSnapshot

TOTAL = "<total>"


@dataclass(frozen=True)
class GradPresence:
    """The cheap per-step view of a set of parameters' gradients.

    Attributes:
        step: the optimizer step.
        names: parameter paths, in the order of the masks.
        no_grad: True where the parameter got no gradient (None, or known all-zero).
        known: True where the step says something about the parameter; elsewhere its count is
            kept (PyTorch knows only None for free: a present gradient may still be zero).
        group: which parameter set (e.g. the optimizer's index), when an adapter watches several.
        frozen: True where the parameter is frozen on purpose (requires_grad=False): no gradient
            is expected there; None: none is.
    """

    step: int
    names: tuple[str, ...]
    no_grad: np.ndarray
    known: np.ndarray
    group: str = ""
    frozen: np.ndarray | None = None

    @classmethod
    def missing(cls, step: int, names: tuple[str, ...], missing: np.ndarray, group: str = "",
                frozen: np.ndarray | None = None) -> "GradPresence":
        """Only "gradient is None" is known; a present gradient is not evidence."""
        return cls(step, names, missing, missing, group, frozen)

    @classmethod
    def zero(cls, step: int, names: tuple[str, ...], zero: np.ndarray, group: str = "") -> "GradPresence":
        """Every parameter is known to have had a non-zero gradient or none."""
        return cls(step, names, zero, np.ones_like(zero, dtype=bool), group)


class GradientHealth(Rule):
    """The four gradient findings, each reported once per place.

    State per parameter group: the observed steps without a gradient since the last observed
    gradient, where that run started, and the recent total norms for the band rule.

    Args:
        thresholds: rule thresholds.
    """

    name, accepts = "gradient_health", (GradPresence, GradSnapshot)

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds

    def init(self) -> dict[str, Any]:
        return {"groups": {}, "reported": frozenset()}

    def update(self, summary: GradPresence | GradSnapshot,
               state: dict[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
        group = self._group(state, summary.names, summary.group)
        frozen, reported = self._frozen(summary, state["reported"])
        if isinstance(summary, GradPresence):
            if not frozen and summary.group in state["groups"] and _changes_nothing(summary, group):
                return [], state  # the healthy step: every gradient present, no count running
            group = _count_no_grad(group, summary.step, summary.no_grad, _expected(summary, summary.known))
            findings, reported = self._never_updated(group, summary.step, reported)
        else:
            no_grad = summary.missing | (summary.l2 == 0)
            group = _count_no_grad(group, summary.step, no_grad, _expected(summary, np.ones_like(no_grad)))
            findings, reported = self._never_updated(group, summary.step, reported)
            for rule in (self._vanishing, self._exploding):
                found, reported = rule(summary, reported)
                findings += found
            found, reported, group = self._out_of_range(summary, group, reported)
            findings += found
        return frozen + findings, {"groups": {**state["groups"], summary.group: group}, "reported": reported}

    @staticmethod
    def _frozen(summary: GradPresence | GradSnapshot, reported: frozenset) -> tuple[list[Finding], frozenset]:
        """PARAMS_FROZEN (information), once per parameter set: parameters frozen on purpose that the
        optimizer holds, a normal way to freeze, named so that a freeze in the wrong place shows."""
        if summary.frozen is None or not summary.frozen.any():
            return [], reported
        names = [n for n, f in zip(summary.names, summary.frozen) if f]
        return report_once(reported, "PARAMS_FROZEN", summary.step, summary.group or "optimizer",
                           {"n_frozen": len(names), "n_params": len(summary.names),
                            "frozen": name_list(names)})

    @staticmethod
    def _group(state: dict[str, Any], names: tuple[str, ...], key: str) -> dict[str, Any]:
        group = state["groups"].get(key)
        if group is None or tuple(group["names"]) != tuple(names):
            n = len(names)
            group = {"names": tuple(names), "no_grad_run": np.zeros(n, np.int64),
                     "first_no_grad": np.full(n, -1, np.int64), "band": ()}
        return group

    def _never_updated(self, group: dict[str, Any], step: int, reported: frozenset) -> tuple[list[Finding], frozenset]:
        findings: list[Finding] = []
        for i in np.flatnonzero(group["no_grad_run"] >= self.t.never_updated_steps):
            found, reported = report_once(
                reported, "GRAD_NEVER_UPDATED", int(group["first_no_grad"][i]), group["names"][i],
                {"steps_without_gradient": int(group["no_grad_run"][i]), "last_step": step})
            findings += found
        return findings, reported

    def _vanishing(self, snap: GradSnapshot, reported: frozenset) -> tuple[list[Finding], frozenset]:
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
                found, reported = report_once(reported, "GRAD_VANISHING", snap.step, layer,
                                              {"mean_abs_grad": mean_abs, "threshold": self.t.vanishing})
                findings += found
        return findings, reported

    def _exploding(self, snap: GradSnapshot, reported: frozenset) -> tuple[list[Finding], frozenset]:
        findings: list[Finding] = []
        total = snap.total_norm
        places = [(TOTAL, total)] if np.isfinite(total) and total > self.t.exploding else []
        big = np.isfinite(snap.l2) & (snap.l2 > self.t.exploding)
        places += [(snap.names[i], float(snap.l2[i])) for i in np.flatnonzero(big)]
        for where, norm in places:
            found, reported = report_once(reported, "GRAD_EXPLODING", snap.step, where,
                                          {"grad_norm": norm, "threshold": self.t.exploding})
            findings += found
        return findings, reported

    def _out_of_range(self, snap: GradSnapshot, group: dict[str, Any],
                      reported: frozenset) -> tuple[list[Finding], frozenset, dict[str, Any]]:
        total = snap.total_norm
        if not np.isfinite(total):
            return [], reported, group
        band = (*group["band"], (snap.step, total))[-self.t.norm_band_window:]
        group = {**group, "band": band}
        if len(band) < self.t.norm_band_window:
            return [], reported, group
        values = np.array([v for _, v in band])
        low, high = self.t.norm_band_low, self.t.norm_band_high
        if not (np.all(values < low) or np.all(values > high)):
            return [], reported, group
        found, reported = report_once(reported, "GRAD_NORM_OUT_OF_RANGE", band[0][0], TOTAL, {
            "median_grad_norm": float(np.median(values)), "band_low": low, "band_high": high,
            "window": self.t.norm_band_window})
        return found, reported, group


def _expected(summary: GradPresence | GradSnapshot, known: np.ndarray) -> np.ndarray:
    """`known`, less the parameters frozen on purpose: a frozen one's missing gradient is no evidence."""
    return known if summary.frozen is None else known & ~summary.frozen


def _changes_nothing(presence: GradPresence, group: dict[str, Any]) -> bool:
    """No parameter lacks a gradient, and no count is running that this step would reset."""
    return not presence.no_grad.any() and (not presence.known.any() or not group["no_grad_run"].any())


def _count_no_grad(group: dict[str, Any], step: int, no_grad: np.ndarray, known: np.ndarray) -> dict[str, Any]:
    """Unknown parameters keep their count; known ones increment or reset."""
    run = group["no_grad_run"]
    start = no_grad & (run == 0)
    return {**group, "first_no_grad": np.where(start, step, group["first_no_grad"]),
            "no_grad_run": np.where(known, np.where(no_grad, run + 1, 0), run)}
