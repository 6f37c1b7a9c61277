"""`fixlab resume RUN_ID`: continue a project run that died, in the same MLflow run.

The run's tag `fixlab.checkpoints` names its checkpoint folder; the folder's `config.json` names
the project and holds the config the run started with. The project's `train_and_evaluate` is then
called with `resume=RUN_ID`: it continues from the last checkpoint in that folder (or from the
start if the run died before its first one), skipping the metric steps the run already holds.

Example:
    $ fixlab resume 3f2c0d...   # after `kill -9`, a power cut, a job time limit
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from mlflow_plugins.cli import Subcommand
from mlflow_plugins.store import URI_HELP, checked_store
from projects.common.run_folder import CHECKPOINTS_TAG, RunBusyError, RunFolder

__all__ = ["COMMAND", "ResumeError", "resume_run", "resumable_folder"]

RESUMABLE = ("RUNNING", "FAILED", "KILLED")


class ResumeError(ValueError):
    """The run cannot be continued; the message says why, in one line."""


def resumable_folder(run: Any) -> RunFolder:
    """The checkpoint folder of MLflow run `run`, checked for being continuable now.

    Raises:
        ResumeError: the run finished, is not a fixlab project run, lost its folder, or is being
            trained by a live process.
    """
    run_id, status = run.info.run_id, run.info.status
    if status not in RESUMABLE:
        raise ResumeError(f"run {run_id} is {status}; allowed: a run that died ({', '.join(RESUMABLE)})")
    path = run.data.tags.get(CHECKPOINTS_TAG)
    if not path:
        raise ResumeError(f"run {run_id} has no tag {CHECKPOINTS_TAG}: it was not started by a fixlab project")
    folder = RunFolder(path)
    if not folder.file("config.json").is_file():
        raise ResumeError(f"run {run_id}'s checkpoint folder {path} is gone or has no config.json "
                          "(removed, or the run was started on another machine)")
    try:
        with folder.hold():
            pass
    except RunBusyError as exc:
        raise ResumeError(f"run {run_id} cannot be resumed: {exc}") from None
    return folder


def resume_run(run_id: str) -> Any:
    """Continue run `run_id` of the current tracking store to its end; the project's `RunSummary`.

    Raises:
        ResumeError: see `resumable_folder`; or the folder's config no longer loads.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise ResumeError(f"no run {run_id!r} in the tracking store: {exc.message.splitlines()[0]}") from None
    project_name, config_json = resumable_folder(run).read_config()
    try:
        project = importlib.import_module(f"projects.{project_name}")
        config = project.Config.from_json(config_json)
        project.check_inputs(config)
    except (ImportError, ValueError, TypeError) as exc:
        raise ResumeError(f"run {run_id}'s config ({project_name}) cannot be rebuilt: {exc}") from None
    return project.train_and_evaluate(config, resume=run_id)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the MLflow run to continue")
    parser.add_argument("--tracking-uri", default=None, metavar="URI", help=URI_HELP)


def _handler(args: argparse.Namespace) -> int:
    import mlflow

    try:
        checked_store(args.tracking_uri)  # a missing local store is refused, never created
    except ValueError as exc:
        print(f"fixlab resume: {exc}", file=sys.stderr)
        return 2
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
    from projects.common.console import quiet_console  # as for a run started by its entry script

    quiet_console()
    try:
        summary = resume_run(args.run_id)
    except ResumeError as exc:
        print(f"fixlab resume: {exc}", file=sys.stderr)
        return 2
    print(summary.text())
    return 0


COMMAND = Subcommand("continue a project run that died (SIGKILL, power loss, time limit) in the same MLflow run",
                     _arguments, _handler)
