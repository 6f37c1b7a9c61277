"""Shared fixtures: a temporary MLflow SQLite tracking store per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import mlflow
import pytest


@pytest.fixture(scope="session")
def _mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialized MLflow database: copying it skips ~1 s of schema migrations per test."""
    root = tmp_path_factory.mktemp("mlflow_template")
    cwd = os.getcwd()
    os.chdir(root)  # the default experiment's artifact root becomes root/mlruns, not the repo
    try:
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}").search_experiments()
    finally:
        os.chdir(cwd)
    return root / "mlflow.db"


@pytest.fixture
def tracking_uri(tmp_path: Path, _mlflow_db_template: Path) -> Iterator[str]:
    """A fresh `sqlite:///.../mlflow.db` set as MLflow's tracking URI for one test."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(_mlflow_db_template, db)
    uri = f"sqlite:///{db}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")  # set_tracking_uri mirrors itself here
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)
