"""GradientHealthCallback: GRAD_NEVER_UPDATED, GRAD_VANISHING, GRAD_EXPLODING, GRAD_NORM_OUT_OF_RANGE,
UPDATES_NOT_APPLIED, GRAD_NOT_RESET."""

from __future__ import annotations

from typing import Any, Iterable

import lightning.pytorch as pl
import torch

from ..analysis import GradientHealth, GradientsReset, Nonfinite, ReplicaSync, Rule, UpdatesApplied
from ..pytorch.census import CENSUS_TITLE, CensusWatch
from ..pytorch.optimizer_watch import OptimizerWatch
from ..pytorch.params import named_optimizer_params
from ..pytorch.replica_watch import ReplicaWatch
from ..session import StepReport
from .base import FixlabCallback


class GradientHealthCallback(FixlabCallback):
    """Gradient health of every parameter an optimizer holds, checked before each step; whether
    sampled steps change the parameters they have gradients for (UPDATES_NOT_APPLIED) and whether
    the gradients are cleared after them (GRAD_NOT_RESET: manual optimization); under DDP, whether
    the replicas stay equal after the optimizer step of log steps (REPLICAS_DIVERGED).

    Args:
        never_updated_steps: K, steps without any gradient before GRAD_NEVER_UPDATED.
        vanishing: a layer's mean |grad| below this is GRAD_VANISHING.
        exploding: total or layer gradient norm above this is GRAD_EXPLODING.
        norm_band_low / norm_band_high / norm_band_window: the healthy band of the total norm
            and for how many observed steps it must be left (GRAD_NORM_OUT_OF_RANGE).
        update_stall_steps / update_ratio_min: steps a parameter with a gradient must stay
            unchanged (relative update at most `update_ratio_min`) for UPDATES_NOT_APPLIED.
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
                 norm_band_window: int = 10, update_stall_steps: int = 20,
                 update_ratio_min: float = 1e-8, log_every: int = 50, policy: str = "warn",
                 every_step: bool = False, rules: Iterable[Rule] = ()) -> None:
        thresholds = dict(never_updated_steps=never_updated_steps, vanishing=vanishing,
                          exploding=exploding, norm_band_low=norm_band_low,
                          norm_band_high=norm_band_high, norm_band_window=norm_band_window,
                          update_stall_steps=update_stall_steps, update_ratio_min=update_ratio_min)
        super().__init__(builtin=lambda t: [GradientHealth(t), UpdatesApplied(t), GradientsReset(),
                                            Nonfinite(), ReplicaSync()],
                         thresholds=thresholds, rules=rules, log_every=log_every, policy=policy,
                         every_step=every_step)
        # per optimizer (by id): its watches, the step it is taking, its step-post hook
        self._watches: dict[int, OptimizerWatch] = {}
        self._steps: dict[int, int] = {}
        self._hooks: list[Any] = []
        self._replicas: tuple[ReplicaWatch | None, int] = (None, -1)  # the watch, the step it checked
        self._census: CensusWatch | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Prepares the data-parallel replica check (a collective: every rank runs this hook)."""
        self._replicas = (self._guard(lambda: ReplicaWatch(list(pl_module.named_parameters()),
                                                           model=trainer.strategy.model)), -1)
        held = [p for opt in trainer.optimizers for group in opt.param_groups for p in group["params"]]
        self._census = self._guard(lambda: CensusWatch(pl_module, held))
        for optimizer in trainer.optimizers:  # now, so that an optimizer that never steps is seen
            self._guard(lambda: self._watch(trainer, pl_module, optimizer))

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        """Manual optimization: backward passes that kept coming without a `step()`."""
        for watches in self._watches.values():
            if watches.steps.since:
                step = trainer.global_step
                self.record(trainer, self._guard(lambda: watches.steps.check(step), StepReport()), step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        """Compares the replicas after the optimizer step of a log step, on every rank (global_step
        is equal across ranks); with gradient accumulation, once per optimizer step."""
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        (replicas, checked), step = self._replicas, trainer.global_step - 1
        if replicas is not None and step >= 0 and step % self.log_every == 0 and step != checked:
            self._replicas = (replicas, step)
            self.record(trainer, self._guard(lambda: replicas.check(step), StepReport()), step)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        """Checks the gradients the optimizer is about to apply; copies the weights on sampled steps."""
        watches = self._watch(trainer, pl_module, optimizer)
        watch, step = watches.grads, trainer.global_step
        self._steps[id(optimizer)] = step
        reset = self._guard(lambda: watches.resets.collect(step), StepReport())
        report = self._guard(lambda: watch.before_step(step))
        if report is None:
            return
        stop = self.record(trainer, [reset, report], step)
        if report.bad and (self.policy == "skip_step" or stop):
            watch.drop_grads()
        watches.before_update(step, self._guard)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            for hook in self._hooks:
                hook.remove()
            for watches in self._watches.values():
                watches.close()
            self._watches, self._steps, self._hooks = {}, {}, []
            census, self._census = self._census, None
            if census is not None and self._session is not None:
                self._guard(lambda: self._session.report.add_section(CENSUS_TITLE, census.finish().html()))
        super().teardown(trainer, pl_module, stage)

    def _after_step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer's step-post hook: the sampled step's update, then the reset check armed."""
        watches, step = self._watches[id(optimizer)], self._steps.get(id(optimizer), 0)
        if self._trainer is None:
            watches.steps.stepped()
            return
        report = watches.after_step(step, self._guard)
        if report.summaries:
            self.record(self._trainer, report, step)

    def _watch(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
               optimizer: torch.optim.Optimizer) -> OptimizerWatch:
        if id(optimizer) not in self._watches:
            index = next((i for i, o in enumerate(trainer.optimizers) if o is optimizer), len(self._watches))
            group = str(index) if index else ""
            watches = OptimizerWatch.of(pl_module, optimizer, named_optimizer_params(pl_module, optimizer),
                                        self.t, log_every=self.log_every, every_step=self.every_step,
                                        verdict_every_step=self.policy != "warn", group=group)
            if self._session is not None:
                self._session.report.use_grad_flow(watches.grads.flow)
            self._watches[id(optimizer)] = watches
            self._hooks.append(optimizer.register_step_post_hook(lambda opt, *_: self._after_step(opt)))
        return self._watches[id(optimizer)]
