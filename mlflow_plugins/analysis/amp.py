"""AMP_STEPS_SKIPPED: the gradient scaler skipped too many steps, or its scale collapsed."""

from __future__ import annotations

from collections import deque

from ..findings import Finding, Severity
from ..thresholds import Thresholds
from .once import ReportOnce

SCALER = "grad_scaler"
SCALE = "grad_scaler.scale"


class AmpSkips:
    """Watches the loss scale step by step.

    A skip is counted against the whole window (skips / amp_window), so the few skips of the
    scaler's calibration at the start of training do not read as a high fraction of a short run.
    A scale below `amp_min_scale` means float16 overflows even unscaled: that is critical.
    """

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds
        self.window: deque[bool] = deque(maxlen=thresholds.amp_window)
        self.skipped_total = 0
        self._once = ReportOnce()

    def observe(self, step: int, scale: float, skipped: bool) -> list[Finding]:
        self.window.append(bool(skipped))
        self.skipped_total += int(skipped)
        skipped_in_window = sum(self.window)
        evidence = {"skipped_in_window": skipped_in_window, "window": self.t.amp_window,
                    "skipped_total": self.skipped_total, "scale": float(scale)}
        findings = []
        if scale < self.t.amp_min_scale:
            findings += self._once("AMP_STEPS_SKIPPED", step, SCALE,
                                  {**evidence, "min_scale": self.t.amp_min_scale}, Severity.CRITICAL)
        if skipped_in_window / self.t.amp_window > self.t.amp_skip_fraction:
            findings += self._once("AMP_STEPS_SKIPPED", step, SCALER, evidence)
        return findings

    def state_dict(self) -> dict:
        return {"window": list(self.window), "skipped_total": self.skipped_total,
                "reported": self._once.state()}

    def load_state_dict(self, state: dict) -> None:
        self.window = deque((bool(s) for s in state["window"]), maxlen=self.t.amp_window)
        self.skipped_total = int(state["skipped_total"])
        self._once = ReportOnce(state["reported"])
