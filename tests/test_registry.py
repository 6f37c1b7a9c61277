"""Checkpoint registration, the champion alias, and loading without unpickling user objects."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
import zipfile

import mlflow
import pytest
import torch

from mlflow_plugins.registry import (
    load_champion,
    load_state_dict_safely,
    register_checkpoint,
)


class TinyNet(torch.nn.Module):
    """A user-defined class: loading the champion must not need (or unpickle) it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 2)
        self.drop = torch.nn.Dropout(0.5)  # exported in eval mode, so inactive

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


class Payload:
    """Unpickling this creates a directory: proof that a loader ran pickled code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))


EXAMPLE = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def tracking(module_store):
    mlflow.set_experiment("registry")
    return module_store


def new_run() -> str:
    with mlflow.start_run() as run:
        pass
    return run.info.run_id


def register(project: str, value: float, healthy: bool = True, **kwargs):
    torch.manual_seed(int(value * 1000))
    return register_checkpoint(TinyNet(), project=project, run_id=new_run(), metric="val/acc",
                               value=value, healthy=healthy, input_example=EXAMPLE, **kwargs)


def champion_version(project: str) -> int:
    return int(mlflow.MlflowClient().get_model_version_by_alias(project, "champion").version)


def test_champion_moves_only_for_healthy_better_runs(tracking):
    first = register("alpha", 0.50)
    assert (first.name, first.version, first.became_champion) == ("alpha", 1, True)
    assert "first healthy version" in first.reason

    better = register("alpha", 0.70)
    assert (better.version, better.became_champion) == (2, True)
    assert champion_version("alpha") == 2

    worse = register("alpha", 0.60)
    assert (worse.version, worse.became_champion) == (3, False)
    assert "does not beat champion v2" in worse.reason
    assert champion_version("alpha") == 2

    unhealthy = register("alpha", 0.90, healthy=False)
    assert (unhealthy.version, unhealthy.became_champion) == (4, False)
    assert "unhealthy" in unhealthy.reason
    assert champion_version("alpha") == 2
    tags = mlflow.MlflowClient().get_model_version("alpha", "4").tags
    assert tags["fixlab.health"] == "unhealthy"
    assert tags["fixlab.metric.val/acc"] == "0.9"
    assert tags["fixlab.selection_metric"] == "val/acc"
    assert tags["fixlab.run_id"] == mlflow.MlflowClient().get_model_version("alpha", "4").run_id

    skipped = register("alpha", 0.95, healthy=False, register_unhealthy=False)
    assert (skipped.version, skipped.became_champion) == (None, False)
    assert "not registered" in skipped.reason
    versions = mlflow.MlflowClient().search_model_versions("name='alpha'")
    assert len(versions) == 4
    assert champion_version("alpha") == 2


def test_lower_is_better_and_model_left_as_found(tracking):
    assert register("beta", 1.0, greater_is_better=False).became_champion
    assert register("beta", 0.5, greater_is_better=False).became_champion
    assert not register("beta", 0.7, greater_is_better=False).became_champion
    assert champion_version("beta") == 2

    model = TinyNet().train()
    with mlflow.start_run() as run:  # registering from inside the active run works too
        result = register_checkpoint(model, project="beta", run_id=run.info.run_id,
                                     metric="val/acc", value=0.1, healthy=False,
                                     input_example=EXAMPLE)
    assert result.version == 4 and not result.became_champion
    assert model.training  # exported in eval mode, then restored
    logged = mlflow.search_logged_models(filter_string=f"source_run_id = '{run.info.run_id}'",
                                         output_format="list")
    assert [m.name for m in logged] == ["model"]


def test_first_healthy_after_unhealthy_becomes_champion(tracking):
    assert not register("gamma", 0.9, healthy=False).became_champion
    with pytest.raises(ValueError, match=r"registered model 'gamma' has no 'champion' alias"):
        load_champion("gamma")
    assert register("gamma", 0.1).became_champion


def test_load_champion_matches_the_original(tracking, tmp_path):
    torch.manual_seed(7)
    model = TinyNet()
    result = register_checkpoint(model, project="delta", run_id=new_run(), metric="val/acc",
                                 value=0.5, healthy=True, input_example=EXAMPLE)
    assert result.became_champion
    loaded = load_champion("delta", tracking_uri=tracking)
    assert not isinstance(loaded, TinyNet)  # a graph module: the class is not unpickled
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(EXAMPLE), model(EXAMPLE))
        bigger = torch.randn(5, 4)
        torch.testing.assert_close(loaded(bigger), model(bigger))  # the batch dim is dynamic

    # A fresh interpreter that has never seen TinyNet loads it too.
    code = ("import json, torch; from mlflow_plugins.registry import load_champion; "
            f"x = torch.tensor({EXAMPLE.tolist()}); "
            "print(json.dumps(load_champion('delta')(x).tolist()))")
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
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


def test_load_champion_refuses_a_tampered_archive(tracking, tmp_path):
    register("zeta", 0.5)
    client = mlflow.MlflowClient()
    model_id = client.get_model_version_by_alias("zeta", "champion").source.split("/")[-1]
    location = client.get_logged_model(model_id).artifact_location.removeprefix("file://")
    archive = os.path.join(location, "data", "model.pt2")
    marker = tmp_path / "payload-ran"
    # torch.export.load retries a record that torch.load(weights_only=True) rejects with
    # weights_only=False: a pickled object in the sample inputs would run on load.
    tampered = archive + ".tmp"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("sample_inputs/model.pt"):
                data = pickle.dumps(Payload(str(marker)))
            dst.writestr(info, data)
    os.replace(tampered, archive)
    with pytest.raises(ValueError, match=r"champion v1 of 'zeta' .* was refused: .*"
                                         r"sample_inputs/model\.pt"):
        load_champion("zeta")
    assert not marker.exists()


def test_register_rejects_bad_arguments(tracking):
    run_id = new_run()
    kwargs = dict(project="p", run_id=run_id, metric="m", value=1.0, healthy=True,
                  input_example=EXAMPLE)
    with pytest.raises(ValueError, match=r"project='' is invalid; allowed: a non-empty string"):
        register_checkpoint(TinyNet(), **{**kwargs, "project": ""})
    with pytest.raises(ValueError, match=r"input_example is a list; allowed: a torch.Tensor"):
        register_checkpoint(TinyNet(), **{**kwargs, "input_example": [1.0]})
    with pytest.raises(ValueError, match=r"value='high' is not a number; allowed: a float"):
        register_checkpoint(TinyNet(), **{**kwargs, "value": "high"})
    with pytest.raises(ValueError, match=r"model is a dict; allowed: a torch.nn.Module"):
        register_checkpoint({}, **kwargs)
    with pytest.raises(ValueError, match=r"run_id='0123' is not a run in sqlite"):
        register_checkpoint(TinyNet(), **{**kwargs, "run_id": "0123"})


# ------------------------------------------------------------------ load_state_dict_safely


def test_load_state_dict_safely_round_trip(tmp_path):
    state = TinyNet().state_dict()
    path = tmp_path / "ok.pt"
    torch.save(state, path)
    loaded = load_state_dict_safely(path)
    assert loaded.keys() == state.keys()
    torch.testing.assert_close(loaded["fc1.weight"], state["fc1.weight"])


def test_load_state_dict_safely_missing(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint '.*missing\.pt' does not exist"):
        load_state_dict_safely(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match=r"checkpoint '.*' is not a file"):
        load_state_dict_safely(tmp_path)


def _truncated_checkpoint(path):
    torch.save(TinyNet().state_dict(), path)
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
