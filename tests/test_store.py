"""`mlflow_plugins.store`: no fixlab command creates the store it reads, and a registered model's
``models:/NAME@ALIAS`` loads from another working directory (real MLflow, temporary SQLite stores)."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.tracking._tracking_service.utils as tracking_utils
import pytest

from mlflow_plugins import store
from mlflow_plugins.cli import main
from mlflow_plugins.registry import load_pyfunc
from projects.common.tracking import _experiment_id

importlib.import_module("projects.common.resume")  # before any chdir: the `resume` entry point loads it


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty working directory; no tracking URI in the process or the environment."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    return cwd


def test_tracking_uri_is_explicit_then_environment_then_the_default_made_absolute(elsewhere, monkeypatch):
    assert store.tracking_uri(None) == f"sqlite:///{elsewhere / 'mlflow.db'}"
    assert store.uri_source(None).startswith("MLflow's default")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert store.tracking_uri(None) == f"sqlite:///{elsewhere / 'env.db'}"
    assert store.uri_source(None) == "$MLFLOW_TRACKING_URI"
    assert store.tracking_uri("sqlite:///given.db") == f"sqlite:///{elsewhere / 'given.db'}"
    assert store.tracking_uri("http://tracker:5000") == "http://tracker:5000"
    assert store.uri_source("http://tracker:5000") == "--tracking-uri"


def test_existing_store_refuses_missing_local_stores_only(tmp_path):
    db = tmp_path / "mlflow.db"
    with pytest.raises(ValueError, match=f"tracking store {db} does not exist .*--tracking-uri "
                                         r"sqlite:////abs/path/mlflow.db.*export MLFLOW_TRACKING_URI="):
        store.existing_store(f"sqlite:///{db}")
    with pytest.raises(ValueError, match="is a directory, not a SQLite file"):
        store.existing_store(f"sqlite:///{tmp_path}")
    with pytest.raises(ValueError, match=f"tracking store folder {tmp_path / 'mlruns'} does not exist"):
        store.existing_store(f"file://{tmp_path / 'mlruns'}")
    for uri in ("http://tracker:5000", "sqlite://", "sqlite:///:memory:", "postgresql://u@h/db", "databricks"):
        assert store.existing_store(uri) == uri
    db.touch()
    assert store.existing_store(f"sqlite:///{db}") == f"sqlite:///{db}"
    assert os.listdir(tmp_path) == ["mlflow.db"]


COMMANDS = (["claims", "--experiment", "x"], ["runs", "--experiment", "x"],
            ["report", "0123456789abcdef0123456789abcdef"], ["resume", "0123456789abcdef0123456789abcdef"])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("given", ["default", "environment", "option"])
def test_a_missing_store_is_refused_in_one_line_and_not_created(command, given, elsewhere, monkeypatch, capsys):
    missing = elsewhere / "mlflow.db" if given == "default" else elsewhere.parent / "nowhere" / "mlflow.db"
    argv = list(command)
    if given == "environment":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    elif given == "option":
        argv += ["--tracking-uri", f"sqlite:///{missing}"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and "\n" not in err, err
    assert err.startswith(f"fixlab {command[0]}: tracking store {missing} does not exist"), err
    assert "--tracking-uri sqlite:////abs/path/mlflow.db" in err and "MLFLOW_TRACKING_URI=" in err
    assert os.listdir(elsewhere) == [] and not missing.parent.joinpath("mlflow.db").exists()


@pytest.mark.parametrize("load", ["load_pyfunc", "load_champion_pyfunc", "load_champion"])
def test_the_safe_loaders_refuse_a_missing_store_and_create_none(load, elsewhere):
    import mlflow_plugins.registry as registry

    argument = "models:/cpc-snn-gw@champion" if load == "load_pyfunc" else "cpc-snn-gw"
    with pytest.raises(ValueError, match=f"tracking store {elsewhere / 'mlflow.db'} does not exist"):
        getattr(registry, load)(argument)
    assert os.listdir(elsewhere) == []


class _Length(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[int], params=None) -> list[int]:
        return [len(model_input)]


def test_models_alias_loads_from_another_directory(tmp_path, _mlflow_db_template, monkeypatch, capsys):
    """A project trained in a job directory that is gone afterwards (a CI workspace, a scratch
    folder): its experiment's artifacts lie beside the database, so `models:/tiny@champion` loads
    from anywhere with MLFLOW_TRACKING_URI pointing at the database."""
    root, job, other = tmp_path / "store", tmp_path / "job", tmp_path / "other"
    for folder in (root, job, other):
        folder.mkdir()
    shutil.copyfile(_mlflow_db_template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.chdir(job)

    experiment_id = _experiment_id("tiny-exp")  # how a project run creates its experiment
    location = Path(mlflow.MlflowClient().get_experiment(experiment_id).artifact_location)
    assert location == root / "mlruns" / "tiny-exp"
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=_Length(), pip_requirements=[])
    version = mlflow.register_model(info.model_uri, "tiny").version
    mlflow.MlflowClient().set_registered_model_alias("tiny", "champion", version)
    capsys.readouterr()

    monkeypatch.chdir(other)
    shutil.rmtree(job)
    assert mlflow.pyfunc.load_model("models:/tiny@champion").predict([1, 2, 3]) == [3]
    assert os.listdir(other) == []

    # The cause of "fails from another directory": without the URI, MLflow's default store is
    # ./mlflow.db of the working directory; fixlab names the file it looked for instead of making it.
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(ValueError, match=f"tracking store {other / 'mlflow.db'} does not exist"):
        store.checked_store(None)
    assert os.listdir(other) == []

    # An unknown registered model: one line naming the ones that exist.
    with pytest.raises(ValueError) as error:
        load_pyfunc("models:/nope@champion", tracking_uri=uri)
    assert "\n" not in str(error.value) and "registered models: ['tiny']" in str(error.value)


def test_experiment_artifact_location_beside_the_database_only(tmp_path):
    db = tmp_path / "mlflow.db"
    assert store.experiment_artifact_location(f"sqlite:///{db}", "repr_gradflow") == str(tmp_path / "mlruns" / "repr_gradflow")
    slashed = Path(store.experiment_artifact_location(f"sqlite:///{db}", "team/exp"))
    numbered = Path(store.experiment_artifact_location(f"sqlite:///{db}", "7"))
    assert slashed.parent == numbered.parent == tmp_path / "mlruns"
    assert slashed.name.startswith("team_exp-") and numbered.name.startswith("7-")  # never MLflow's "7"
    assert store.experiment_artifact_location("http://tracker:5000", "x") is None
