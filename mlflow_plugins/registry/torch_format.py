"""PyTorch models as data: a state dict and a JSON config, rebuilt from the installed package.

The convention is nanoGPT's: a model class whose constructor takes one dataclass config and
keeps it as ``model.config``. A registered torch model holds ``model.json`` (the model class and
the config class by name, and the config's values) and ``weights.pt`` (the state dict: tensors
only). Loading resolves both names inside the installed fixlab packages, builds
``Model(Config(**values))`` and reads the weights with ``torch.load(weights_only=True)``, which
admits tensors and plain containers only: nothing in the artifact is imported or unpickled, so
a tampered file can at worst fail to load.

This module is the pyfunc ``loader_module`` of every registered torch model
(``_load_pyfunc(data_path)``), so ``mlflow.pyfunc.load_model`` runs this code too.
"""

from __future__ import annotations

import dataclasses
import json
import os
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .mlmodel_check import TRUSTED_PACKAGES, trusted

FORMAT = "fixlab.torch/1"
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"


def describe(model: torch.nn.Module) -> dict[str, Any]:
    """What ``model.json`` holds for `model`: the format, both class names and the config's values.

    Raises:
        ValueError: one line: `model` has no dataclass ``config``, a class outside the trusted
            packages or not importable by its name, or a config that does not survive JSON.
    """
    config = getattr(model, "config", None)
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ValueError(f"model {type(model).__name__} has no dataclass `config`; allowed: a module built as "
                         "Model(config) that keeps the config as model.config")
    names = {"model_class": _name(type(model)), "config_class": _name(type(config))}
    try:
        values = json.loads(json.dumps(dataclasses.asdict(config)))
    except (TypeError, ValueError) as e:
        raise ValueError(f"model.config of {names['model_class']} is not plain JSON ({e}); allowed: numbers, "
                         "strings, booleans, lists and dicts") from None
    if type(config)(**values) != config:
        raise ValueError(f"model.config of {names['model_class']} changes through JSON; allowed: a config "
                         "whose fields survive json.dumps and json.loads")
    return {"format": FORMAT, **names, "config": values}


def save(model: torch.nn.Module, directory: str | os.PathLike[str]) -> Path:
    """Write `model` as ``model.json`` and ``weights.pt`` into `directory` (created); returns it."""
    description = describe(model)
    state = {}
    for key, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"state_dict entry {key!r} of {description['model_class']} is a "
                             f"{type(value).__name__}; allowed: tensors only")
        state[key] = value.detach().to("cpu").clone()  # clone: no view of a larger storage
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(json.dumps(description, indent=1))
    torch.save(state, out / WEIGHTS_FILE)
    return out


def load(directory: str | os.PathLike[str]) -> torch.nn.Module:
    """The model saved in `directory`, rebuilt from the installed package, in eval mode on the CPU.

    Raises:
        ValueError: one line naming the directory and the problem (the config, a class name,
            or weights that are not plain tensors or do not fit the model).
    """
    where = Path(directory)
    try:
        return _load(where)
    except ValueError as e:
        raise ValueError(f"torch model data {str(where)!r}: {e}") from None


def _load(where: Path) -> torch.nn.Module:
    try:
        description = json.loads((where / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{CONFIG_FILE} cannot be read ({type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise ValueError(f"{CONFIG_FILE} is not a {FORMAT} description")
    model_class = _resolve(description.get("model_class"), "model_class")
    config_class = _resolve(description.get("config_class"), "config_class")
    if not (isinstance(model_class, type) and issubclass(model_class, torch.nn.Module)):
        raise ValueError(f"model_class {description['model_class']!r} is not a torch.nn.Module class")
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise ValueError(f"config_class {description['config_class']!r} is not a dataclass")
    values = description.get("config")
    if not isinstance(values, dict):
        raise ValueError(f"config is a {type(values).__name__}; allowed: a JSON object")
    try:
        model = model_class(config_class(**values))
    except (TypeError, ValueError) as e:
        raise ValueError(f"config does not build {description['model_class']} ({type(e).__name__}: "
                         f"{_first_line(e)})") from None
    state = load_state_dict_safely(where / WEIGHTS_FILE)
    odd = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if odd:
        raise ValueError(f"{WEIGHTS_FILE} holds entries that are not tensors: {odd[:3]}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        raise ValueError(f"{WEIGHTS_FILE} does not fit {description['model_class']} "
                         f"({' '.join(lines)[:300] or _first_line(e)})") from None
    return model.eval()


def _name(cls: type) -> str:
    """``module:QualName`` of a class, which must be importable by that name from a trusted package."""
    name = f"{cls.__module__}:{cls.__qualname__}"
    if not trusted(cls.__module__) or "." in cls.__qualname__ or _resolve(name, "class") is not cls:
        raise ValueError(f"class {name} is not a top-level class of the installed packages "
                         f"{list(TRUSTED_PACKAGES)}; allowed: a model and config class defined there, so "
                         "that loading runs installed code only")
    return name


def _resolve(name: Any, field: str) -> Any:
    """The object ``module:attr`` names, imported only if `module` is in a trusted package."""
    module, _, attr = name.partition(":") if isinstance(name, str) else ("", "", "")
    if not (trusted(module) and attr.isidentifier()):
        raise ValueError(f"{field} {name!r} is not allowed; allowed: module:Name inside {list(TRUSTED_PACKAGES)}")
    try:
        return getattr(import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"{field} {name!r} cannot be imported ({type(e).__name__}: {_first_line(e)})") from None


class TorchPredictor:
    """The pyfunc face of a rebuilt torch model: a numpy batch in, numpy out, without gradients."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module.eval()

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        """The model's output for the batch `model_input` (already checked against the signature)."""
        x = torch.from_numpy(np.ascontiguousarray(np.asarray(model_input)))
        with torch.no_grad():
            return self.module(x).detach().cpu().numpy()


def _load_pyfunc(data_path: str) -> TorchPredictor:
    """MLflow's loader_module hook: the model in `data_path` as a pyfunc implementation."""
    return TorchPredictor(load(data_path))


def load_state_dict_safely(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint file with ``torch.load(weights_only=True, map_location="cpu")``.

    For registered weights and ``--init_checkpoint`` style parameters: only tensors and primitive
    containers are accepted, so a file carrying arbitrary pickled objects is refused, not executed.

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
        line = _torch_line(e)
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


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _torch_line(error: BaseException) -> str:
    """The informative line of a (possibly multi-line) torch error message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Unsupported global", "Unsupported operand",
                            "Trying to load unsupported")):
            return line.rstrip(".")
    return lines[0].rstrip(".") if lines else type(error).__name__
