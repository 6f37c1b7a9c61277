"""GRAD_NOT_RESET: gradients that are not cleared between optimizer steps.

Pure: `GradReset`s in, findings out. An adapter looks, after a sampled optimizer step, at each
gradient just before the next backward adds to it: cleared (None or all zero) is healthy,
whatever happens afterwards (accumulating over k micro-batches adds to a cleared gradient);
still holding values means the step's gradient was never reset, and every later step applies the
sum of all earlier gradients. One observation is the evidence: no count is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..findings import Finding, name_list
from .once import report_once
from .rule import Rule


@dataclass(frozen=True)
class GradReset:
    """What the first backward after a sampled optimizer step found in each gradient.

    Attributes:
        step: the optimizer step the gradients were not cleared after.
        names: parameter paths.
        stale: True where the gradient still held values when the backward added to it.
        checked: True where a backward reached the parameter (others say nothing).
        group: which parameter set, when an adapter watches several.
    """

    step: int
    names: tuple[str, ...]
    stale: np.ndarray
    checked: np.ndarray
    group: str = ""


class GradientsReset(Rule):
    """GRAD_NOT_RESET, once per parameter set, naming the stale gradients."""

    name, accepts = "gradients_reset", (GradReset,)

    def init(self) -> frozenset:
        return frozenset()

    def update(self, seen: GradReset, reported: frozenset) -> tuple[list[Finding], frozenset]:
        stale = seen.stale & seen.checked
        if not stale.any():
            return [], reported
        names = [n for n, s in zip(seen.names, stale) if s]
        return report_once(reported, "GRAD_NOT_RESET", seen.step, seen.group or "optimizer", {
            "n_stale": len(names), "n_params": int(seen.checked.sum()),
            "params": name_list(names)})
