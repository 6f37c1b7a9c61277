"""Everything watched around one optimizer's steps, shared by `watch()` and the Lightning callback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..session import StepReport
from ..thresholds import Thresholds
from .gradient_watch import GradientWatch
from .reset_watch import ResetWatch
from .step_watch import StepWatch
from .update_watch import UpdateWatch

Guard = Callable[[Callable[[], Any], Any], Any]  # `Session.guard`: a failure becomes a finding


@dataclass
class OptimizerWatch:
    """One optimizer's watches: its gradients before each step (`grads`), its updates across
    sampled steps (`updates`), whether its gradients are cleared after them (`resets`), and the
    backward passes between its steps (`steps`). The adapter calls `grads` and the policy before
    the step, then `before_update` (after the policy: a dropped gradient is not an update), and
    `after_step` from the optimizer's step-post hook.
    """

    grads: GradientWatch
    updates: UpdateWatch
    resets: ResetWatch
    steps: StepWatch

    @classmethod
    def of(cls, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
           named_params: list[tuple[str, torch.nn.Parameter]], thresholds: Thresholds, *,
           log_every: int, every_step: bool, verdict_every_step: bool, group: str = "") -> "OptimizerWatch":
        """The watches of `optimizer`, whose (name, parameter) pairs in `model` are `named_params`."""
        return cls(GradientWatch(named_params, thresholds, log_every=log_every, every_step=every_step,
                                 verdict_every_step=verdict_every_step, group=group),
                   UpdateWatch(model, optimizer, named_params, thresholds, group=group),
                   ResetWatch(named_params, group), StepWatch(named_params, thresholds))

    def before_update(self, step: int, guard: Guard) -> None:
        """Right before the optimizer applies step `step`: the weights copied if it is measured."""
        guard(lambda: self.updates.before_step(step, self.grads.sampled(step)), None)

    def after_step(self, step: int, guard: Guard) -> StepReport:
        """The optimizer applied step `step`: its update (if measured), and after a sampled step
        the reset check armed for the next backward."""
        self.steps.stepped()
        report = guard(lambda: self.updates.after_step(step), StepReport())
        if self.grads.sampled(step):
            guard(lambda: self.resets.arm(step), None)
        return report

    def close(self) -> None:
        """Removes the hooks the watches hold on the parameters."""
        self.resets.disarm()
        self.steps.remove()
