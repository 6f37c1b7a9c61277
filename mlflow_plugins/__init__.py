"""fixlab's diagnostics plugin: watches training and records findings in MLflow.

Plain PyTorch: `watch(model, optimizer)`. Lightning: `GradientHealthCallback`,
`AmpNanCallback`, `NormalizationEffectCallback`, `EvalModeCallback`. JAX: `mlflow_plugins.jax`
(`monitored`, `watch_jax`, `probe_norms`). Every check is a `Rule` and returns `Finding`s; users add their own
(`Rule.metric(...)`, or a `Rule` subclass over a summary) through `rules=`.

Exports load lazily: MLflow imports this package (through the run-context entry point) on
every `import mlflow`, which must not pull in torch, Lightning or JAX. The frameworks are extras
(`pip install 'fixlab[torch]'`, `[lightning]`, `[jax]`); a framework's adapter raises an ImportError
naming its extra when the framework is missing.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CODES": ".findings", "Finding": ".findings", "Severity": ".findings",
    "overall_health": ".findings", "Thresholds": ".thresholds",
    "Rule": ".analysis", "RuleSet": ".analysis", "MetricValue": ".analysis",
    "GradSnapshot": ".analysis", "GradPresence": ".analysis", "NormProbe": ".analysis",
    "NonfiniteEvent": ".analysis", "AmpStep": ".analysis", "EvalCheck": ".analysis",
    "UpdateSnapshot": ".analysis", "GradReset": ".analysis", "AutocastCoverage": ".analysis",
    "ReplicaCheck": ".analysis",
    "RunReport": ".run_record", "run_report": ".run_record",
    "AmpNanCallback": ".lightning", "GradientHealthCallback": ".lightning",
    "NormalizationEffectCallback": ".lightning", "EvalModeCallback": ".lightning",
    "L2Normalize": ".pytorch", "Monitor": ".pytorch", "TrainingStopped": ".session",
    "watch": ".pytorch",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mlflow_plugins' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def _require(package: str, extra: str, *modules: str) -> None:
    """Import each framework of `modules`, or raise a one-line ImportError naming the extra."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise  # the framework is there but broken: its own error says more
            raise ImportError(f"{package} needs {module}: pip install 'fixlab[{extra}]'") from e


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
