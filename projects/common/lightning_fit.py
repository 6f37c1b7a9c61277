"""The Lightning part every Lightning project shares: fit with checkpoints in the run's folder, test
the best, and continue a run that died from its last checkpoint.

A checkpoint is written at the end of every epoch (`last.ckpt`) and whenever the selection metric
improves (`best.ckpt`), both in the run's `RunFolder`. It holds everything the next epoch depends
on: weights, optimizer, loop counters, every callback's state (the fixlab rules' included), the
data module's shuffle generator and the process's random number generators. A continued run calls
`trainer.fit(ckpt_path=last.ckpt)` (Lightning's own resume). Lightning's metrics go through the run's
`Recorder`, like the diagnostics': batched off the training thread, spooled while the tracking server
is away, and on a continued run without the steps the run already holds.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import lightning as L
import mlflow
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.loggers import MLFlowLogger

from mlflow_plugins.recording import Recorder
from mlflow_plugins.registry import Evidence, RegistrationResult, register_checkpoint
from projects.common.run import ProjectRun

__all__ = ["FitResult", "OneLineProgressBar", "RandomState", "RecorderLogger", "bar_metrics", "fit_and_test",
           "register_fit"]

LAST = "last.ckpt"
#: Progress-bar metrics that hold the training loss, most current first (`self.log(..., on_step=True,
#: on_epoch=True)` splits "train/loss" into "_step" and "_epoch").
LOSS_KEYS = ("train/loss_step", "train/loss", "train/loss_epoch", "loss")
BAR_WIDTH = 100  # the progress line's most characters


@dataclass(frozen=True)
class FitResult:
    """What fit and test measured.

    Attributes:
        trainer: the trainer (after testing).
        fit_metrics: `trainer.callback_metrics` at the end of fitting, as floats.
        optimizers: the optimizers fitting used.
        best_score: the best value of the selection metric (None: never logged).
        best_path: the checkpoint tested ('' when there was none: the last weights were tested).
        tested: the test metrics, as floats.
    """

    trainer: L.Trainer
    fit_metrics: dict[str, float]
    optimizers: list[torch.optim.Optimizer]
    best_score: float | None
    best_path: str
    tested: dict[str, float]


class RecorderLogger(MLFlowLogger):
    """Lightning's MLflow logger whose metrics go through the run's `Recorder` instead of one
    synchronous request per call: training never waits on the tracking server, and a checkpoint's
    `sync` covers Lightning's metrics too. Params and the run's end stay Lightning's.

    Args:
        recorder: the run's recorder (None off rank zero: nothing is logged).
    """

    def __init__(self, *, recorder: Recorder | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._recorder = recorder

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._recorder is None:
            return
        numbers = {re.sub(r"[^a-zA-Z0-9_/. -]+", "", str(k)): v for k, v in metrics.items() if not isinstance(v, str)}
        self._recorder.log_metrics(numbers, step or 0)


class ResumePoint(Callback):
    """Makes the end-of-epoch checkpoint the one `fixlab resume` continues from only once the run
    holds that epoch's metrics: at the next epoch's start, or when training ends.

    `ModelCheckpoint(save_last=True)` writes its "last" checkpoint before Lightning logs the
    epoch's metrics (`train/loss_epoch`, ...); a run killed in between resumed after an epoch whose
    metrics it never logged. Here that checkpoint is written as `pending` and promoted to `last`
    (an atomic rename) after `sync()` has made the run hold everything logged so far. A run killed
    before the promotion repeats the epoch: the steps it holds are skipped, the missing metrics
    logged.
    """

    PENDING = "pending"  # ModelCheckpoint's name for the checkpoint waiting to be promoted

    def __init__(self, folder: Path, sync: Callable[[], None]) -> None:
        self.pending, self.last, self.sync = folder / f"{self.PENDING}.ckpt", folder / LAST, sync

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._promote()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._promote()

    def _promote(self) -> None:
        if self.pending.is_file():
            self.sync()
            os.replace(self.pending, self.last)


class RandomState(Callback):
    """Carries the process's random generators (torch, numpy, Python) in the checkpoint, so dropout
    masks after a resume are the ones an uninterrupted run draws. Restored when training starts:
    after Lightning's sanity check, whose loaders draw from the global generator."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        version, state, gauss = random.getstate()
        return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos,
                                                          has_gauss, cached],
                "python": [version, list(state), gauss]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, values, gauss = state["python"]
        random.setstate((version, tuple(values), gauss))


def bar_metrics(metrics: Mapping[str, Any], selection_metric: str) -> dict[str, Any]:
    """What the progress bar shows of Lightning's progress-bar metrics: the training loss (as
    "loss") and the selection metric, each when logged; nothing else (no `v_num`)."""
    shown: dict[str, Any] = {}
    loss = next((key for key in LOSS_KEYS if key in metrics), None)
    if loss is not None:
        shown["loss"] = metrics[loss]
    if selection_metric in metrics:
        shown[selection_metric] = metrics[selection_metric]
    return shown


class OneLineProgressBar(TQDMProgressBar):
    """One progress line per phase, at most `width` characters: the epochs' bar (loss and the
    selection metric; validation runs inside it, without a bar of its own, and so does the sanity
    check) and the test's bar, which clears when testing ends.

    Args:
        selection_metric: the project's selection metric (e.g. "val/acc").
        width: the most characters of the line (fewer on a narrower terminal).
    """

    def __init__(self, selection_metric: str, *, width: int = BAR_WIDTH) -> None:
        super().__init__()
        self.selection_metric = selection_metric
        self.width = width

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return bar_metrics(trainer.progress_bar_metrics, self.selection_metric)

    def _bar(self, desc: str, *, leave: bool) -> Tqdm:
        """A fixed-width bar on stdout (where Lightning's bars go)."""
        columns = min(self.width, shutil.get_terminal_size((self.width, 24)).columns)
        return Tqdm(desc=desc, position=2 * self.process_position, disable=self.is_disabled, leave=leave,
                    ncols=columns, file=sys.stdout, smoothing=0, bar_format=self.BAR_FORMAT)

    def init_train_tqdm(self) -> Tqdm:
        return self._bar(self.train_description, leave=True)

    def init_sanity_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)

    def init_test_tqdm(self) -> Tqdm:
        return self._bar(self.test_description, leave=False)

    def init_predict_tqdm(self) -> Tqdm:
        return self._bar(self.predict_description, leave=False)


def fit_and_test(run: ProjectRun, module: L.LightningModule, datamodule: L.LightningDataModule, *,
                 callbacks: Sequence[Callback] = (), epochs: int | None = None,
                 trainer_options: Mapping[str, Any] | None = None) -> FitResult:
    """Fit `module` for `epochs` (default `run.config.epochs`; continuing from the run's last
    checkpoint when it was resumed), then test the checkpoint with the best
    `run.spec.selection_metric`.

    Args:
        callbacks: the project's callbacks (the fixlab diagnostics); their state is checkpointed.
        trainer_options: more `lightning.Trainer` arguments (e.g. `precision` or `plugins`).

    The console shows one `OneLineProgressBar` line for the epochs and one, cleared at the end, for the test.
    """
    spec, config, folder = run.spec, run.config, run.folder
    best = ModelCheckpoint(dirpath=folder.path, filename="best", monitor=spec.selection_metric, mode=spec.mode,
                           save_top_k=1, save_last=True, save_on_train_epoch_end=True, enable_version_counter=False)
    best.CHECKPOINT_NAME_LAST = ResumePoint.PENDING  # promoted to LAST by ResumePoint
    logger = RecorderLogger(recorder=run.report.recorder, experiment_name=_experiment_name(run.run_id),
                            run_id=run.run_id, tracking_uri=mlflow.get_tracking_uri())
    bar = OneLineProgressBar(spec.selection_metric)
    last = folder.file(LAST)
    trainer = L.Trainer(max_epochs=epochs or config.epochs, logger=logger,
                        callbacks=[*callbacks, RandomState(), best, ResumePoint(folder.path, run.report.sync), bar],
                        deterministic=True, log_every_n_steps=config.log_every, enable_model_summary=False,
                        default_root_dir=folder.path, accelerator="auto", devices=1, **(trainer_options or {}))
    trainer.fit(module, datamodule=datamodule, ckpt_path=last if run.resumed and last.is_file() else None,
                weights_only=True)
    fit_metrics = _floats(trainer.callback_metrics)
    optimizers = list(trainer.optimizers)
    tested = trainer.test(module, datamodule=datamodule, ckpt_path=best.best_model_path or None, verbose=False,
                          weights_only=True)
    score = best.best_model_score
    return FitResult(trainer, fit_metrics, optimizers, None if score is None else float(score),
                     best.best_model_path, _floats(tested[0]) if tested else {})


def register_fit(run: ProjectRun, network: torch.nn.Module, fit: FitResult, *, health: str, baseline: float,
                 steps_needed: int, input_example: torch.Tensor) -> RegistrationResult:
    """`network` with the tested weights of `fit` as the run's registered model, behind the champion
    gate: judged on the best value of the spec's selection metric against `baseline`, with the
    optimizer steps the run's diagnostics observed."""
    spec, value = run.spec, fit.best_score
    evidence = Evidence(steps=fit.trainer.global_step, baseline=baseline, steps_needed=steps_needed)
    return register_checkpoint(network, project=spec.registered_model, run_id=run.run_id,
                               metric=spec.selection_metric, value=math.nan if value is None else value,
                               greater_is_better=spec.greater_is_better, health=health, evidence=evidence,
                               input_example=input_example)


def _experiment_name(run_id: str) -> str:
    run = mlflow.MlflowClient().get_run(run_id)
    return mlflow.get_experiment(run.info.experiment_id).name


def _floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out
