"""GradientHealthCallback: GRAD_NEVER_UPDATED, GRAD_VANISHING, GRAD_EXPLODING, GRAD_NORM_OUT_OF_RANGE."""

from __future__ import annotations

from typing import Iterable

import lightning.pytorch as pl
import torch

from ..analysis import GradientHealth, Nonfinite, Rule
from ..pytorch.gradient_watch import GradientWatch
from ..pytorch.params import named_optimizer_params
from .base import FixlabCallback


class GradientHealthCallback(FixlabCallback):
    """Gradient health of every parameter an optimizer holds, checked before each step.

    Args:
        never_updated_steps: K, steps without any gradient before GRAD_NEVER_UPDATED.
        vanishing: a layer's mean |grad| below this is GRAD_VANISHING.
        exploding: total or layer gradient norm above this is GRAD_EXPLODING.
        norm_band_low / norm_band_high / norm_band_window: the healthy band of the total norm
            and for how many observed steps it must be left (GRAD_NORM_OUT_OF_RANGE).
        log_every: steps between full statistics (one fused reduction) and metric flushes.
        policy: "warn", "skip_step" (drop non-finite or exploding gradients of that step) or
            "stop" (end fit after the step, without applying it).
        every_step: every statistic on every step.
        rules: the user's own rules, e.g. `Rule.metric(...)` over a logged metric.

    Raises:
        ValueError: an invalid argument, naming it and what is allowed.

    Example:
        >>> trainer = Trainer(callbacks=[GradientHealthCallback()], logger=MLFlowLogger(...))
    """

    def __init__(self, *, never_updated_steps: int = 3, vanishing: float = 1e-7,
                 exploding: float = 100.0, norm_band_low: float = 0.1, norm_band_high: float = 10.0,
                 norm_band_window: int = 10, log_every: int = 50, policy: str = "warn",
                 every_step: bool = False, rules: Iterable[Rule] = ()) -> None:
        thresholds = dict(never_updated_steps=never_updated_steps, vanishing=vanishing,
                          exploding=exploding, norm_band_low=norm_band_low,
                          norm_band_high=norm_band_high, norm_band_window=norm_band_window)
        super().__init__(builtin=lambda t: [GradientHealth(t), Nonfinite()], thresholds=thresholds,
                         rules=rules, log_every=log_every, policy=policy, every_step=every_step)
        self._watches: dict[int, GradientWatch] = {}

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        """Checks the gradients the optimizer is about to apply."""
        watch = self._watch(trainer, pl_module, optimizer)
        step = trainer.global_step
        report = self._guard(lambda: watch.before_step(step))
        if report is None:
            return
        stop = self.record(trainer, report, step)
        if report.bad and (self.policy == "skip_step" or stop):
            watch.drop_grads()

    def _watch(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
               optimizer: torch.optim.Optimizer) -> GradientWatch:
        if id(optimizer) not in self._watches:
            index = next((i for i, o in enumerate(trainer.optimizers) if o is optimizer), len(self._watches))
            watch = GradientWatch(
                named_optimizer_params(pl_module, optimizer), self.t, log_every=self.log_every,
                every_step=self.every_step, verdict_every_step=self.policy != "warn",
                group=str(index) if index else "")
            if self._session is not None:
                self._session.report.use_grad_flow(watch.flow)
            self._watches[id(optimizer)] = watch
        return self._watches[id(optimizer)]
