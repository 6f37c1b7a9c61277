"""Checkpoint registration, the champion alias, and loading torch models as data rebuilt by our code."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass

import mlflow
import numpy as np
import pytest
import torch

from lightning_modules.repr_gradflow.model import ReprGradflowNet, ReprNetConfig
from mlflow_plugins.registry import (
    Evidence,
    load_champion,
    load_state_dict_safely,
    register_checkpoint,
)

CONFIG = ReprNetConfig(n_channels=3, n_classes=4, reservoir_size=8, conv_channels=2, kernel_sizes=(3,))
EXAMPLE = torch.randn(3, 20, 3, generator=torch.Generator().manual_seed(0))
PASSING = Evidence(steps=10, baseline=0.25)


def tiny_net(seed: int = 0, **config) -> ReprGradflowNet:
    """A model class of the installed packages, built as Model(config): what the registry rebuilds."""
    torch.manual_seed(seed)
    return ReprGradflowNet(ReprNetConfig(**{**CONFIG.to_dict(), **config}))


class Payload:
    """Unpickling this creates a directory: proof that a loader ran pickled code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))


@pytest.fixture(scope="module")
def tracking(module_store):
    mlflow.set_experiment("registry")
    return module_store


def new_run() -> str:
    with mlflow.start_run() as run:
        pass
    return run.info.run_id


def register(project: str, value: float, health: str = "ok", evidence: Evidence = PASSING, **kwargs):
    return register_checkpoint(tiny_net(int(value * 1000)), project=project, run_id=new_run(), metric="val/acc",
                               value=value, health=health, evidence=evidence, input_example=EXAMPLE, **kwargs)


def champion_version(project: str) -> int:
    return int(mlflow.MlflowClient().get_model_version_by_alias(project, "champion").version)


def test_champion_moves_only_for_runs_that_pass_the_gate_and_beat_it(tracking):
    first = register("alpha", 0.50)
    assert (first.name, first.version, first.became_champion) == ("alpha", 1, True)
    assert first.reason == "champion: the first version to pass the gate, val/acc=0.5"

    better = register("alpha", 0.70)
    assert (better.version, better.became_champion) == (2, True)
    assert champion_version("alpha") == 2

    worse = register("alpha", 0.60)
    assert (worse.version, worse.became_champion) == (3, False)
    assert worse.reason.startswith("kept v2: val/acc=0.6 does not beat champion v2")
    assert champion_version("alpha") == 2

    unhealthy = register("alpha", 0.90, health="critical")
    assert (unhealthy.version, unhealthy.became_champion) == (4, False)
    assert unhealthy.reason == "refused: the run's health is critical"
    assert champion_version("alpha") == 2
    version = mlflow.MlflowClient().get_model_version("alpha", "4")
    assert version.tags["fixlab.gate"] == unhealthy.reason
    assert version.tags["fixlab.health"] == "critical"
    assert version.tags["fixlab.metric.val/acc"] == "0.9"
    assert version.tags["fixlab.selection_metric"] == "val/acc"
    assert version.tags["fixlab.run_id"] == version.run_id

    skipped = register("alpha", 0.95, health="critical", register_refused=False)
    assert (skipped.version, skipped.became_champion) == (None, False)
    assert "not registered" in skipped.reason
    assert len(mlflow.MlflowClient().search_model_versions("name='alpha'")) == 4
    assert champion_version("alpha") == 2


def test_lower_is_better_and_model_left_as_found(tracking):
    lower = Evidence(steps=10, baseline=2.0)
    assert register("beta", 1.0, greater_is_better=False, evidence=lower).became_champion
    assert register("beta", 0.5, greater_is_better=False, evidence=lower).became_champion
    assert not register("beta", 0.7, greater_is_better=False, evidence=lower).became_champion
    assert champion_version("beta") == 2

    model = tiny_net().train()
    model.reservoir.eval()  # a submodule's own mode survives too
    with mlflow.start_run() as run:  # registering from inside the active run works too
        result = register_checkpoint(model, project="beta", run_id=run.info.run_id, metric="val/acc", value=0.1,
                                     health="critical", evidence=lower, input_example=EXAMPLE)
    assert result.version == 4 and not result.became_champion
    assert model.training and model.readout.training and not model.reservoir.training
    logged = mlflow.search_logged_models(filter_string=f"source_run_id = '{run.info.run_id}'", output_format="list")
    assert [m.name for m in logged] == ["model"]


def test_first_passing_version_after_a_refused_one_becomes_champion(tracking):
    assert not register("gamma", 0.9, health="critical").became_champion
    with pytest.raises(ValueError, match=r"registered model 'gamma' has no 'champion' alias"):
        load_champion("gamma")
    assert register("gamma", 0.3).became_champion


def test_load_champion_matches_the_original(tracking, tmp_path):
    model = tiny_net(7)
    result = register_checkpoint(model, project="delta", run_id=new_run(), metric="val/acc", value=0.5,
                                 health="ok", evidence=PASSING, input_example=EXAMPLE)
    assert result.became_champion
    loaded = load_champion("delta", tracking_uri=tracking)
    assert type(loaded) is ReprGradflowNet and not loaded.training  # rebuilt from the installed class
    model.eval()
    bigger = torch.randn(5, 20, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(EXAMPLE), model(EXAMPLE))
        torch.testing.assert_close(loaded(bigger), model(bigger))  # the batch dim is free

    # MLflow's own loader runs our loader module: same numbers, same signature as before.
    pyfunc = mlflow.pyfunc.load_model("models:/delta@champion")
    with torch.no_grad():
        np.testing.assert_allclose(pyfunc.predict(bigger.numpy()), model(bigger).numpy(), rtol=1e-6)
    assert pyfunc.metadata.get_input_schema().inputs[0].shape == (-1, 20, 3)
    assert pyfunc.metadata.get_output_schema().inputs[0].shape == (-1, 4)

    # A fresh interpreter loads it too, with pickle refused process-wide.
    code = ("import json, torch; from mlflow_plugins.registry import load_champion; "
            f"x = torch.tensor({EXAMPLE.tolist()}); "
            "print(json.dumps(load_champion('delta')(x).tolist()))")
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = torch.tensor(json.loads(proc.stdout.strip().splitlines()[-1]))
    with torch.no_grad():
        torch.testing.assert_close(out, model(EXAMPLE))


def test_load_champion_unknown_model_lists_registered(tracking):
    register("epsilon", 0.5)
    with pytest.raises(ValueError, match=r"registered model 'nope' does not exist.*"
                                         r"registered models: \[.*'epsilon'.*\]"):
        load_champion("nope")


@dataclass(frozen=True)
class _LocalConfig:
    width: int = 4


class _LocalNet(torch.nn.Module):
    """A class of the tests, not of the installed packages: loading it would import the tests."""

    def __init__(self, config: _LocalConfig = _LocalConfig()) -> None:
        super().__init__()
        self.config = config
        self.fc = torch.nn.Linear(3, config.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).mean(dim=1)


def test_register_rejects_bad_arguments(tracking):
    run_id = new_run()
    kwargs = dict(project="p", run_id=run_id, metric="m", value=1.0, health="ok", evidence=PASSING,
                  input_example=EXAMPLE)
    with pytest.raises(ValueError, match=r"project='' is invalid; allowed: a non-empty string"):
        register_checkpoint(tiny_net(), **{**kwargs, "project": ""})
    with pytest.raises(ValueError, match=r"input_example is a list; allowed: a torch.Tensor"):
        register_checkpoint(tiny_net(), **{**kwargs, "input_example": [1.0]})
    with pytest.raises(ValueError, match=r"value='high' is not a number; allowed: a float"):
        register_checkpoint(tiny_net(), **{**kwargs, "value": "high"})
    with pytest.raises(ValueError, match=r"health='healthy' is not a health; allowed: \['ok', 'warning', 'critical'\]"):
        register_checkpoint(tiny_net(), **{**kwargs, "health": "healthy"})
    with pytest.raises(ValueError, match=r"evidence is a dict; allowed: an Evidence"):
        register_checkpoint(tiny_net(), **{**kwargs, "evidence": {"steps": 3}})
    with pytest.raises(ValueError, match=r"model is a dict; allowed: a torch.nn.Module"):
        register_checkpoint({}, **kwargs)
    with pytest.raises(ValueError, match=r"model Linear has no dataclass `config`"):
        register_checkpoint(torch.nn.Linear(3, 2), **kwargs)
    with pytest.raises(ValueError, match=r"class test_registry:_LocalNet is not a top-level class of the "
                                         r"installed packages"):
        register_checkpoint(_LocalNet(), **kwargs)
    with pytest.raises(ValueError, match=r"run_id='0123' is not a run in sqlite"):
        register_checkpoint(tiny_net(), **{**kwargs, "run_id": "0123"})
    assert mlflow.search_logged_models(filter_string=f"source_run_id = '{run_id}'", output_format="list") == []


# ------------------------------------------------------------------ load_state_dict_safely


def test_load_state_dict_safely_round_trip(tmp_path):
    state = tiny_net().state_dict()
    path = tmp_path / "ok.pt"
    torch.save(state, path)
    loaded = load_state_dict_safely(path)
    assert loaded.keys() == state.keys()
    torch.testing.assert_close(loaded["readout.weight"], state["readout.weight"])


def test_load_state_dict_safely_missing(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint '.*missing\.pt' does not exist"):
        load_state_dict_safely(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match=r"checkpoint '.*' is not a file"):
        load_state_dict_safely(tmp_path)


def _truncated_checkpoint(path):
    torch.save(tiny_net().state_dict(), path)
    data = path.read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize("content", [
    lambda path: random.Random(0).randbytes(4096),
    _truncated_checkpoint,
    lambda path: b"",
], ids=["random-bytes", "truncated", "empty"])
def test_load_state_dict_safely_corrupt(tmp_path, content):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(content(path))
    with pytest.raises(ValueError, match=r"checkpoint '.*corrupt\.pt' is corrupt or not a "
                                         r"torch checkpoint \(\w+: .+\)") as info:
        load_state_dict_safely(path)
    assert "\n" not in str(info.value)


def test_load_state_dict_safely_refuses_pickled_objects(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.ones(2), "extra": Payload(str(marker))}, path)
    with pytest.raises(ValueError, match=r"checkpoint '.*evil\.pt' was refused: it holds objects "
                                         r"other than tensors.*GLOBAL os\.makedirs.*weights_only=True"):
        load_state_dict_safely(path)
    assert not marker.exists()


def test_load_state_dict_safely_not_a_dict(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), path)
    with pytest.raises(ValueError, match=r"holds a Tensor; allowed: a dict"):
        load_state_dict_safely(path)
