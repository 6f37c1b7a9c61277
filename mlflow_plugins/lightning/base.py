"""What the three Lightning callbacks share: the session loop, metric rules, checkpointed state."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import lightning.pytorch as pl
from lightning.pytorch.loggers import MLFlowLogger

from ..analysis import MetricValue, Rule, RuleSet
from ..analysis.rule import check_rules, metrics_read
from ..findings import Finding
from ..recording import Recorder
from ..run_check import resolve_recorder
from ..run_record import RunReport
from ..session import Session, StepReport
from ..thresholds import Thresholds, check_log_every, check_policy


class FixlabCallback(pl.Callback):
    """Base of the fixlab callbacks; not used on its own.

    Each callback keeps its rules (built-in and the user's) and their states, which travel in
    Lightning checkpoints under its `state_key`: a resumed fit continues where the findings were.
    All callbacks of one MLflow run write into that run's one report. Only rank zero records.
    Without an `MLFlowLogger` the run is the active one, else `MLFLOW_RUN_ID`, which must name
    a run of the tracking store (checked in `setup`, before the first step). An exception that
    ends `fit` is recorded as the run's outcome (`fixlab.outcome`; health not `ok`).

    Args:
        builtin: makes the built-in rules this callback judges with, from its thresholds.
        thresholds: the thresholds this callback declares, by name (validated by `Thresholds`).
        rules: the user's own rules; the metrics they name in `reads` are read from
            `trainer.callback_metrics` after every step or epoch (their `per`).
        log_every / policy / every_step: see the subclasses.
    """

    def __init__(self, *, builtin: Callable[[Thresholds], Sequence[Rule]], thresholds: dict[str, Any],
                 rules: Iterable[Rule], log_every: int, policy: str, every_step: bool = False) -> None:
        super().__init__()
        self.t = Thresholds(**thresholds)
        self._own = dict(thresholds)
        self.policy = check_policy(policy)
        self.log_every = check_log_every(log_every)
        if not isinstance(every_step, bool):
            raise ValueError(f"every_step={every_step!r} is not allowed; allowed: True or False")
        self.every_step = every_step
        self.rules = RuleSet([*builtin(self.t), *check_rules(rules)])
        # The metrics the rules read (`Rule.reads`), by when they judge them (`Rule.per`).
        self._metric_rules = {per: metrics_read(self.rules.rules, per) for per in ("step", "epoch")}
        self._session: Session | None = None
        self._trainer: pl.Trainer | None = None
        self._epoch_done: int | None = None  # an ended epoch whose metrics are not judged yet
        self._findings: list[Finding] = []  # between sessions: restored, or the last fit's
        self._stage: str | None = None  # the trainer stage being set up (fit, validate, test, ...)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(**self._key_fields())

    def _key_fields(self) -> dict[str, Any]:
        """What tells two instances of one callback class apart in a checkpoint."""
        return {**self._own, "rules": sorted(r.name for r in self.rules.rules)}

    @property
    def findings(self) -> list[Finding]:
        return list(self._session.findings) if self._session is not None else list(self._findings)

    # lifecycle -----------------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._stage = stage
        if stage != "fit":
            return
        self._trainer = trainer
        report = RunReport.open(_recorder_for(trainer))
        report.use_thresholds(self.t)
        self._session = Session(self.rules, policy=self.policy, report=report, owner=type(self).__name__)
        self._session.restore_findings(self._findings)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._close()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        """Records how training ended (failed or killed) in the run's report, then closes."""
        if self._session is not None:
            self._session.ended_by(exception)
        self._close()

    def state_dict(self) -> dict[str, Any]:
        if self._trainer is not None:  # a checkpoint at an epoch's end holds that epoch's verdict
            self._judge_epoch(self._trainer)
        if self._session is not None and not self._session.closed:
            self._session.sync()  # what the checkpoint has seen, the run holds
        return {"rules": self.rules.state_dict(), "findings": [f.to_dict() for f in self.findings]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self._stage not in (None, "fit"):
            return  # trainer.test(ckpt_path=...) restores callbacks too: keep what fitting found
        self.rules.load_state_dict(state_dict.get("rules", {}))
        restored = [Finding.from_dict(d) for d in state_dict.get("findings", [])]
        if self._session is not None:
            self._session.restore_findings(restored)
        else:
            self._findings = restored

    # the user's metric rules ---------------------------------------------------------------

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        """Judges per-step metric rules; flushes metrics every `log_every` steps."""
        step = trainer.global_step - 1
        if self._metric_rules["step"]:
            self._judge_metrics(trainer, self._metric_rules["step"], step, trainer.current_epoch, "step")
        if self._session is not None and step % self.log_every == 0:
            self._session.flush()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Marks the epoch to judge: the module's own epoch-end logging comes after this hook."""
        self._epoch_done = trainer.current_epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Judges per-epoch metric rules on what the previous epoch logged."""
        self._judge_epoch(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Judges the last epoch."""
        self._judge_epoch(trainer)

    def _judge_epoch(self, trainer: pl.Trainer) -> None:
        epoch, self._epoch_done = self._epoch_done, None
        if epoch is not None and self._metric_rules["epoch"]:
            self._judge_metrics(trainer, self._metric_rules["epoch"], trainer.global_step, epoch, "epoch")

    def _judge_metrics(self, trainer: pl.Trainer, names: set[str], step: int, epoch: int, per: str) -> None:
        # Only the watched metrics are read: each is a host sync. `per` keeps a value read after a
        # batch away from the rules that count epochs (it may still be last epoch's), and back.
        metrics = trainer.callback_metrics
        values = self._guard(lambda: [MetricValue(n, float(metrics[n]), step, epoch, per)
                                      for n in sorted(names) if n in metrics], [])
        if values:
            self.record(trainer, StepReport(values), step)

    # for the subclasses --------------------------------------------------------------------

    def record(self, trainer: pl.Trainer, report: StepReport | Sequence[StepReport], step: int) -> bool:
        """Logs a step's reports; returns True when the policy says to stop (and asks the trainer)."""
        if self._session is None:
            return False
        reports = [report] if isinstance(report, StepReport) else list(report)
        stop = self._session.record(step, reports)
        if stop is not None:
            trainer.should_stop = True
        return stop is not None

    def _guard(self, fn: Callable[[], Any], default: Any = None) -> Any:
        """Diagnostics never crash training: a failure becomes a warning and a finding."""
        if self._session is None:
            return default
        return self._session.guard(fn, default)

    def _close(self) -> None:
        if self._session is not None:
            self._findings = list(self._session.findings)
            self._session.close()
            self._session, self._trainer = None, None


def _recorder_for(trainer: pl.Trainer) -> Recorder | None:
    """The run of the trainer's MLFlowLogger (which looked it up itself), else the active run /
    MLFLOW_RUN_ID (checked: an unknown id raises ValueError); rank zero only."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger) and logger.run_id is not None:
            return Recorder(logger.run_id, logger.experiment.tracking_uri)
    return resolve_recorder()
