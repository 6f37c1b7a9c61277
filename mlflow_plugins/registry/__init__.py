"""Register a run's best checkpoint under the project's name, and move ``champion`` honestly.

`gate` holds the framework-neutral part (tags, the alias rule); `torch_models` logs PyTorch
checkpoints (pt2), `pyfunc_models` logs models as code plus plain weight files (Flax). Exports
are lazy so that a JAX user does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CHAMPION": ".gate", "RegistrationResult": ".gate", "metric_tag": ".gate",
    "register_checkpoint": ".torch_models", "load_champion": ".torch_models",
    "load_state_dict_safely": ".torch_models",
    "register_pyfunc": ".pyfunc_models", "load_champion_pyfunc": ".pyfunc_models",
    "load_pyfunc": ".pyfunc_models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
