"""Document 004 (FixMatch with positive-unlabeled learning for cryo-EM particle picking) as tracked
runs: the original settings, the two debugged configurations and the supervised baseline with its
peers (`fixmatch_pu_*`, `supervised_baseline` entry points).

The config loads eagerly (standard library only); `train_and_evaluate` loads torch, Lightning
and MLflow, so it is imported on first use.
"""

from __future__ import annotations

from typing import Any

from projects.fixmatch_pu.config import PARAMS, SPEC, FixMatchPURunConfig, check_inputs

__all__ = ["PARAMS", "SPEC", "Config", "FixMatchPURunConfig", "check_inputs", "RunSummary", "train_and_evaluate"]

Config = FixMatchPURunConfig  # what the skeleton (fixlab resume, the contract test) looks for


def __getattr__(name: str) -> Any:
    if name in ("RunSummary", "train_and_evaluate"):
        from projects.fixmatch_pu import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'projects.fixmatch_pu' has no attribute {name!r}")
