"""Document 000 (CPC-SNN-GW): the original, simplified, AResGW-style and fixed runs.

The config loads eagerly (standard library only); `train_and_evaluate` loads JAX, Flax and
MLflow, so it is imported on first use.
"""

from __future__ import annotations

from typing import Any

from projects.cpc_snn_gw.config import PARAMS, SPEC, VARIANTS, CpcGwConfig, check_inputs

__all__ = ["PARAMS", "SPEC", "VARIANTS", "Config", "CpcGwConfig", "check_inputs", "RunSummary", "train_and_evaluate"]

Config = CpcGwConfig  # what the skeleton (fixlab resume, the contract test) looks for


def __getattr__(name: str) -> Any:
    if name in ("RunSummary", "train_and_evaluate"):
        from projects.cpc_snn_gw import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'projects.cpc_snn_gw' has no attribute {name!r}")
