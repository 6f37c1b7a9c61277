"""Document 003 (complex-valued KAN) as tracked runs: the AMP, normalization, pooling and
hierarchy experiments of its research log (`cvkan_*` entry points).

The config loads eagerly (standard library only); `train_and_evaluate` loads torch, Lightning
and MLflow, so it is imported on first use.
"""

from __future__ import annotations

from typing import Any

from projects.cvkan.config import PARAMS, SPEC, CVKANRunConfig, check_inputs

__all__ = ["PARAMS", "SPEC", "Config", "CVKANRunConfig", "check_inputs", "RunSummary", "train_and_evaluate"]

Config = CVKANRunConfig  # what the skeleton (fixlab resume, the contract test) looks for


def __getattr__(name: str) -> Any:
    if name in ("RunSummary", "train_and_evaluate"):
        from projects.cvkan import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'projects.cvkan' has no attribute {name!r}")
