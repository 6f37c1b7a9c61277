"""EvalModeCallback: EVAL_IN_TRAIN_MODE, EVAL_NOT_DETERMINISTIC, EVAL_UPDATES_STATISTICS,
EVAL_BEFORE_INIT."""

from __future__ import annotations

from typing import Any, Iterable

import lightning.pytorch as pl

from ..analysis import EvalMode, Rule
from ..pytorch.eval_watch import EvalWatch
from .base import FixlabCallback


class EvalModeCallback(FixlabCallback):
    """Eval/train mix-ups, checked once per validation epoch (the sanity check included).

    On the first validation batch: which mode-dependent modules (dropout, batch norm, spectral
    norm; also modules kept in plain Python lists, which `.eval()` never reaches) are in training
    mode, and whether two repeated passes over that batch's inputs agree (the LightningModule's
    own forward when `validation_step` calls `self(...)`, else each child module it called; no
    gradients, RNG and buffers restored). At the epoch's end: the modes again (a
    `validation_step` that switches training back on) and whether running statistics (batch
    norm's running mean and variance) changed. A spectral-norm layer evaluated before its first
    training forward (the sanity check runs before any) is EVAL_BEFORE_INIT. Nothing runs on the
    other validation batches, nor during training but a one-shot hook per spectral-norm layer.

    Args:
        rel_tol: two passes whose outputs differ by more than this, relative to the largest
            output magnitude, are EVAL_NOT_DETERMINISTIC.
        policy: what a critical finding of `rules` does ("warn", "stop"; the built-in eval
            findings are warnings).
        rules: the user's own rules, e.g. over `EvalCheck` summaries.

    Raises:
        ValueError: an invalid argument, naming it and what is allowed.

    Example:
        >>> trainer = Trainer(callbacks=[EvalModeCallback()], logger=MLFlowLogger(...))
    """

    def __init__(self, *, rel_tol: float = 1e-4, policy: str = "warn", rules: Iterable[Rule] = ()) -> None:
        rule = EvalMode(rel_tol)
        super().__init__(builtin=lambda t: [rule], thresholds={}, rules=rules, log_every=50,
                         policy=policy)
        self.rel_tol = rule.rel_tol
        self._watch: EvalWatch | None = None

    def _key_fields(self) -> dict[str, Any]:
        return {**super()._key_fields(), "rel_tol": self.rel_tol}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Finds the mode-dependent modules; notes each spectral-norm layer's first training forward."""
        if self._session is not None:
            self._watch = self._guard(lambda: EvalWatch(pl_module, guard=self._guard))

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Copies the running statistics; arms the capture of the first forward."""
        if self._watch is not None:
            self._guard(lambda: self._watch.begin(trainer.global_step))

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Checks the first batch, if its forward has not done so already (a flag test after that)."""
        watch = self._watch
        if watch is not None and watch.active and not watch.checked:
            self._guard(lambda: watch.check(trainer.precision_plugin.forward_context))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Compares the running statistics and records the epoch's check."""
        watch = self._watch
        if watch is None or not watch.active:
            return
        self._guard(watch.note_modes)
        report = self._guard(lambda: watch.end(trainer.global_step))
        if report is not None:
            self.record(trainer, report, trainer.global_step)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and self._watch is not None:
            self._watch.close()
            self._watch = None
        super().teardown(trainer, pl_module, stage)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        super().on_exception(trainer, pl_module, exception)
