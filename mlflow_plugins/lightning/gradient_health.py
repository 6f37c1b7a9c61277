"""GradientHealthCallback: GRAD_NEVER_UPDATED, GRAD_VANISHING, GRAD_EXPLODING, GRAD_NORM_OUT_OF_RANGE."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from ..findings import Finding
from ..pytorch.gradient_watch import GradientWatch
from ..pytorch.monitor import named_optimizer_params
from .base import FixlabCallback


class GradientHealthCallback(FixlabCallback):
    """Gradient health of every parameter an optimizer holds, checked before each step.

    Args:
        log_every: steps between full statistics (one fused reduction) and metric flushes.
        policy: "warn", "skip_step" (drop non-finite or exploding gradients of that step) or
            "stop" (end fit after the step, without applying it).
        every_step: every statistic on every step.
        **thresholds: see `mlflow_plugins.Thresholds`.

    Example:
        >>> trainer = Trainer(callbacks=[GradientHealthCallback()], logger=MLFlowLogger(...))
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._watches: dict[int, GradientWatch] = {}
        self._restored: list[dict[str, Any]] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        """Checks the gradients the optimizer is about to apply."""
        watch = self._watch(pl_module, optimizer)
        step = trainer.global_step
        report = self._guard(lambda: watch.before_step(step))
        if report is None:
            return
        stop = self.record(trainer, report, step)
        if report.bad and (self.policy == "skip_step" or stop):
            watch.drop_grads()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        """Flushes metrics every `log_every` steps."""
        self.flush_on_log_step(trainer.global_step - 1)

    def _watch(self, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer) -> GradientWatch:
        if id(optimizer) not in self._watches:
            watch = GradientWatch(
                named_optimizer_params(pl_module, optimizer), self.t, log_every=self.log_every,
                every_step=self.every_step, verdict_every_step=self.policy != "warn")
            if self._restored:  # resumed: watches come back in the order they were made
                watch.health.load_state_dict(self._restored.pop(0))
            if self._session is not None and self._session.grad_flow is None:
                self._session.grad_flow = watch.flow
            self._watches[id(optimizer)] = watch
        return self._watches[id(optimizer)]

    def state_dict(self) -> dict[str, Any]:
        return {"health": [w.health.state_dict() for w in self._watches.values()],
                "findings": [f.to_dict() for f in self._findings]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._findings = [Finding.from_dict(d) for d in state_dict.get("findings", [])]
        self._restored = list(state_dict.get("health", []))
