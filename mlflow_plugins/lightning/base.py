"""What the three Lightning callbacks share: validated options and one session per trainer."""

from __future__ import annotations

from typing import Any, Callable

import lightning.pytorch as pl
from lightning.pytorch.loggers import MLFlowLogger

from ..findings import Finding
from ..pytorch.gradient_watch import StepReport
from ..session import Session, guarded
from ..recording import Recorder
from ..thresholds import Thresholds, check_log_every, check_policy

_SESSION = "_fixlab_session"


class FixlabCallback(pl.Callback):
    """Base of the fixlab callbacks; not used on its own.

    Every callback attached to one trainer writes into one `Session`, so the run gets one health
    tag and one report covering all of them. Only rank zero records.
    """

    def __init__(self, *, log_every: int = 50, policy: str = "warn", every_step: bool = False,
                 **thresholds: float) -> None:
        super().__init__()
        self.t = Thresholds.from_kwargs(thresholds)
        self.policy = check_policy(policy)
        self.log_every = check_log_every(log_every)
        self.every_step = bool(every_step)
        self._findings: list[Finding] = []
        self._session: Session | None = None

    @property
    def findings(self) -> list[Finding]:
        return list(self._findings)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        session, users = getattr(trainer, _SESSION, (None, 0))
        if session is None or session.closed:
            session, users = Session(_recorder_for(trainer), self.policy, self.t), 0
        setattr(trainer, _SESSION, (session, users + 1))
        self._session = session

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self._session is None:
            return
        session, users = getattr(trainer, _SESSION, (self._session, 1))
        setattr(trainer, _SESSION, (session, users - 1))
        if users - 1 <= 0:
            self._guard(session.close)
        self._session = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        if self._session is not None:
            self._guard(self._session.close)

    def record(self, trainer: pl.Trainer, report: StepReport, step: int) -> bool:
        """Log a step's report; returns True when the policy says to stop (and asks the trainer)."""
        if self._session is None:
            return False
        self._session.log(report.metrics, step)
        self._findings += report.findings
        stop = self._session.add(report.findings, policy=self.policy)
        if stop is not None:
            trainer.should_stop = True
        return stop is not None

    def flush_on_log_step(self, step: int) -> None:
        """Flushes metrics every `log_every` steps (also with `every_step`: flushes are batches)."""
        if self._session is not None and step % self.log_every == 0:
            self._guard(self._session.flush)

    def _guard(self, fn: Callable[[], Any], default: Any = None) -> Any:
        """Diagnostics never crash training: a failure becomes a warning."""
        return guarded(fn, default, what=type(self).__name__)

def _recorder_for(trainer: pl.Trainer) -> Recorder | None:
    """The run of the trainer's MLFlowLogger, else the active run / MLFLOW_RUN_ID; rank zero only."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger) and logger.run_id is not None:
            return Recorder(logger.run_id, logger._tracking_uri)
    return Recorder.resolve()

