"""Register a run's best checkpoint under the project's name, and move ``champion`` honestly.

`gate` holds the framework-neutral part (the evidence, tags, the alias rule). A registered model
is data only, loaded by code installed with fixlab: `pyfunc_models` logs a data directory with
an installed ``loader_module`` (Flax: `projects.cpc_snn_gw.serving`), `torch_models` logs torch
weights + config read back by `torch_format`; `mlmodel_check` refuses an artifact that names
anything else, `fetch` reads it from one store. Exports are lazy so that a JAX user does not
import torch; the torch exports need the extra `fixlab[torch]`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CHAMPION": ".gate", "Evidence": ".gate", "RegistrationResult": ".gate", "metric_tag": ".gate",
    "steps_needed": ".gate",
    "register_checkpoint": ".torch_models", "load_champion": ".torch_models",
    "load_state_dict_safely": ".torch_format",
    "register_pyfunc": ".pyfunc_models", "load_champion_pyfunc": ".pyfunc_models",
    "load_pyfunc": ".pyfunc_models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _EXPORTS[name].startswith(".torch_"):
        from .. import _require

        _require(f"{__name__}.{name}", "torch", "torch")
    return getattr(import_module(_EXPORTS[name], __name__), name)
