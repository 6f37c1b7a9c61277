"""Models as code in the registry: a pyfunc defined by a source file plus plain weight files.

MLflow's "models from code" logs the *source file* of a `PythonModel` (which ends with
``mlflow.models.set_model(...)``) instead of a cloudpickled instance; the weights travel as
artifacts the model reads in ``load_context`` (for Flax: msgpack, which holds arrays and plain
containers only). Loading therefore executes the project's own code and unpickles nothing,
and it still works with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``.

Registration (tags, the ``champion`` alias) is `gate.register_logged_model`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .gate import (
    CHAMPION,
    MODEL_NAME,
    RegistrationResult,
    champion,
    check_common_args,
    existing_run,
    pickle_disallowed,
    register_logged_model,
    registered_names,
    tracking,
)


def register_pyfunc(code_path: str | os.PathLike[str], *, artifacts: Mapping[str, str | os.PathLike[str]],
                    signature: Any, input_example: Any, pip_requirements: Sequence[str], project: str,
                    run_id: str, metric: str, value: float, healthy: bool, greater_is_better: bool = True,
                    register_unhealthy: bool = True, tracking_uri: str | None = None) -> RegistrationResult:
    """Log the model defined in `code_path` to the run as "model" and register it under `project`.

    Args:
        code_path: a Python file that defines a `PythonModel` and calls `mlflow.models.set_model`.
        artifacts: name -> local file the model reads in `load_context` (weights, config).
        signature: an `mlflow.models.ModelSignature` (input and output tensor specs).
        input_example: one batch the model accepts (numpy).
        pip_requirements: pinned requirements (pinning skips MLflow's inference, which would
            load the model in a subprocess).
        project, run_id, metric, value, healthy, greater_is_better, register_unhealthy,
        tracking_uri: as for `register_checkpoint`.

    Raises:
        ValueError: a bad argument, a missing file, or a run that does not exist.
    """
    import mlflow.pyfunc
    from mlflow.models import Model

    value = check_common_args(project=project, run_id=run_id, metric=metric, value=value)
    for label, path in (("code_path", code_path), *((f"artifacts[{k!r}]", v) for k, v in artifacts.items())):
        if not Path(path).is_file():
            raise ValueError(f"{label}={str(path)!r} is not a file; allowed: an existing file")
    client = existing_run(run_id, tracking_uri)
    with tracking(tracking_uri):
        # `Model.log` rather than `pyfunc.log_model`: only the former takes a run_id.
        info = Model.log(
            artifact_path=None, name=MODEL_NAME, flavor=mlflow.pyfunc, python_model=str(code_path), artifacts={k: str(v) for k, v in artifacts.items()},
            signature=signature, input_example=input_example, pip_requirements=list(pip_requirements),
            run_id=run_id)
    return register_logged_model(client, info.model_id, project=project, run_id=run_id, metric=metric,
                                 value=value, healthy=healthy, greater_is_better=greater_is_better,
                                 register_unhealthy=register_unhealthy)


def load_pyfunc(uri: str, tracking_uri: str | None = None) -> Any:
    """The pyfunc model at `uri` (e.g. ``models:/NAME@champion``), loaded with pickle refused.

    Raises:
        ValueError: one line naming `uri`, MLflow's reason and the registered models there.
    """
    import mlflow
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        with tracking(tracking_uri), pickle_disallowed():
            return mlflow.pyfunc.load_model(uri)
    except MlflowException as e:
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        raise ValueError(f"model {uri!r} could not be loaded from {client.tracking_uri}: "
                         f"{e.message.splitlines()[0]}; registered models: "
                         f"{registered_names(client) or 'none'}") from None


def load_champion_pyfunc(project: str, tracking_uri: str | None = None) -> Any:
    """The champion version of `project` as a pyfunc model, loaded with pickle refused.

    Raises:
        ValueError: one line: the registered model does not exist (listing those that do),
            has no champion, or cannot be loaded.
    """
    import mlflow

    champion(mlflow.MlflowClient(tracking_uri=tracking_uri), project)
    return load_pyfunc(f"models:/{project}@{CHAMPION}", tracking_uri)
