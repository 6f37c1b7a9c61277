"""`FixlabRunContext`: tags every new MLflow run with the fixlab version and project context.

Registered through the `mlflow.run_context_provider` entry point in pyproject.toml, so
`mlflow.start_run()` applies it without any call from user code.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

from mlflow.tracking.context.abstract_context import RunContextProvider

from .liveness import process_tags

# Tag name -> environment variable; `mlflow run` entry points export these for their runs.
_ENV_TAGS = {
    "fixlab.project": "FIXLAB_PROJECT",
    "fixlab.variant": "FIXLAB_VARIANT",
    "fixlab.document": "FIXLAB_DOCUMENT",
}


def fixlab_version() -> str:
    """The installed fixlab distribution's version, or `unknown` when it is not installed."""
    try:
        return version("fixlab")
    except PackageNotFoundError:
        return "unknown"


class FixlabRunContext(RunContextProvider):
    """Adds `fixlab.version`, `fixlab.project|variant|document` from the environment, and the
    tags naming the process that created the run (`liveness`: `fixlab runs --stale` finds the
    runs whose process died without ending them)."""

    def in_context(self) -> bool:
        return True

    def tags(self) -> dict[str, str]:
        # Read at each run's creation, not at registration: one process may start many runs.
        tags = {"fixlab.version": fixlab_version(), **process_tags()}
        tags.update({tag: os.environ[var] for tag, var in _ENV_TAGS.items() if os.environ.get(var)})
        return tags
