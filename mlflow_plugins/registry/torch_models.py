"""PyTorch checkpoints in the registry: logged in the pt2 format, loaded without unpickling.

Registration itself (tags, the ``champion`` alias) is `gate.register_logged_model`.

Serialization, and why loading never unpickles user objects (read from the installed
mlflow 3.17.2 and torch 2.13 sources):

* ``mlflow.pytorch.log_model`` defaults to ``serialization_format="pt2"`` outside
  Databricks (``"pickle"`` there). ``"pickle"`` is ``torch.save(model, pickle_module=
  mlflow.pytorch.pickle_module)`` (cloudpickle) and loads with a full ``torch.load``: it
  runs arbitrary code. ``"pt2"`` is ``torch.export.export`` + ``torch.export.save`` and
  needs an ``input_example`` plus a TensorSpec signature: mlflow only infers one from a
  numpy example, so we pass the example as numpy. The signature's batch dimension is -1,
  exported as ``Dim.AUTO``: dynamic when the example's batch size is > 1, fixed when it is 1.
  A numpy example also gives the model a pyfunc flavor (``mlflow models serve``).
* A ``.pt2`` archive holds the graph as JSON and plain weights as raw bytes
  (``use_pickle: false``), but ``torch.export.load`` is not pickle-free: sample inputs go
  through ``torch.load(weights_only=True)`` with a *fallback to weights_only=False*,
  tensor-subclass weights through ``torch.load(weights_only=False)``, opaque constants
  through ``pickle.loads``. So a tampered archive can still run code.
* mlflow's loader checks an archive first when ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is
  false: every record must be JSON or short text, a raw tensor, or load under torch's
  restricted ``weights_only`` unpickler (``_validate_pt2_archive_is_pickle_free``, torch >=
  2.10); it also refuses the ``"pickle"`` format outright. The variable defaults to
  **true**, so :func:`load_champion` sets it to false around the load, and a refusal
  becomes ``ValueError``. The result is ``ExportedProgram.module()``, a
  ``torch.fx.GraphModule``: the eval-mode forward graph, not the original class.
* Plain checkpoint files go through :func:`load_state_dict_safely`:
  ``torch.load(weights_only=True)``, which admits tensors and primitive containers only.

Example:
    >>> result = register_checkpoint(model, project="repr_gradflow", run_id=run.info.run_id,
    ...                              metric="val/acc", value=0.91, healthy=True,
    ...                              input_example=batch[:4])
    >>> result.became_champion, result.reason
    >>> module = load_champion("repr_gradflow")
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from .gate import (
    CHAMPION,
    MODEL_NAME,
    RegistrationResult,
    champion,
    check_common_args,
    existing_run,
    pickle_disallowed,
    register_logged_model,
    tracking,
)


def register_checkpoint(
    model: torch.nn.Module,
    *,
    project: str,
    run_id: str,
    metric: str,
    value: float,
    healthy: bool,
    greater_is_better: bool = True,
    input_example: torch.Tensor,
    register_unhealthy: bool = True,
    tracking_uri: str | None = None,
) -> RegistrationResult:
    """Log `model` to the run as MLflow model "model" (pt2) and register it under `project`.

    The version is tagged ``fixlab.health`` (``healthy``/``unhealthy``),
    ``fixlab.selection_metric``, ``fixlab.metric.<metric>`` (the value) and
    ``fixlab.run_id``. The model is exported in eval mode on the CPU and put back as it was.
    It is always logged to the run; only registration depends on health.

    Args:
        model: the checkpoint to export; its forward must be traceable by ``torch.export``.
        project: the registered-model name.
        run_id: the run the checkpoint comes from.
        metric: the project's selection metric; ``value`` is this run's value of it.
        value: compared with the champion's tagged value; a non-finite value never wins.
        healthy: the run's health verdict (no critical finding).
        greater_is_better: direction of `metric`.
        input_example: one batch the model accepts (a batch size > 1 keeps it dynamic).
        register_unhealthy: when False an unhealthy run's model is logged, not registered.
        tracking_uri: defaults to the current tracking URI.

    Raises:
        ValueError: a bad argument, or a run that does not exist.
    """
    value = _check_args(model, project=project, run_id=run_id, metric=metric, value=value,
                        input_example=input_example)
    client = existing_run(run_id, tracking_uri)
    model_id = _log_model(model, run_id=run_id, input_example=input_example,
                          tracking_uri=tracking_uri)
    return register_logged_model(client, model_id, project=project, run_id=run_id, metric=metric,
                                 value=value, healthy=healthy, greater_is_better=greater_is_better,
                                 register_unhealthy=register_unhealthy)


def _check_args(model: Any, *, project: Any, run_id: Any, metric: Any, value: Any,
                input_example: Any) -> float:
    """Validate register_checkpoint's arguments; returns `value` as a float."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model is a {type(model).__name__}; allowed: a torch.nn.Module")
    value = check_common_args(project=project, run_id=run_id, metric=metric, value=value)
    if not isinstance(input_example, torch.Tensor):
        raise ValueError(f"input_example is a {type(input_example).__name__}; "
                         "allowed: a torch.Tensor")
    return value


@contextmanager
def _exportable(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The model in eval mode on the CPU for the block, then back in its mode and on its device.

    ``Module.to`` keeps parameter identity, so an optimizer holding them is unaffected.
    """
    devices = {t.device for t in [*model.parameters(), *model.buffers()]}
    if len(devices) > 1:
        raise ValueError(f"model has tensors on several devices {sorted(map(str, devices))}; "
                         "allowed: a model on one device")
    device = devices.pop() if devices else torch.device("cpu")
    training = model.training
    model.eval().to("cpu")
    try:
        yield model
    finally:
        model.to(device).train(training)


def _log_model(model: torch.nn.Module, *, run_id: str, input_example: torch.Tensor,
               tracking_uri: str | None) -> str:
    """Log `model` in the pt2 format to the run; returns the logged model's id."""
    import mlflow.pytorch

    example = input_example.detach().to("cpu").numpy()
    # Pinning requirements skips mlflow's inference, which re-loads the model in a subprocess.
    requirements = [f"torch=={torch.__version__.split('+')[0]}"]
    with tracking(tracking_uri), _exportable(model) as cpu_model:
        info = mlflow.pytorch.log_model(cpu_model, name=MODEL_NAME, input_example=example,
                                        serialization_format="pt2", run_id=run_id,
                                        pip_requirements=requirements)
    return info.model_id


# --------------------------------------------------------------------------- loading


def load_champion(project: str, tracking_uri: str | None = None) -> torch.nn.Module:
    """The champion version of `project`, loaded without unpickling anything but tensors.

    Returns the exported program's module (a ``torch.fx.GraphModule`` on the CPU).

    Raises:
        ValueError: the registered model does not exist (the message lists those that do),
            it has no champion, or its archive would need pickle to load.
    """
    import mlflow
    import mlflow.pytorch
    from mlflow.exceptions import MlflowException

    version = champion(mlflow.MlflowClient(tracking_uri=tracking_uri), project)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=tmp,
                                                    tracking_uri=tracking_uri)
        try:
            with pickle_disallowed():
                return mlflow.pytorch.load_model(local)
        except MlflowException as e:
            raise ValueError(f"{CHAMPION} v{version.version} of {project!r} ({version.source}) "
                             f"was refused: {e.message}") from None


def load_state_dict_safely(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint file with ``torch.load(weights_only=True, map_location="cpu")``.

    For ``--init_checkpoint`` style parameters: only tensors and primitive containers are
    accepted, so a file carrying arbitrary pickled objects is refused, not executed.

    Raises:
        ValueError: one line naming the path and the problem (missing, not a file,
            unreadable, corrupt, holds non-tensor objects, or is not a dict).
    """
    import pickle

    p = Path(path)
    if not p.exists():
        raise ValueError(f"checkpoint {str(p)!r} does not exist")
    if not p.is_file():
        raise ValueError(f"checkpoint {str(p)!r} is not a file")
    try:
        obj = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any failure to parse is a bad input file
        line = _one_line(e)
        if isinstance(e, pickle.UnpicklingError) and "global" in line.lower():
            raise ValueError(f"checkpoint {str(p)!r} was refused: it holds objects other than "
                             f"tensors and plain containers ({line}); allowed: what "
                             "torch.load(weights_only=True) accepts") from None
        raise ValueError(f"checkpoint {str(p)!r} is corrupt or not a torch checkpoint "
                         f"({type(e).__name__}: {line})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint {str(p)!r} holds a {type(obj).__name__}; allowed: a dict "
                         "(a state_dict or a checkpoint dict)")
    return obj


def _one_line(error: BaseException) -> str:
    """The informative line of a (possibly multi-line) torch error message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Unsupported global", "Unsupported operand",
                            "Trying to load unsupported")):
            return line.rstrip(".")
    return lines[0].rstrip(".") if lines else type(error).__name__
