"""AMP for torch: follows a GradScaler's loss scale; a decrease means the step was skipped."""

from __future__ import annotations

from typing import Any

from ..analysis import AmpStep
from ..session import StepReport


class AmpWatch:
    """GradScaler multiplies its scale by `backoff_factor` (< 1) exactly when it found Inf/NaN
    gradients and skipped `optimizer.step()`, so a falling scale counts a skipped step.

    Reading the scale is a host sync, but a GradScaler already syncs on every `step()`.
    """

    def __init__(self, scaler: Any) -> None:
        self.scaler = scaler
        self.skipped_total = 0
        # Before any step this is the scaler's init_scale, so a first-step skip is seen too.
        self._last = float(scaler.get_scale()) if scaler.is_enabled() else None

    def observe(self, step: int) -> StepReport:
        if not self.scaler.is_enabled():
            return StepReport()
        scale = float(self.scaler.get_scale())
        skipped = self._last is not None and scale < self._last
        self._last = scale
        self.skipped_total += int(skipped)
        return StepReport([AmpStep(step, scale, skipped)],
                          {"amp/scale": scale, "amp/skipped": float(self.skipped_total)}, bad=skipped)
