"""PyTorch checkpoints in the registry: logged as data (weights + JSON config), loaded by our code.

A registered torch model is a pyfunc whose ``loader_module`` is `torch_format` (installed with
fixlab) and whose data are ``model.json`` (model and config class names, the config's values)
and ``weights.pt`` (the state dict, read with ``torch.load(weights_only=True)``). Nothing in the
artifact is code or a pickle of an object: `load_champion` checks the MLmodel, rebuilds the
model class from the installed package and loads the weights; ``mlflow.pyfunc.load_model`` on
the same version runs the same `torch_format` code.

Registration itself (the gate, tags, the ``champion`` alias) is `gate.register_logged_model`.

Example:
    >>> result = register_checkpoint(module.net, project="repr-gradflow", run_id=run.info.run_id,
    ...                              metric="val/acc", value=0.91, health="ok",
    ...                              evidence=Evidence(steps=trainer.global_step, baseline=1 / 60),
    ...                              input_example=batch[:4])
    >>> result.became_champion, result.reason
    >>> net = load_champion("repr-gradflow")
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..store import checked_store
from . import torch_format
from .fetch import model_files
from .gate import (
    CHAMPION,
    Evidence,
    RegistrationResult,
    champion,
    check_common_args,
    existing_run,
    register_logged_model,
)
from .mlmodel_check import DATA_DIR, check_mlmodel
from .pyfunc_models import log_data_model
from .torch_format import load_state_dict_safely

__all__ = ["register_checkpoint", "load_champion", "load_state_dict_safely"]


def register_checkpoint(
    model: torch.nn.Module,
    *,
    project: str,
    run_id: str,
    metric: str,
    value: float,
    health: str,
    evidence: Evidence,
    input_example: torch.Tensor,
    greater_is_better: bool = True,
    register_refused: bool = True,
    tracking_uri: str | None = None,
) -> RegistrationResult:
    """Log `model` to the run as MLflow model "model" (weights + config) and register it under `project`.

    The model is rebuilt from what was written and must predict what `model` predicts in eval
    mode on `input_example`; `model` is left as it was found (modes and device). It is always
    logged to the run; whether it is registered and crowned is the gate's (`gate`) decision.

    Args:
        model: the checkpoint: a module built as ``Model(config)`` from a dataclass config kept as
            ``model.config``, both classes defined in the installed fixlab packages.
        project: the registered-model name.
        run_id: the run the checkpoint comes from.
        metric: the project's selection metric; ``value`` is this run's value of it.
        value: compared with the baseline and the champion's tagged value; a non-finite value
            never wins.
        health: the run's health, "ok", "warning" or "critical" (`fixlab.health`); a critical run
            never gets the alias.
        evidence: the steps the diagnostics observed and the baseline `metric` must beat.
        input_example: one batch the model accepts; its batch dimension becomes -1 in the signature.
        greater_is_better: direction of `metric`.
        register_refused: when False, a run the gate refuses is logged, not registered.
        tracking_uri: defaults to the current tracking URI.

    Raises:
        ValueError: a bad argument, a model that cannot be rebuilt from its data, or a run that
            does not exist.
    """
    value = _check_args(model, project=project, run_id=run_id, metric=metric, value=value, health=health,
                        evidence=evidence, input_example=input_example)
    client = existing_run(run_id, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="fixlab_torch_") as tmp:
        data = torch_format.save(model, Path(tmp) / "model")
        example, output = _rebuilt_predicts_the_same(model, data, input_example)
        model_id = log_data_model(torch_format.__name__, data, run_id=run_id,
                                  signature=_tensor_signature(example, output), input_example=example,
                                  # pinned: skips mlflow's inference, which loads the model in a subprocess
                                  pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                                  tracking_uri=tracking_uri)
    return register_logged_model(client, model_id, project=project, run_id=run_id, metric=metric,
                                 value=value, health=health, evidence=evidence,
                                 greater_is_better=greater_is_better, register_refused=register_refused)


def _check_args(model: Any, *, project: Any, run_id: Any, metric: Any, value: Any, health: Any, evidence: Any,
                input_example: Any) -> float:
    """Validate register_checkpoint's arguments; returns `value` as a float."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model is a {type(model).__name__}; allowed: a torch.nn.Module")
    value = check_common_args(project=project, run_id=run_id, metric=metric, value=value, health=health,
                              evidence=evidence)
    if not isinstance(input_example, torch.Tensor):
        raise ValueError(f"input_example is a {type(input_example).__name__}; "
                         "allowed: a torch.Tensor")
    return value


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`model` in eval mode for the block, then every submodule back in its own mode."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def _rebuilt_predicts_the_same(model: torch.nn.Module, data: Path,
                               input_example: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The example and the model's output on it (numpy), after checking the model rebuilt from
    `data` gives the same output: what is registered is what was trained.

    Raises:
        ValueError: the forward does not return one tensor, or the rebuilt model differs.
    """
    device = next((t.device for t in [*model.parameters(), *model.buffers()]), torch.device("cpu"))
    with _eval_mode(model), torch.no_grad():
        expected = model(input_example.to(device))
    if not isinstance(expected, torch.Tensor):
        raise ValueError(f"model's forward returns a {type(expected).__name__}; allowed: one tensor")
    expected = expected.detach().to("cpu")
    example = input_example.detach().to("cpu")
    with torch.no_grad():
        rebuilt = torch_format.load(data)(example)
    if rebuilt.shape != expected.shape or not torch.allclose(rebuilt, expected, rtol=1e-5, atol=1e-6):
        diff = (rebuilt - expected).abs().max().item() if rebuilt.shape == expected.shape else "shape"
        raise ValueError(f"{type(model).__name__} rebuilt from model.config and its state_dict predicts "
                         f"differently (max |diff| {diff}); allowed: a model whose state is its config "
                         "and state_dict")
    return example.numpy(), expected.numpy()


def _tensor_signature(example: np.ndarray, output: np.ndarray) -> Any:
    """Tensor specs of the example and the output, with the batch dimension free (-1)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    return ModelSignature(inputs=Schema([TensorSpec(example.dtype, (-1, *example.shape[1:]))]),
                          outputs=Schema([TensorSpec(output.dtype, (-1, *output.shape[1:]))]))


# --------------------------------------------------------------------------- loading


def load_champion(project: str, tracking_uri: str | None = None) -> torch.nn.Module:
    """The champion version of `project`, rebuilt from the installed package (eval mode, CPU).

    Everything is read through the client of `tracking_uri` (default: the current tracking URI).
    The MLmodel is checked before anything else is read: it must name `torch_format` as its
    loader and no code; the weights load with ``torch.load(weights_only=True)``.

    Raises:
        ValueError: one line: the registered model does not exist (the message lists those
            that do), it has no champion, or its artifact was refused or does not load.
    """
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=checked_store(tracking_uri))  # never creates a store
    version = champion(client, project)
    label = f"{CHAMPION} v{version.version} of {project!r}"
    with tempfile.TemporaryDirectory(prefix="fixlab_model_") as tmp:
        local = model_files(client, f"models:/{project}/{version.version}", tmp)
        try:
            check_mlmodel(local, {torch_format.__name__})
            return torch_format.load(local / DATA_DIR)
        except ValueError as e:
            raise ValueError(f"{label} was refused: {e}") from None
