"""NormalizationEffectCallback: NORM_GRAD_ATTENUATION and NORM_ERASES_MAGNITUDE."""

from __future__ import annotations

from typing import Any, Iterable

import lightning.pytorch as pl
import torch

from ..analysis import NormEffect, Rule
from ..pytorch.norm_watch import NormWatch
from .base import FixlabCallback


class NormalizationEffectCallback(FixlabCallback):
    """What LayerNorm, RMSNorm, BatchNorm, GroupNorm, `L2Normalize` (and any module named in
    `norm_modules`) do to the gradient and to the spread of magnitudes, on sampled steps.

    Args:
        norm_grad_ratio: |grad in| / |grad out| below this is NORM_GRAD_ATTENUATION.
        magnitude_cv_ratio / magnitude_cv_min: magnitude CV out / in below the ratio, while the
            CV in is above the minimum, is NORM_ERASES_MAGNITUDE.
        norm_modules: extra module paths or class names to probe.
        log_every: steps between probes; off those steps no hook is installed.
        every_step: probe every step.
        policy: what a critical finding of `rules` does ("warn", "stop"; the built-in
            normalization findings are never critical).
        rules: the user's own rules, e.g. over `NormProbe` summaries.

    Raises:
        ValueError: an invalid argument, naming it and what is allowed.
    """

    def __init__(self, *, norm_grad_ratio: float = 0.1, magnitude_cv_ratio: float = 0.1,
                 magnitude_cv_min: float = 0.2, norm_modules: Iterable[str] = (),
                 log_every: int = 50, every_step: bool = False, policy: str = "warn",
                 rules: Iterable[Rule] = ()) -> None:
        thresholds = dict(norm_grad_ratio=norm_grad_ratio, magnitude_cv_ratio=magnitude_cv_ratio,
                          magnitude_cv_min=magnitude_cv_min)
        super().__init__(builtin=lambda t: [NormEffect(t)], thresholds=thresholds, rules=rules,
                         log_every=log_every, policy=policy, every_step=every_step)
        if isinstance(norm_modules, str) or not isinstance(norm_modules, Iterable):
            raise ValueError(f"norm_modules={norm_modules!r} is not allowed; allowed: a list of "
                             "module paths or class names, e.g. ['encoder.norm', 'ComplexLayerNorm']")
        self.norm_modules = tuple(norm_modules)
        self._watch: NormWatch | None = None

    def _key_fields(self) -> dict[str, Any]:
        return {**super()._key_fields(), "norm_modules": list(self.norm_modules)}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Finds the normalization modules (an unknown `norm_modules` name raises here)."""
        self._watch = NormWatch(pl_module, log_every=self.log_every, every_step=self.every_step,
                                norm_modules=self.norm_modules)

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
        """Removes probes a step left armed; then metric rules and flushes (see the base)."""
        if self._watch is not None:
            self._watch.disarm()
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
