"""`mlflow run . -e repr_broken` logs into the project's experiment (`repr_gradflow`), not `Default`.

`mlflow run` creates its run before the entry script starts, in the experiment given by
`--experiment-name`/`--experiment-id`, else `MLFLOW_EXPERIMENT_NAME`/`MLFLOW_EXPERIMENT_ID`,
else the first MLflow "default experiment provider" (entry-point group
`mlflow.default_experiment_provider`) that is in context, else `Default`. This provider is in
context only in the `mlflow run` process of a fixlab project directory: it names the experiment
after the project whose entry script the entry point runs (`python -m projects.<project>.train`).
A name or id the user gives wins, as MLflow's order above says.

Imported by MLflow on every `import mlflow`: standard library (and PyYAML, an MLflow
dependency, on first use) only.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["ProjectExperiment", "project_of_mlflow_run"]

_COMMAND = re.compile(r"python3?\s+-m\s+projects\.([A-Za-z_][A-Za-z0-9_]*)\.(?:train|search_eval)\b")
_PROJECT_NAME = "fixlab"  # `name:` in MLproject


def project_of_mlflow_run(argv: Sequence[str]) -> str | None:
    """The fixlab project an `mlflow run <dir> -e <entry>` command line runs, or None.

    None for any other command, a project that is not fixlab's, or an entry point whose command
    is not a project's entry script.
    """
    if len(argv) < 2 or Path(argv[0]).name not in ("mlflow", "__main__.py") or argv[1] != "run":
        return None
    uri, entry = None, "main"
    args = iter(argv[2:])
    for arg in args:
        if arg in ("-e", "--entry-point"):
            entry = next(args, entry)
        elif arg.startswith("--entry-point="):
            entry = arg.split("=", 1)[1]
        elif arg.startswith("-") and "=" not in arg and arg != "--build-image":
            next(args, None)  # an option's value
        elif not arg.startswith("-") and uri is None:
            uri = arg
    if uri is None or not (Path(uri) / "MLproject").is_file():
        return None
    import yaml  # an MLflow dependency: loaded only in an `mlflow run` process

    try:
        spec = yaml.safe_load((Path(uri) / "MLproject").read_text())
        command = str(spec["entry_points"][entry]["command"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    if spec.get("name") != _PROJECT_NAME:
        return None
    match = _COMMAND.search(command)
    return match.group(1) if match else None


class ProjectExperiment:
    """MLflow default-experiment provider: the project's experiment under `mlflow run`."""

    def in_context(self) -> bool:
        return project_of_mlflow_run(sys.argv) is not None and not (
            os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID"))

    def get_experiment_id(self) -> str:
        """The id of the experiment named after the project, created if it does not exist."""
        import mlflow

        from mlflow_plugins.store import experiment_artifact_location

        name = project_of_mlflow_run(sys.argv)
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(name, artifact_location=experiment_artifact_location(client.tracking_uri, name))
