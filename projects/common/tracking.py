"""The MLflow run of an entry script: resolved or started, tagged, and never left RUNNING.

Under `mlflow run`, MLflow has already created the run and exported `MLFLOW_RUN_ID`; the script
must log into that run (opening another would split the results). Run standalone, the script
starts its own run. Either way `tracked_run` ends the run FINISHED when the block completes,
KILLED on Ctrl-C or SIGTERM and FAILED on any other exception, so a crash mid-training never leaves a
run that looks like it is still going.

Example:
    >>> with tracked_run(experiment="repr_gradflow", tags=fixlab_tags("repr_gradflow",
    ...                  "repr_fixed", "001_bac714bd05ae718b.txt")) as run:
    ...     log_params_once(run.info.run_id, {"epochs": 40})
"""

from __future__ import annotations

import os
import signal
import threading
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import mlflow
from mlflow.entities import Param, RunTag

from mlflow_plugins.context import FixlabRunContext
from mlflow_plugins.run_record import record_outcome

__all__ = ["RUN_ID_ENV", "fixlab_tags", "tracked_run", "log_params_once", "set_tags_now"]

RUN_ID_ENV = "MLFLOW_RUN_ID"


def fixlab_tags(project: str, variant: str, document: str) -> dict[str, str]:
    """The `fixlab.*` tags of DESIGN.md: the run-context provider's (`fixlab.version`) plus
    project, variant and document. `mlflow run` creates its run without context providers,
    so the entry script sets them all."""
    return {**FixlabRunContext().tags(), "fixlab.project": project, "fixlab.variant": variant,
            "fixlab.document": document}


@contextmanager
def tracked_run(*, experiment: str, tags: Mapping[str, str], run_name: str | None = None,
                resume: str | None = None) -> Iterator[mlflow.ActiveRun]:
    """The run to log into, active for the block; ended FINISHED, FAILED or KILLED.

    Args:
        experiment: used only for a standalone run, and only when neither
            `MLFLOW_EXPERIMENT_NAME` nor `MLFLOW_EXPERIMENT_ID` chooses one.
        tags: set on the run first thing.
        run_name: for a standalone run; MLflow picks one when None.
        resume: the id of an existing run to continue (it becomes RUNNING again).

    Raises:
        ValueError: `resume` names another run than `MLFLOW_RUN_ID`.
        Whatever the block raises, after the run has been marked FAILED (or KILLED).
    """
    # The recorder reads back small artifacts; MLflow's progress bars would bury the summary.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    run_id = os.environ.get(RUN_ID_ENV)
    if resume and run_id and run_id != resume:
        raise ValueError(f"resume={resume!r} is not allowed under {RUN_ID_ENV}={run_id!r}; allowed: the same run id")
    run_id = resume or run_id
    if run_id:
        run = mlflow.start_run(run_id=run_id)
    elif os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID"):
        run = mlflow.start_run(run_name=run_name)
    else:
        # Not mlflow.set_experiment: that would change the process-wide active experiment.
        run = mlflow.start_run(experiment_id=_experiment_id(experiment), run_name=run_name)
    status, error = "FAILED", None
    stopped: list[int] = []  # the signal that stopped the block, if one did
    previous_handlers = _signals_as_interrupt(stopped)
    if os.environ.get(RUN_ID_ENV):
        _end_with_parent()
    try:
        mlflow.set_tags(dict(tags))
        yield run
        status = "FINISHED"
    except KeyboardInterrupt as exc:
        status, error = "KILLED", exc
        raise
    except SystemExit as exc:
        # Lightning turns an interrupt into SystemExit(1) after its graceful shutdown.
        status = "KILLED" if stopped else "FINISHED" if exc.code in (None, 0) else "FAILED"
        error = None if status == "FINISHED" else exc
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        # Before end_run: a run that has ended always says how (`fixlab.outcome`). Never raises.
        record_outcome(run.info.run_id, status, error)
        try:
            mlflow.end_run(status)
        except Exception as exc:  # noqa: BLE001 - do not hide the block's own error
            warnings.warn(f"could not end MLflow run {run.info.run_id} as {status}: {exc}", stacklevel=2)


def _experiment_id(name: str) -> str:
    """The id of experiment `name`, created if it does not exist: in a SQLite store with its
    artifacts beside the database (`store.experiment_artifact_location`), not under the working
    directory of whichever process created it."""
    from mlflow.exceptions import MlflowException

    from mlflow_plugins.store import experiment_artifact_location

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(
            name, artifact_location=experiment_artifact_location(client.tracking_uri, name))
    except MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(name).experiment_id


def _signals_as_interrupt(stopped: list[int]) -> dict[int, Any]:
    """Turn SIGTERM (a killed job, a timeout) and Ctrl-C into KeyboardInterrupt, so the run ends
    KILLED instead of staying RUNNING; the signal is appended to `stopped`, which also tells a
    stop apart from a failure when a library converts the interrupt (Lightning exits with 1).
    Only the first signal interrupts: a repeat (a job scheduler's second SIGTERM, Ctrl-C pressed
    again) arrives while the run is being closed, and must not cut off the writing of its report
    and outcome; SIGKILL still ends the process at once. Returns the previous handlers (none off
    the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def interrupt(signum: int, frame: Any) -> None:
        first = not stopped
        stopped.append(signum)
        if first:
            raise KeyboardInterrupt(f"signal {signum}")

    return {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}


def _end_with_parent() -> None:
    """Under `mlflow run`: SIGTERM this process when its parent (the `mlflow run` command) dies.

    A scheduler, `timeout` or CI stops a job by signalling `mlflow run`, which exits without
    passing the signal on; training would go on as an orphan and the run stay RUNNING. With the
    parent-death signal, training stops the way SIGTERM stops it: the run ends KILLED with its
    findings and report written. Linux only (prctl); elsewhere nothing changes.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def log_params_once(run_id: str, params: Mapping[str, Any]) -> dict[str, str]:
    """Log the params the run does not have yet; returns what was logged.

    MLflow params are immutable and `mlflow run` already logs each `-P` value as typed (for
    example `3e-3`); logging `0.003` under the same key would be an error. Keys present on
    the run are kept as they are.
    """
    client = mlflow.MlflowClient()
    present = client.get_run(run_id).data.params
    new = {str(k): str(v) for k, v in params.items() if str(k) not in present}
    items = list(new.items())
    for start in range(0, len(items), 100):  # MLflow's limit of params per batch
        client.log_batch(run_id, params=[Param(k, v) for k, v in items[start:start + 100]])
    return new


def set_tags_now(run_id: str, tags: Mapping[str, str]) -> None:
    """Set tags synchronously in one batch."""
    mlflow.MlflowClient().log_batch(run_id, tags=[RunTag(str(k), str(v)) for k, v in tags.items()])
