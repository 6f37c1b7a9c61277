"""UPDATES_NOT_APPLIED: parameters that get a gradient but do not change across optimizer steps.

Pure: `UpdateSnapshot`s in (measured on sampled steps, and on the steps right after one that
found a parameter still), findings out. A parameter is "still" on a measured step when its
gradient does not vanish (RMS above the `vanishing` threshold) and its relative update
`||Δw|| / ||w||` is at most `update_ratio_min`; it is reported when it has stayed still on every
measured step for `update_stall_steps` optimizer steps. Adam's tiny early steps are far above the
ratio (an update of ~lr per element), and accumulation (`optax.MultiSteps`, or PyTorch's
`step()` every k micro-batches) moves the parameters within k steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..findings import Finding, Severity
from ..thresholds import Thresholds
from .once import report_once
from .rule import Rule
from .snapshot import layers


@dataclass(frozen=True)
class UpdateSnapshot:
    """One measured optimizer step's updates, on the host.

    Attributes:
        step: the optimizer step.
        names: parameter paths.
        update: per-parameter ||Δw|| across this step (for a parameter the optimizer does not hold:
            the change of ||w|| since the previous measurement); NaN where not measured.
        weight: per-parameter ||w|| (after the step).
        grad: per-parameter gradient L2 norm of the step (0 where missing).
        numel: elements per parameter.
        held: True where the optimizer holds the parameter.
        lr: each parameter's learning rate where the adapter knows it, else NaN.
        held_none: the optimizer holds none of the model's trainable parameters.
        group: which parameter set, when an adapter watches several.
        still_since: where the adapter followed every update itself (JAX, inside `jit`): since
            which step each parameter has been still (-1: it is not); None: the rule counts.
    """

    step: int
    names: tuple[str, ...]
    update: np.ndarray
    weight: np.ndarray
    grad: np.ndarray
    numel: np.ndarray
    held: np.ndarray
    lr: np.ndarray
    held_none: bool = False
    group: str = ""
    still_since: np.ndarray | None = None

    def ratio(self) -> np.ndarray:
        """||Δw|| / ||w|| (against 1 for an all-zero weight); NaN where not measured."""
        return self.update / np.where(self.weight > 0, self.weight, 1.0)

    def still(self, thresholds: Thresholds) -> tuple[np.ndarray, np.ndarray]:
        """(still, moving): parameters whose gradient does not vanish (RMS above `vanishing`) and
        whose relative update is at most / above `update_ratio_min`. Unmeasured: neither."""
        grad_ok = self.grad / np.sqrt(np.maximum(self.numel, 1)) > thresholds.vanishing
        ratio = self.ratio()
        return grad_ok & (ratio <= thresholds.update_ratio_min), grad_ok & (ratio > thresholds.update_ratio_min)


@dataclass(frozen=True)
class BackwardsWithoutStep:
    """Backward passes have kept adding to the gradients without an optimizer step.

    Attributes:
        step: the optimizer steps taken so far.
        backwards: backward passes since the last optimizer step (or since the start).
        most_per_step: the most backward passes any earlier step took (the accumulation seen).
    """

    step: int
    backwards: int
    most_per_step: int


class UpdatesApplied(Rule):
    """UPDATES_NOT_APPLIED, once per layer.

    State per parameter group: since which measured step each parameter is still (-1: it is
    not), and whether it was ever seen moving (a layer that never moved while others do is
    held by the optimizer on purpose, e.g. `optax.set_to_zero`, unless its learning rate is 0:
    information, not a warning).
    """

    name, accepts = "updates_applied", (UpdateSnapshot, BackwardsWithoutStep)

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds

    def init(self) -> dict[str, Any]:
        return {"groups": {}, "reported": frozenset()}

    def update(self, snap: UpdateSnapshot | BackwardsWithoutStep,
               state: dict[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
        if isinstance(snap, BackwardsWithoutStep):
            return self._not_stepping(snap, state)
        group = state["groups"].get(snap.group)
        if group is None or tuple(group["names"]) != snap.names:
            n = len(snap.names)
            group = {"names": snap.names, "still_since": np.full(n, -1, np.int64),
                     "moved": np.zeros(n, dtype=bool)}
        ratio = snap.ratio()
        still, moving = snap.still(self.t)
        counted = snap.still_since if snap.still_since is not None else group["still_since"]
        since = np.where(still, np.where(counted < 0, snap.step, counted), -1)
        moved = group["moved"] | moving
        stalled = still & (snap.step - since >= self.t.update_stall_steps)
        findings, reported = self._report(snap, stalled, since, moved, ratio, state["reported"])
        group = {**group, "still_since": since, "moved": moved}
        return findings, {"groups": {**state["groups"], snap.group: group}, "reported": reported}

    @staticmethod
    def _not_stepping(seen: BackwardsWithoutStep, state: dict[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
        said = (f"{seen.backwards} backward passes since optimizer step "
                f"{seen.step} without a step() (earlier steps took at most {seen.most_per_step}): "
                "a step skipped by a condition?")
        found, reported = report_once(state["reported"], "UPDATES_NOT_APPLIED", seen.step, "optimizer.step()", {
            "backwards": seen.backwards, "most_per_step": seen.most_per_step, "cause": "step() not called"},
            message=said)
        return found, {**state, "reported": reported}

    def _report(self, snap: UpdateSnapshot, stalled: np.ndarray, since: np.ndarray, moved: np.ndarray,
                ratio: np.ndarray, reported: frozenset) -> tuple[list[Finding], frozenset]:
        findings: list[Finding] = []
        if not stalled.any():
            return findings, reported
        others_move = bool((moved & ~stalled).any())
        for layer, idx in layers(snap.names).items():
            idx = idx[stalled[idx]]
            if idx.size == 0:
                continue
            cause, severity = _cause(snap, idx, moved, others_move)
            found, reported = report_once(reported, "UPDATES_NOT_APPLIED", int(since[idx].min()), layer, {
                "grad_norm": float(np.sqrt(np.sum(np.square(snap.grad[idx])))),
                "ratio_max": float(np.nanmax(ratio[idx])), "last_step": snap.step, "cause": cause,
                "lr": float(snap.lr[idx[0]])}, severity)
            findings += found
        return findings, reported


def _cause(snap: UpdateSnapshot, idx: np.ndarray, moved: np.ndarray,
           others_move: bool) -> tuple[str, Severity | None]:
    """Why a layer holds still, as far as the numbers tell; and the severity when not the default."""
    if not snap.held[idx].all():
        if snap.held_none:
            return ("the optimizer holds none of the model's parameters (built for an earlier copy "
                    "of the model, before it was re-created or moved?)"), Severity.CRITICAL
        return "not held by the optimizer (missing from its param groups)", None
    lr = snap.lr[idx]
    if np.all(lr == 0):
        return "learning rate 0 in its param group", None
    if moved[idx].any():
        return "it changed before, then stopped (a schedule that reached 0, a step that no longer applies?)", None
    if others_move:
        return ("held still from the start while other parameters change: frozen by the optimizer "
                "(a learning rate of 0, optax.set_to_zero)?"), Severity.INFO
    return "no parameter changed: is the update applied at all?", None
