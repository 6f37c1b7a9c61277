"""NormalizationEffectCallback: NORM_GRAD_ATTENUATION and NORM_ERASES_MAGNITUDE."""

from __future__ import annotations

from typing import Any, Iterable

import lightning.pytorch as pl
import torch

from ..pytorch.norm_watch import NormWatch
from .base import FixlabCallback


class NormalizationEffectCallback(FixlabCallback):
    """What LayerNorm, RMSNorm, BatchNorm, GroupNorm, `L2Normalize` (and any module named in
    `norm_modules`) do to the gradient and to the spread of magnitudes, on sampled steps.

    Args:
        log_every: steps between probes; off those steps no hook is installed.
        norm_modules: extra module paths or class names to probe.
        **kwargs: `policy`, `every_step` and thresholds, see `FixlabCallback` and `Thresholds`.
    """

    def __init__(self, *, norm_modules: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.norm_modules = tuple(norm_modules)
        self._watch: NormWatch | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Finds the normalization modules (an unknown `norm_modules` name raises here)."""
        self._watch = NormWatch(pl_module, self.t, log_every=self.log_every,
                                every_step=self.every_step, norm_modules=self.norm_modules)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        """Arms the probes on sampled steps."""
        if self._watch is not None:
            self._guard(lambda: self._watch.arm(trainer.global_step))

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        """Reads the probes once the backward pass has filled them."""
        if self._watch is not None and self._watch.probes.armed:
            step = trainer.global_step
            report = self._guard(lambda: self._watch.collect(step))
            if report is not None:
                self.record(trainer, report, step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        """Removes probes a step left armed, and flushes metrics every `log_every` steps."""
        if self._watch is not None:
            self._watch.disarm()
        self.flush_on_log_step(trainer.global_step - 1)
