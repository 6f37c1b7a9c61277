"""NORM_GRAD_ATTENUATION and NORM_ERASES_MAGNITUDE: what a normalization layer does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..findings import Finding
from ..thresholds import Thresholds
from .once import report_once
from .rule import Rule

RECENT = 3  # rules are judged on the median of a module's last few probes


@dataclass(frozen=True)
class NormProbe:
    """One probe of one normalization module on one step.

    Attributes:
        grad_ratio: |dL/d input| / |dL/d output| (None if no gradient reached the module).
        cv_in / cv_out: coefficient of variation of the per-token (or per-sample) magnitudes of
            the module's input and output.
    """

    step: int
    module: str
    grad_ratio: float | None
    cv_in: float
    cv_out: float


class NormEffect(Rule):
    """Judges each normalization module on the median of its recent probes."""

    name, accepts = "norm_effect", (NormProbe,)

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds

    def init(self) -> dict[str, Any]:
        return {"recent": {}, "reported": frozenset()}

    def update(self, probe: NormProbe, state: dict[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
        recent = (*state["recent"].get(probe.module, ()), (probe.grad_ratio, probe.cv_in, probe.cv_out))[-RECENT:]
        findings, reported = [], state["reported"]
        ratios = [r for r, _, _ in recent if r is not None]
        if ratios and np.isfinite(ratio := float(np.median(ratios))) and ratio < self.t.norm_grad_ratio:
            found, reported = report_once(reported, "NORM_GRAD_ATTENUATION", probe.step, probe.module,
                                          {"grad_ratio": ratio, "threshold": self.t.norm_grad_ratio})
            findings += found
        cv_in = float(np.median([c for _, c, _ in recent]))
        cv_out = float(np.median([c for _, _, c in recent]))
        if cv_in > self.t.magnitude_cv_min and cv_out / cv_in < self.t.magnitude_cv_ratio:
            found, reported = report_once(reported, "NORM_ERASES_MAGNITUDE", probe.step, probe.module, {
                "magnitude_cv_in": cv_in, "magnitude_cv_out": cv_out,
                "threshold": self.t.magnitude_cv_ratio})
            findings += found
        return findings, {"recent": {**state["recent"], probe.module: recent}, "reported": reported}
