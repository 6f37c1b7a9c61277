"""Models as data: a pyfunc whose loader is an installed module (the GW detector's), data files only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from jax_modules.cpc_snn_gw import ModelConfig, build_model
from mlflow_plugins.registry import Evidence, load_champion_pyfunc, load_pyfunc, register_pyfunc
from projects.cpc_snn_gw import serving

CFG = ModelConfig(kind="cpc", encoder_widths=(4, 8), encoder_strides=(4, 8), latent_dim=8, context_dim=8)
SIGNATURE = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2, 256))]),
                           outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]))
EXAMPLE = np.random.default_rng(0).standard_normal((2, 2, 256)).astype(np.float32)
PASSING = Evidence(steps=10, baseline=0.5)


@pytest.fixture(scope="module")
def tracking(module_store):
    mlflow.set_experiment("registry_pyfunc")
    return module_store


def register(tmp_path, project: str, seed: int, value: float, health: str = "ok"):
    """A detector with weights of `seed`, registered; returns (result, its direct predictions of EXAMPLE)."""
    data = serving.save(build_model(CFG, seed=seed), tmp_path / f"detector_{seed}")
    with mlflow.start_run() as run:
        pass
    result = register_pyfunc(serving.__name__, data, signature=SIGNATURE, input_example=EXAMPLE,
                             pip_requirements=["numpy"], project=project, run_id=run.info.run_id,
                             metric="val/auc", value=value, health=health, evidence=PASSING)
    return result, serving.load(data).predict(EXAMPLE)


def test_champion_is_the_best_passing_version_and_loads_in_a_fresh_process(tracking, tmp_path):
    first, expected = register(tmp_path, "detector", 1, value=0.8)
    assert first.became_champion
    assert not register(tmp_path, "detector", 2, value=0.9, health="critical")[0].became_champion
    assert not register(tmp_path, "detector", 3, value=0.7)[0].became_champion
    np.testing.assert_array_equal(load_champion_pyfunc("detector").predict(EXAMPLE), expected)

    code = ("import mlflow, numpy as np; "
            "m = mlflow.pyfunc.load_model('models:/detector@champion'); "
            f"x = np.array({EXAMPLE.tolist()}, dtype=np.float32); print(m.predict(x).tolist())")
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_allclose(json.loads(out.stdout.strip().splitlines()[-1]), expected, rtol=1e-6)


def test_the_artifact_holds_data_and_names_our_loader(tracking, tmp_path):
    register(tmp_path, "layout", 1, value=0.6)
    client = mlflow.MlflowClient()
    source = client.get_model_version_by_alias("layout", "champion").source
    root = client.get_logged_model(source.removeprefix("models:/")).artifact_location.removeprefix("file://")
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    assert [f for f in files if f.startswith("data/")] == ["data/model/config.json", "data/model/weights.msgpack"]
    assert not [f for f in files if f.endswith((".py", ".pkl", ".pickle"))], files
    pyfunc = mlflow.models.Model.load(root).flavors["python_function"]
    assert pyfunc["loader_module"] == "projects.cpc_snn_gw.serving" and pyfunc.get("code") is None


def test_signature_rejects_wrong_shapes(tracking, tmp_path):
    register(tmp_path, "shapes", 1, value=0.6)
    model = load_champion_pyfunc("shapes")
    with pytest.raises(mlflow.exceptions.MlflowException, match="schema"):
        model.predict(np.ones((3, 2, 9), np.float32))


def test_missing_model_and_bad_arguments_are_one_line_errors(tracking, tmp_path):
    with pytest.raises(ValueError, match="registered model 'nope' does not exist") as info:
        load_champion_pyfunc("nope")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"model 'models:/nope/1' is not in sqlite.*registered models") as info:
        load_pyfunc("models:/nope/1")
    assert "\n" not in str(info.value)
    with mlflow.start_run() as run:
        pass
    kwargs = dict(signature=SIGNATURE, input_example=EXAMPLE, pip_requirements=[], project="p",
                  run_id=run.info.run_id, metric="m", value=1.0, health="ok", evidence=PASSING)
    with pytest.raises(ValueError, match=r"data_path=.* is not a directory"):
        register_pyfunc(serving.__name__, tmp_path / "absent", **kwargs)
    for module, problem in (("mlflow.pyfunc.model", "is not allowed; allowed: a module inside"),
                            ("projects.common.spec", "has no _load_pyfunc"),
                            ("projects.no_such_module", "cannot be imported")):
        with pytest.raises(ValueError, match=rf"loader_module='{module}' {problem}"):
            register_pyfunc(module, tmp_path, **kwargs)
