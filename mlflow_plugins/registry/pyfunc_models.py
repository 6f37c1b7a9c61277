"""Registered models as data plus an installed loader: MLflow's ``loader_module`` pyfunc.

A fixlab model is logged with ``loader_module="<a module of the installed fixlab packages>"``
and a data directory (weights and a JSON config; for Flax: msgpack, which holds arrays and plain
containers only). The artifact holds no code and no pickle: ``mlflow.pyfunc.load_model`` imports
the installed module and calls its ``_load_pyfunc(data_path)``. Our loaders (`load_pyfunc`,
`load_champion_pyfunc`) also check the MLmodel first (`mlmodel_check`), so an artifact whose
MLmodel was edited to name code, a pickle or another loader is refused before anything runs.

Registration (tags, the gate, the ``champion`` alias) is `gate.register_logged_model`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any, Collection, Iterator, Sequence

from ..store import checked_store
from .fetch import model_files, quiet_downloads
from .gate import (
    MODEL_NAME,
    Evidence,
    RegistrationResult,
    champion,
    check_common_args,
    existing_run,
    register_logged_model,
    tracking,
)
from .mlmodel_check import DATA_DIR, TRUSTED_PACKAGES, check_mlmodel, trusted


def register_pyfunc(loader_module: str, data_path: str | os.PathLike[str], *, signature: Any, input_example: Any,
                    pip_requirements: Sequence[str], project: str, run_id: str, metric: str, value: float,
                    health: str, evidence: Evidence, greater_is_better: bool = True,
                    register_refused: bool = True, tracking_uri: str | None = None) -> RegistrationResult:
    """Log the data in `data_path` to the run as pyfunc "model" loaded by `loader_module`, and
    register it under `project` behind the gate.

    Args:
        loader_module: an installed module of the fixlab packages with ``_load_pyfunc(data_path)``
            (e.g. ``projects.cpc_snn_gw.serving``).
        data_path: a directory of data files the loader reads (weights, config JSON).
        signature: an `mlflow.models.ModelSignature` (input and output tensor specs).
        input_example: one batch the model accepts (numpy).
        pip_requirements: pinned requirements (pinning skips MLflow's inference, which would
            load the model in a subprocess).
        project, run_id, metric, value, health, evidence, greater_is_better, register_refused,
        tracking_uri: as for `register_checkpoint`.

    Raises:
        ValueError: a bad argument, a loader module outside the installed packages, a missing
            data directory, or a run that does not exist.
    """
    value = check_common_args(project=project, run_id=run_id, metric=metric, value=value, health=health,
                              evidence=evidence)
    check_loader_module(loader_module)
    if not Path(data_path).is_dir():
        raise ValueError(f"data_path={str(data_path)!r} is not a directory; allowed: an existing directory "
                         "of data files")
    client = existing_run(run_id, tracking_uri)
    model_id = log_data_model(loader_module, data_path, run_id=run_id, signature=signature,
                              input_example=input_example, pip_requirements=pip_requirements,
                              tracking_uri=tracking_uri)
    return register_logged_model(client, model_id, project=project, run_id=run_id, metric=metric, value=value,
                                 health=health, evidence=evidence, greater_is_better=greater_is_better,
                                 register_refused=register_refused)


def check_loader_module(loader_module: Any) -> None:
    """Refuse a loader module that is not an installed fixlab module with ``_load_pyfunc``."""
    if not trusted(loader_module):
        raise ValueError(f"loader_module={loader_module!r} is not allowed; allowed: a module inside "
                         f"{list(TRUSTED_PACKAGES)}")
    try:
        hook = getattr(import_module(loader_module), "_load_pyfunc", None)
    except ImportError as e:
        raise ValueError(f"loader_module={loader_module!r} cannot be imported ({e})") from None
    if not callable(hook):
        raise ValueError(f"loader_module={loader_module!r} has no _load_pyfunc(data_path); allowed: a module "
                         "that defines it")


def log_data_model(loader_module: str, data_path: str | os.PathLike[str], *, run_id: str, signature: Any,
                   input_example: Any, pip_requirements: Sequence[str], tracking_uri: str | None) -> str:
    """Log `data_path` to the run as pyfunc "model" (data under ``data/model``, no code); returns
    the logged model's id."""
    import mlflow.pyfunc
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="fixlab_data_") as tmp:
        data = Path(tmp) / Path(DATA_DIR).name  # MLflow keeps the directory's name under data/
        shutil.copytree(data_path, data)
        with tracking(tracking_uri):
            # `Model.log` rather than `pyfunc.log_model`: only the former takes a run_id. MLflow's
            # INFO line "Validating input example against model signature" is off (a mismatch
            # still raises); its warnings still show.
            with quiet_info("mlflow.pyfunc"):
                info = Model.log(artifact_path=None, name=MODEL_NAME, flavor=mlflow.pyfunc,
                                 loader_module=loader_module, data_path=str(data), signature=signature,
                                 input_example=input_example, pip_requirements=list(pip_requirements),
                                 run_id=run_id)
    return info.model_id


@contextmanager
def quiet_info(name: str) -> Iterator[None]:
    """The logger `name` at WARNING or above for the block (its INFO lines off), then as it was."""
    logger = logging.getLogger(name)
    previous = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def load_pyfunc(uri: str, tracking_uri: str | None = None,
                loader_modules: Collection[str] | None = None) -> Any:
    """The pyfunc model at `uri` (``models:/NAME@ALIAS``, ``models:/NAME/VERSION``), loaded only if
    it is data for an installed loader.

    Everything is read through the client of `tracking_uri` (default: the current tracking URI);
    the MLmodel is checked before MLflow reads it, so nothing from the artifact is imported or
    unpickled.

    Args:
        loader_modules: the loader modules accepted (e.g. a project's own); None: any module of
            the installed fixlab packages.

    Raises:
        ValueError: one line naming `uri`: not in the store (listing the registered models),
            refused (what its MLmodel names), or its data does not load.
    """
    import mlflow
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=checked_store(tracking_uri))  # never creates a store
    with tempfile.TemporaryDirectory(prefix="fixlab_model_") as tmp:
        local = model_files(client, uri, tmp)
        try:
            check_mlmodel(local, loader_modules)
        except ValueError as e:
            raise ValueError(f"model {uri!r} was refused: {e}") from None
        try:
            with quiet_downloads():  # MLflow copies the local directory once more
                return mlflow.pyfunc.load_model(str(local))
        except MlflowException as e:
            raise ValueError(f"model {uri!r} could not be loaded: {_first_line(e.message)}") from None
        except ValueError as e:  # the loader module's one line
            raise ValueError(f"model {uri!r} could not be loaded: {_first_line(str(e))}") from None


def load_champion_pyfunc(project: str, tracking_uri: str | None = None,
                         loader_modules: Collection[str] | None = None) -> Any:
    """The champion version of `project` as a pyfunc model, loaded as `load_pyfunc` loads.

    Raises:
        ValueError: one line: the registered model does not exist (listing those that do), has
            no champion, or is refused or cannot be loaded.
    """
    import mlflow

    version = champion(mlflow.MlflowClient(tracking_uri=checked_store(tracking_uri)), project)
    return load_pyfunc(f"models:/{project}/{version.version}", tracking_uri, loader_modules)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""

