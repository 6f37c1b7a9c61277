"""Gradient health for torch parameters: fused statistics in, findings and metrics out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..analysis import GradFlow, GradientHealth, Nonfinite, NonfiniteEvent, grad_metrics
from ..findings import Finding
from ..thresholds import Thresholds
from .grad_stats import GradStats


@dataclass
class StepReport:
    """What one watch saw on one step: new findings, metrics to log, and whether the step is bad."""

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    bad: bool = False


class GradientWatch:
    """Runs before each optimizer step.

    Log steps (every `log_every`) get every statistic from one fused reduction and one host copy,
    and record per-parameter metrics. With `every_step`, the other steps are judged on the L2
    statistics too (norms, non-finite, zero, exploding, band) and record `grad_norm/total`;
    mean |grad| (GRAD_VANISHING) stays on log steps, as its L1 pass costs ~3.5x an L2 pass on
    CPU. Otherwise other steps get only the free "gradient is None" check, unless
    `verdict_every_step` asks for a per-step verdict (non-finite or exploding, one scalar sync) so
    that a policy can skip or stop that very step.
    """

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], thresholds: Thresholds,
                 *, log_every: int, every_step: bool = False, verdict_every_step: bool = False) -> None:
        self.stats = GradStats(named_params)
        self.health = GradientHealth(self.stats.names, thresholds)
        self.nonfinite = Nonfinite()
        self.flow = GradFlow()
        self.t, self.log_every = thresholds, log_every
        self.every_step, self.verdict_every_step = every_step, verdict_every_step

    def sampled(self, step: int) -> bool:
        return self.every_step or self.log_step(step)

    def log_step(self, step: int) -> bool:
        return step % self.log_every == 0

    def before_step(self, step: int) -> StepReport:
        report = StepReport()
        sampled = self.sampled(step)
        l2 = self.stats.norms() if (sampled or self.verdict_every_step) else None
        if self.verdict_every_step and l2 is not None:
            report.bad = not bool(self.stats.total_norm_ok(l2, self.t.exploding))
        if not sampled:
            report.findings += self.health.observe_missing(step, self.stats.missing())
            if report.bad:  # only now look closer: which gradient went non-finite
                report.findings += self._nonfinite(step, l2.cpu().numpy())
            return report
        snap = self.stats.snapshot(step, l2, mean_abs=self.log_step(step))
        self.flow.add(snap)
        report.findings += self.health.observe(snap)
        report.findings += self._nonfinite(step, snap.l2)
        # per-parameter series at the log interval, even with every_step
        report.metrics.update(grad_metrics(snap, per_parameter=self.log_step(step)))
        return report

    def _nonfinite(self, step: int, l2: np.ndarray) -> list[Finding]:
        bad = np.flatnonzero(~np.isfinite(l2))
        if bad.size == 0:
            return []
        i = int(bad[0])
        grad = self.stats.params[i].grad
        return self.nonfinite.observe(NonfiniteEvent(
            step, "gradient", self.stats.names[i], str(grad.dtype) if grad is not None else None,
            None, nan=bool(np.isnan(l2[i])), inf=bool(np.isinf(l2[i]))))

    def drop_grads(self) -> None:
        self.stats.drop_grads()
