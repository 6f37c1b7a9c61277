"""Backward passes between optimizer steps: a `step()` skipped by a condition."""

from __future__ import annotations

import torch

from ..analysis.updates import BackwardsWithoutStep
from ..session import StepReport
from ..thresholds import Thresholds


class StepWatch:
    """Counts backward passes that reach one parameter (the largest trainable one the optimizer
    holds: one Python call per backward) and the optimizer steps between them.

    Accumulating over k micro-batches takes k backward passes per step, so the count is judged
    against the most any step took: `backwards_without_step()` reports once the count reaches
    twice that, and at least 4 x `update_stall_steps` (before the first step too, so a long
    accumulation is not mistaken for a skipped step). Evaluation forwards without a backward
    do not count.

    Args:
        named_params: the (name, parameter) pairs the optimizer holds.
        thresholds: `update_stall_steps`.
    """

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], thresholds: Thresholds) -> None:
        trainable = [p for _, p in named_params if p.requires_grad and p.numel() > 0]
        self.since, self.most = 0, 0
        self._floor = 4 * thresholds.update_stall_steps
        self._handle = max(trainable, key=torch.numel).register_post_accumulate_grad_hook(
            self._count) if trainable else None

    def stepped(self) -> None:
        """An optimizer step was taken (or skipped by the gradient scaler, which counts)."""
        self.most, self.since = max(self.most, self.since), 0

    def check(self, step: int) -> StepReport:
        """A `BackwardsWithoutStep` when the count says step() is not being called."""
        if self.since < max(self._floor, 2 * self.most):
            return StepReport()
        return StepReport([BackwardsWithoutStep(step, self.since, self.most)])

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _count(self, _: torch.Tensor) -> None:
        self.since += 1
