"""Document 001 (representation gradient flow) as tracked runs: `repr_broken` and `repr_fixed`.

The config loads eagerly (standard library only); `train_and_evaluate` loads torch, Lightning
and MLflow, so it is imported on first use.
"""

from __future__ import annotations

from typing import Any

from projects.repr_gradflow.config import PARAMS, SPEC, ReprGradflowConfig, check_inputs

__all__ = ["PARAMS", "SPEC", "Config", "ReprGradflowConfig", "check_inputs", "RunSummary", "train_and_evaluate"]

Config = ReprGradflowConfig  # what the skeleton (fixlab resume, the contract test) looks for


def __getattr__(name: str) -> Any:
    if name in ("RunSummary", "train_and_evaluate"):
        from projects.repr_gradflow import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'projects.repr_gradflow' has no attribute {name!r}")
