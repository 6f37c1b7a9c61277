"""Models as code: registered as pyfunc with plain weight files, loaded with pickle refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pytest
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from mlflow_plugins.registry import load_champion_pyfunc, register_pyfunc

MODEL_CODE = textwrap.dedent('''
    import json
    import numpy as np
    import mlflow
    from mlflow.pyfunc import PythonModel

    class Scale(PythonModel):
        def load_context(self, context):
            with open(context.artifacts["config"]) as f:
                self.scale = json.load(f)["scale"]

        def predict(self, context, model_input, params=None):
            x = np.asarray(model_input, dtype=np.float32)
            return (x.reshape(len(x), -1).mean(axis=1) * self.scale).astype(np.float32)

    mlflow.models.set_model(Scale())
''')
SIGNATURE = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2, 8))]),
                           outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]))
EXAMPLE = np.ones((2, 2, 8), np.float32)


@pytest.fixture(scope="module")
def tracking(module_store):
    mlflow.set_experiment("registry_pyfunc")
    return module_store


def register(tmp_path, project: str, scale: float, value: float, healthy: bool = True):
    code = tmp_path / f"model_{scale}.py"
    code.write_text(MODEL_CODE)
    config = tmp_path / f"config_{scale}.json"
    config.write_text(json.dumps({"scale": scale}))
    with mlflow.start_run() as run:
        pass
    return register_pyfunc(code, artifacts={"config": config}, signature=SIGNATURE, input_example=EXAMPLE,
                           pip_requirements=["numpy"], project=project, run_id=run.info.run_id,
                           metric="val/auc", value=value, healthy=healthy)


def test_champion_is_the_healthy_best_and_loads_in_a_fresh_process_without_pickle(tracking, tmp_path):
    assert register(tmp_path, "scaler", 2.0, value=0.8).became_champion
    assert not register(tmp_path, "scaler", 5.0, value=0.9, healthy=False).became_champion
    assert not register(tmp_path, "scaler", 7.0, value=0.7).became_champion
    code = ("import mlflow, numpy as np; "
            "m = mlflow.pyfunc.load_model('models:/scaler@champion'); "
            "print(m.predict(np.ones((3, 2, 8), np.float32)).tolist())")
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2.0, 2.0, 2.0]
    assert load_champion_pyfunc("scaler").predict(EXAMPLE).tolist() == [2.0, 2.0]


def test_signature_rejects_wrong_shapes(tracking, tmp_path):
    register(tmp_path, "shapes", 1.0, value=0.5)
    model = load_champion_pyfunc("shapes")
    with pytest.raises(mlflow.exceptions.MlflowException, match="schema"):
        model.predict(np.ones((3, 2, 9), np.float32))


def test_missing_model_and_files_are_one_line_errors(tracking, tmp_path):
    with pytest.raises(ValueError, match="registered model 'nope' does not exist") as info:
        load_champion_pyfunc("nope")
    assert "\n" not in str(info.value)
    with mlflow.start_run() as run:
        pass
    with pytest.raises(ValueError, match="code_path=.* is not a file"):
        register_pyfunc(tmp_path / "absent.py", artifacts={}, signature=SIGNATURE, input_example=EXAMPLE,
                        pip_requirements=[], project="p", run_id=run.info.run_id, metric="m", value=1.0,
                        healthy=True)
