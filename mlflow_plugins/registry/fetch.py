"""A registered model's files, fetched from one store: the client's, never the process-wide one.

``mlflow.artifacts.download_artifacts("models:/m-...", tracking_uri=X)`` resolves a logged model
through the process-wide tracking URI: from a process that has not pointed MLflow at X it fails
("Logged model ... not found") and creates ``./mlflow.db`` (MLflow's default store) in the
working directory. Here every look-up goes through the given client, and the files are read
from the logged model's own artifact location.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .gate import registered_names

PREFIX = "models:/"
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@contextmanager
def quiet_downloads() -> Iterator[None]:
    """MLflow's download progress bar off for the block: a refusal or a load error stays one line on
    stderr (predict.py's contract). The switch is an environment variable MLflow reads per download."""
    previous = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = previous


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def model_version(client: Any, uri: str) -> Any | None:
    """The model version `uri` names (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``), or None
    for a logged model's id (``models:/m-...``).

    Raises:
        ValueError: one line: not a models:/ URI, or no such version in the client's store
            (listing the registered models there).
    """
    from mlflow.exceptions import MlflowException

    if not isinstance(uri, str) or not uri.startswith(PREFIX) or len(uri) <= len(PREFIX):
        raise ValueError(f"model {uri!r} is not a model URI; allowed: models:/NAME@ALIAS, "
                         "models:/NAME/VERSION or models:/MODEL_ID")
    rest = uri[len(PREFIX):]
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            return client.get_model_version_by_alias(name, alias)
        if "/" in rest:
            name, version = rest.rsplit("/", 1)
            return client.get_model_version(name, version)
    except MlflowException as e:
        raise ValueError(f"model {uri!r} is not in {client.tracking_uri}: {_first_line(e.message)}; "
                         f"registered models: {registered_names(client) or 'none'}") from None
    return None


def model_files(client: Any, uri: str, dst: str | Path) -> Path:
    """Download the model `uri` names into `dst` using only `client`'s store; returns its directory.

    Raises:
        ValueError: one line: the URI names nothing in the store, or its files cannot be read.
    """
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    version = model_version(client, uri)
    source = version.source if version is not None else uri
    model_id = getattr(version, "model_id", None) or (source[len(PREFIX):] if source.startswith(PREFIX) else None)
    try:
        if model_id is not None and "/" not in model_id:
            location = client.get_logged_model(model_id).artifact_location
        else:  # a version registered from a run's artifacts (runs:/...) or a plain location
            location = source
        with quiet_downloads():
            local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(dst),
                                                        tracking_uri=client.tracking_uri)
    except (MlflowException, OSError) as e:
        raise ValueError(f"model {uri!r} could not be read from {client.tracking_uri}: "
                         f"{_first_line(getattr(e, 'message', e))}; registered models: "
                         f"{registered_names(client) or 'none'}") from None
    return Path(local)
