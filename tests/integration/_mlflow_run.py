"""`mlflow run` of one entry point, as a user runs it: a subprocess on a SQLite store of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import mlflow

REPO = Path(__file__).resolve().parents[2]


def mlflow_run(entry: str, store: Path, experiment: str | None, params: Sequence[str]
               ) -> tuple[mlflow.MlflowClient, subprocess.CompletedProcess]:
    """Run `mlflow run . -e entry --env-manager local` with the store and data cache under `store`,
    in `experiment` (None: none named, as a user types it).

    Returns the client of that store and the finished process (asserted to have succeeded).
    """
    uri = f"sqlite:///{store / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "FIXLAB_CACHE": str(store / "cache")}
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", ".", "-e", entry, "--env-manager", "local",
         *(["--experiment-name", experiment] if experiment else []), *params],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return mlflow.MlflowClient(tracking_uri=uri), result
