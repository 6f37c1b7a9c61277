"""AMP_STEPS_SKIPPED: the gradient scaler skipped too many steps, or its scale collapsed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..findings import Finding, Severity
from ..thresholds import Thresholds
from .once import report_once
from .rule import Rule

SCALER = "grad_scaler"
SCALE = "grad_scaler.scale"


@dataclass(frozen=True)
class AmpStep:
    """The loss scale after one optimizer step, and whether the scaler skipped that step."""

    step: int
    scale: float
    skipped: bool


class AmpSkips(Rule):
    """Watches the loss scale step by step.

    A skip is counted against the whole window (skips / amp_window), so the few skips of the
    scaler's calibration at the start of training do not read as a high fraction of a short run.
    A scale below `amp_min_scale` means float16 overflows even unscaled: that is critical.
    """

    name, accepts = "amp_skips", (AmpStep,)

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds

    def init(self) -> dict[str, Any]:
        return {"window": (), "skipped_total": 0, "reported": frozenset()}

    def update(self, amp: AmpStep, state: dict[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
        window = (*state["window"], bool(amp.skipped))[-self.t.amp_window:]
        skipped_total = state["skipped_total"] + int(amp.skipped)
        evidence = {"skipped_in_window": sum(window), "window": self.t.amp_window,
                    "skipped_total": skipped_total, "scale": float(amp.scale)}
        findings, reported = [], state["reported"]
        if amp.scale < self.t.amp_min_scale:
            found, reported = report_once(reported, "AMP_STEPS_SKIPPED", amp.step, SCALE,
                                          {**evidence, "min_scale": self.t.amp_min_scale},
                                          Severity.CRITICAL)
            findings += found
        if sum(window) / self.t.amp_window > self.t.amp_skip_fraction:
            found, reported = report_once(reported, "AMP_STEPS_SKIPPED", amp.step, SCALER, evidence)
            findings += found
        return findings, {"window": window, "skipped_total": skipped_total, "reported": reported}
