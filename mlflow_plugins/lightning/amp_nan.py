"""AmpNanCallback: NONFINITE (loss, gradient, activation), AMP_STEPS_SKIPPED, AUTOCAST_NOT_APPLIED."""

from __future__ import annotations

import contextlib
from typing import Any, Iterable

import lightning.pytorch as pl
import torch

from ..analysis import AmpSkips, AutocastApplied, Nonfinite, Rule
from ..pytorch.amp_watch import AmpWatch
from ..pytorch.autocast_watch import AutocastWatch
from ..pytorch.grad_stats import GradStats
from ..pytorch.nonfinite_watch import NonfiniteWatch
from ..pytorch.params import named_optimizer_params
from ..session import StepReport
from .base import FixlabCallback


class AmpNanCallback(FixlabCallback):
    """Non-finite values and mixed-precision health.

    Each step the loss gets one reduction and one scalar sync before backward. When it is NaN/Inf, the batch's
    `training_step` is re-run once with forward hooks (gradients off, RNG and buffers restored)
    to name the first module whose output went non-finite, its dtype and whether autocast was
    on. With a GradScaler (precision "16-mixed"), a falling loss scale counts skipped steps.
    Every `log_every` steps, the forward's matrix-multiplying modules are hooked once to see
    whether autocast reached them (AUTOCAST_NOT_APPLIED, information).

    Args:
        amp_skip_fraction: fraction of skipped steps in a window that is AMP_STEPS_SKIPPED.
        amp_window: steps per window.
        amp_min_scale: a loss scale below this has collapsed (critical).
        log_every: steps between metric flushes.
        policy: "warn", "skip_step" (drop the step's gradients when any is non-finite: one more
            fused reduction per step) or "stop" (end fit without applying that step).
        rules: the user's own rules, e.g. over `NonfiniteEvent` or `AmpStep` summaries.

    Raises:
        ValueError: an invalid argument, naming it and what is allowed.
    """

    def __init__(self, *, amp_skip_fraction: float = 0.05, amp_window: int = 100,
                 amp_min_scale: float = 1.0, log_every: int = 50, policy: str = "warn",
                 rules: Iterable[Rule] = ()) -> None:
        thresholds = dict(amp_skip_fraction=amp_skip_fraction, amp_window=amp_window,
                          amp_min_scale=amp_min_scale)
        super().__init__(builtin=lambda t: [Nonfinite(), AmpSkips(t), AutocastApplied()],
                         thresholds=thresholds, rules=rules, log_every=log_every, policy=policy)
        self._nonfinite: NonfiniteWatch | None = None
        self._autocast: AutocastWatch | None = None
        self._amp: AmpWatch | None = None
        self._batch: tuple[Any, int] | None = None
        self._stats: dict[int, GradStats] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Finds the precision plugin's GradScaler, if any."""
        self._nonfinite = NonfiniteWatch(pl_module)
        self._autocast = AutocastWatch(pl_module)
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self._amp = AmpWatch(scaler) if scaler is not None else None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        """Remembers the batch, and reads the loss scale the previous step left."""
        self._batch = (batch, batch_idx)
        if self._autocast is not None and trainer.global_step % self.log_every == 0:
            self._guard(lambda: self._autocast.arm(trainer.global_step, pl_module.device.type))
        if self._amp is not None and trainer.global_step > 0:
            report = self._guard(lambda: self._amp.observe(trainer.global_step - 1), StepReport())
            self.record(trainer, report, trainer.global_step - 1)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        """Under skip_step/stop, drops the step's gradients when any is non-finite."""
        if self.policy == "warn":
            return
        if id(optimizer) not in self._stats:  # built once: it walks every named parameter
            self._stats[id(optimizer)] = GradStats(named_optimizer_params(pl_module, optimizer))
        stats = self._stats[id(optimizer)]
        if not bool(self._guard(lambda: stats.total_norm_ok(stats.norms(), float("inf")), True)):
            stats.drop_grads()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._autocast is not None:
            self._autocast.disarm()
        super().teardown(trainer, pl_module, stage)

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           loss: torch.Tensor) -> None:
        """Checks the loss before backward and step, so a re-run sees the parameters that failed."""
        if self._nonfinite is None or self._batch is None:
            return
        batch, batch_idx = self._batch
        step = trainer.global_step
        if self._autocast is not None and self._autocast.armed:
            self.record(trainer, self._guard(self._autocast.collect, StepReport()), step)

        def rerun() -> Any:
            with _silenced_logging(pl_module), trainer.precision_plugin.forward_context():
                return pl_module.training_step(batch, batch_idx)

        def check() -> list:
            self._nonfinite.observe_output(loss)
            return self._nonfinite.settle(step, "loss", rerun, None, loss)

        self.record(trainer, StepReport(self._guard(check, [])), step)


@contextlib.contextmanager
def _silenced_logging(pl_module: pl.LightningModule):
    """The re-run must not log a second time: shadow `self.log`/`log_dict` while it runs."""
    pl_module.log = lambda *a, **k: None  # type: ignore[method-assign]
    pl_module.log_dict = lambda *a, **k: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        del pl_module.log, pl_module.log_dict
