"""Document 002 (the poetry autoencoder) as tracked runs: the RNN baseline, its scaled hidden layer,
the LSTM with attention and cosine loss, the teacher-forcing bug and the loss/attention
decomposition (`ae_*` entry points).

The config loads eagerly (standard library only); `train_and_evaluate` loads torch, Lightning
and MLflow, so it is imported on first use.
"""

from __future__ import annotations

from typing import Any

from projects.poetry_ae.config import PARAMS, SPEC, PoetryRunConfig, check_inputs

__all__ = ["PARAMS", "SPEC", "Config", "PoetryRunConfig", "check_inputs", "RunSummary", "train_and_evaluate"]

Config = PoetryRunConfig  # what the skeleton (fixlab resume, the contract test) looks for


def __getattr__(name: str) -> Any:
    if name in ("RunSummary", "train_and_evaluate"):
        from projects.poetry_ae import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'projects.poetry_ae' has no attribute {name!r}")
