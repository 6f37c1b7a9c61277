"""Normalization effect for torch: probes armed on sampled steps, read into `NormProbe`s."""

from __future__ import annotations

from typing import Iterable

import torch

from ..analysis import probe_metrics
from ..session import StepReport
from .norm_probes import NormProbes, find_norm_modules


class NormWatch:
    """`arm(step)` before a step's forward (a no-op off the sampled steps); `collect(step)` after
    its backward. Off the sampled steps no hook is installed at all, so it costs nothing."""

    def __init__(self, model: torch.nn.Module, *, log_every: int, every_step: bool = False,
                 norm_modules: Iterable[str] = ()) -> None:
        self.probes = NormProbes(find_norm_modules(model, norm_modules))
        self.log_every, self.every_step = log_every, every_step

    def arm(self, step: int) -> None:
        if self.probes.modules and (self.every_step or step % self.log_every == 0):
            self.probes.arm()

    def collect(self, step: int) -> StepReport:
        report = StepReport()
        if not self.probes.armed:
            return report
        record = step % self.log_every == 0  # with every_step, judged each step, recorded per interval
        probes = self.probes.collect(step)
        report.summaries += probes
        if record:
            report.metrics.update(probe_metrics(probes))
        return report

    def disarm(self) -> None:
        self.probes.disarm()
