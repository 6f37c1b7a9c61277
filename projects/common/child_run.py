"""Nested runs: one child MLflow run per configuration of a comparison, inside the project's run.

A comparison entry point (a table over settings and seeds) opens its run with `open_run` as any
other, then one `child_run` per cell. Each child is a full fixlab run of its own: tagged like its
parent (project, variant, document) plus `fixlab.child`, with its own health report (its findings
in its own tags), its own checkpoint folder, and an outcome; the parent holds the table.

Example:
    >>> with open_run(SPEC, config) as parent:
    ...     for seed in seeds:
    ...         with child_run(parent, config.child(seed=seed), name=f"attention-seed{seed}") as child:
    ...             fit_and_test(child, module, datamodule, callbacks=diagnostics)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import mlflow
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from mlflow_plugins.recording import LoggedSteps
from mlflow_plugins.run_record import record_outcome, run_report
from projects.common.config import RunConfig
from projects.common.run import DOCUMENT_TITLE_TAG, ProjectRun
from projects.common.run_folder import RunFolder
from projects.common.spec import ProjectSpec
from projects.common.tracking import fixlab_tags

__all__ = ["CHILD_TAG", "child_run"]

CHILD_TAG = "fixlab.child"  # what the child varies, e.g. "image/attention/seed1"


@contextmanager
def child_run(parent: ProjectRun, config: RunConfig, *, child: str, spec: ProjectSpec | None = None
              ) -> Iterator[ProjectRun]:
    """A nested run of `parent` for the block, ended FINISHED, FAILED or KILLED like a project run.

    Args:
        parent: the open project run.
        config: the child's config (its `entry_point` is the parent's).
        child: what this child varies (`fixlab.child`), also the end of its run name.
        spec: the child's spec when it differs from the parent's (e.g. another selection metric).
    """
    spec = spec or parent.spec
    client = mlflow.MlflowClient()
    experiment_id = client.get_run(parent.run_id).info.experiment_id
    name = f"{config.entry_point}-{child.replace('/', '-')}"
    tags = {**fixlab_tags(spec.name, config.entry_point, spec.document), DOCUMENT_TITLE_TAG: spec.document_label,
            MLFLOW_PARENT_RUN_ID: parent.run_id, MLFLOW_RUN_NAME: name, CHILD_TAG: child}
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    status, error = "FAILED", None
    try:
        with RunFolder.for_run(run_id).hold() as folder:
            with run_report(run_id) as report:
                report.use_citations(spec.cited())
                yield ProjectRun(spec, config, run_id, report, folder, False, LoggedSteps(), named=False)
            folder.remove()
        status = "FINISHED"
    except KeyboardInterrupt as exc:
        status, error = "KILLED", exc
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        record_outcome(run_id, status, error)
        client.set_terminated(run_id, status)
