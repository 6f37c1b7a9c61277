"""NORM_GRAD_ATTENUATION and NORM_ERASES_MAGNITUDE: what a normalization layer does."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np

from ..findings import Finding
from ..thresholds import Thresholds
from .once import ReportOnce

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


class NormEffect:
    """Judges each normalization module on the median of its recent probes."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds
        self.recent: dict[str, deque[NormProbe]] = defaultdict(lambda: deque(maxlen=RECENT))
        self._once = ReportOnce()

    def observe(self, probe: NormProbe) -> list[Finding]:
        recent = self.recent[probe.module]
        recent.append(probe)
        findings: list[Finding] = []
        ratios = [p.grad_ratio for p in recent if p.grad_ratio is not None]
        if ratios and np.isfinite(ratio := float(np.median(ratios))) and ratio < self.t.norm_grad_ratio:
            findings += self._once("NORM_GRAD_ATTENUATION", probe.step, probe.module,
                                   {"grad_ratio": ratio, "threshold": self.t.norm_grad_ratio})
        cv_in = float(np.median([p.cv_in for p in recent]))
        cv_out = float(np.median([p.cv_out for p in recent]))
        if cv_in > self.t.magnitude_cv_min and cv_out / cv_in < self.t.magnitude_cv_ratio:
            findings += self._once("NORM_ERASES_MAGNITUDE", probe.step, probe.module, {
                "magnitude_cv_in": cv_in, "magnitude_cv_out": cv_out,
                "threshold": self.t.magnitude_cv_ratio})
        return findings
