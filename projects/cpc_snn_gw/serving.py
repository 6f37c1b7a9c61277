"""The registered model of document 000, as code: whitened strain in, probability of a signal out.

MLflow logs this *file* ("models from code") with two artifacts, `config` (the ModelConfig as
JSON) and `weights` (Flax msgpack), so loading runs this code and unpickles nothing.
Input: float32 (N, 2, T) whitened H1/L1 strain, T the training window (2048 = 1 s at 2048 Hz).
Output: float32 (N,) probabilities that a window holds a compact-binary signal.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from mlflow.pyfunc import PythonModel


class GWDetector(PythonModel):
    """Binary GW detector: loads the Flax model from the artifacts, predicts in fixed-size batches."""

    def load_context(self, context):  # no annotations: MLflow reads predict's as a schema
        from flax import nnx

        from jax_modules.cpc_snn_gw.checkpoint import load_weights
        from jax_modules.cpc_snn_gw.config import ModelConfig
        from jax_modules.cpc_snn_gw.steps import make_predict

        config = ModelConfig(**json.loads(Path(context.artifacts["config"]).read_text()))
        graphdef, params, rest = nnx.split(load_weights(config, context.artifacts["weights"]), nnx.Param, ...)
        self._predict, self._params, self._rest = make_predict(graphdef), params, rest

    def predict(self, context, model_input, params=None):
        from jax_modules.cpc_snn_gw.steps import predict_in_batches

        return predict_in_batches(self._predict, self._params, self._rest, model_input)


mlflow.models.set_model(GWDetector())
