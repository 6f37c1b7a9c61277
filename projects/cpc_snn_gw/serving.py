"""The registered model of document 000 as data: whitened strain in, probability of a signal out.

The artifact holds data only: `config.json` (the ModelConfig) and `weights.msgpack` (Flax
msgpack: arrays and plain containers, no pickle). This installed module is its pyfunc
``loader_module``: MLflow calls `_load_pyfunc(data_path)`, which rebuilds the Flax model from
`jax_modules`, so loading runs fixlab's code, never code from the artifact.
Input: float32 (N, 2, T) whitened H1/L1 strain, T the training window (2048 = 1 s at 2048 Hz).
Output: float32 (N,) probabilities that a window holds a compact-binary signal.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.msgpack"


def save(model: Any, directory: str | os.PathLike[str]) -> Path:
    """Write a model from `build_model` (probes removed) as the loader's data; returns the directory."""
    from jax_modules.cpc_snn_gw.checkpoint import save_weights

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / WEIGHTS_FILE)
    (out / CONFIG_FILE).write_text(json.dumps(asdict(model.config)))
    return out


class GWDetector:
    """Binary GW detector: the Flax model rebuilt from its data, predicting in fixed-size batches."""

    def __init__(self, model: Any) -> None:
        from flax import nnx

        from jax_modules.cpc_snn_gw.steps import make_predict

        graphdef, self._params, self._rest = nnx.split(model, nnx.Param, ...)
        self._predict = make_predict(graphdef)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> np.ndarray:
        """Probabilities (N,) for strain windows (N, 2, T) (already checked against the signature)."""
        from jax_modules.cpc_snn_gw.steps import predict_in_batches

        return predict_in_batches(self._predict, self._params, self._rest, model_input)


def load(data_path: str | os.PathLike[str]) -> GWDetector:
    """The detector saved in `data_path`.

    Raises:
        ValueError: one line naming the directory: the config is not a ModelConfig, or the
            weights are not a weights file of that config.
    """
    from jax_modules.cpc_snn_gw.checkpoint import load_weights
    from jax_modules.cpc_snn_gw.config import ModelConfig

    where = Path(data_path)
    try:
        values = json.loads((where / CONFIG_FILE).read_text(encoding="utf-8"))
        if not isinstance(values, dict):
            raise ValueError(f"{CONFIG_FILE} holds a {type(values).__name__}; allowed: a JSON object")
        config = ModelConfig(**values)
        return GWDetector(load_weights(config, where / WEIGHTS_FILE))
    except (OSError, UnicodeDecodeError, TypeError, ValueError) as e:  # CheckpointError is a ValueError
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise ValueError(f"cpc-snn-gw model data {str(where)!r}: {type(e).__name__}: "
                         f"{lines[0] if lines else ''}") from None


def _load_pyfunc(data_path: str) -> GWDetector:
    """MLflow's loader_module hook: the detector in `data_path` as a pyfunc implementation."""
    return load(data_path)
