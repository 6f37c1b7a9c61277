"""Concurrent first use of a fresh SQLite store (issue 9): every process succeeds, the store stays usable.

Four processes start at the same instant on a database that does not exist yet, as two `mlflow run`
jobs and two scripts do when started together on the README's default `sqlite:///mlflow.db`. The
`mlflow run` CLI creates its run inside MLflow's own process, so only a store builder registered
with MLflow (`mlflow_plugins.store_lock`) can serialise the schema creation there. Without it the
processes race through MLflow's migrations: most crash ("duplicate column name", "table
_alembic_tmp_... already exists") and the store can be left unusable for every later client.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import mlflow
import pytest
from mlflow.tracking._model_registry.utils import _get_store_registry
from mlflow.tracking._tracking_service.utils import _tracking_store_registry

from mlflow_plugins import store_lock

REPO = Path(__file__).resolve().parents[2]
_READY_TIMEOUT_S = 120.0

# Each child imports MLflow (seconds), says it is ready, and waits for the common start signal:
# the store is first built after the signal, so all four reach MLflow's migrations together.
_CHILD = r"""
import sys, time
from pathlib import Path
import mlflow
kind, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if kind == "mlflow_run":
    from mlflow.cli import cli
ready.touch()
while not go.exists():
    time.sleep(0.001)
if kind == "client":
    client = mlflow.MlflowClient()
    run = client.create_run("0")
    client.set_terminated(run.info.run_id)
    print("created", run.info.run_id)
else:  # the real CLI; epochs=0 fails the entry script's own check a second after MLflow's run exists
    cli.main(args=["run", ".", "-e", "repr_fixed", "--env-manager", "local", "-P", "epochs=0"],
             prog_name="mlflow")
"""


def _start_together(kinds: list[str], tmp_path: Path) -> list[subprocess.CompletedProcess]:
    """Start one child per kind, release them at once, and return their finished processes.

    Clients run in tmp_path with the relative README default `sqlite:///mlflow.db`; `mlflow run`
    children run in the repository with the absolute URI of the same file.
    """
    db = tmp_path / "mlflow.db"
    go = tmp_path / "go"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "FIXLAB_CACHE": str(tmp_path / "cache")}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    children = []
    for k, kind in enumerate(kinds):
        relative = kind == "client"
        uri = "sqlite:///mlflow.db" if relative else f"sqlite:///{db}"
        ready = tmp_path / f"ready-{k}"
        out = (tmp_path / f"out-{k}").open("w+")
        err = (tmp_path / f"err-{k}").open("w+")
        process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, kind, str(ready), str(go)],
            cwd=tmp_path if relative else REPO, env={**env, "MLFLOW_TRACKING_URI": uri},
            stdout=out, stderr=err, text=True)
        children.append((process, ready, out, err))
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not all(ready.exists() for _, ready, _, _ in children):
        assert time.monotonic() < deadline, "a child did not import MLflow in time"
        assert all(p.poll() is None for p, _, _, _ in children), "a child exited before the start"
        time.sleep(0.01)
    assert not db.exists(), "the store must not exist before the start signal"
    go.touch()
    finished = []
    for process, _, out, err in children:
        process.wait(timeout=300)
        out.seek(0)
        err.seek(0)
        finished.append(subprocess.CompletedProcess(process.args, process.returncode, out.read(), err.read()))
        out.close()
        err.close()
    return finished


def test_concurrent_first_use_of_a_fresh_store(tmp_path: Path) -> None:
    kinds = ["mlflow_run", "client", "mlflow_run", "client"]
    results = _start_together(kinds, tmp_path)

    for kind, result in zip(kinds, results):
        detail = f"{kind} exited {result.returncode}:\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, detail
        if kind == "client":
            assert result.returncode == 0 and result.stdout.startswith("created"), detail
        else:  # MLflow created the run; the entry script then rejected epochs=0 (exit 2 -> run FAILED)
            assert result.returncode == 1, detail
            assert "invalid parameter epochs='0'" in result.stderr, detail

    # A new client on the same store: the schema is at MLflow's head (the store's own check) and
    # every process's run is there, with its own final status.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs(["0"])
    entry_points = sorted(r.data.tags.get("mlflow.project.entryPoint", "-") for r in runs)
    statuses = sorted(r.info.status for r in runs)
    assert entry_points == ["-", "-", "repr_fixed", "repr_fixed"]
    assert statuses == ["FAILED", "FAILED", "FINISHED", "FINISHED"]
    run = client.create_run("0")
    assert client.get_run(run.info.run_id).info.status == "RUNNING"
    assert client.search_registered_models() == []  # the registry tables were created too


def test_sqlite_builders_are_fixlabs() -> None:
    """Both of MLflow's registries build SQLite stores through fixlab's lock (the entry points)."""
    assert _tracking_store_registry.get_store_builder("sqlite:///x.db") is store_lock.tracking_store
    assert _get_store_registry().get_store_builder("sqlite:///x.db") is store_lock.registry_store


@pytest.mark.parametrize("uri_of", [lambda db: "sqlite:///" + os.path.relpath(db), lambda db: f"sqlite:///{db}"],
                         ids=["relative", "absolute"])
def test_lock_file_beside_the_database(tmp_path: Path, _mlflow_db_template: Path,
                                      uri_of: Callable[[Path], str]) -> None:
    """Relative and absolute URIs of one database share one lock file, next to the database."""
    db = tmp_path / "sub" / "my store.db"
    db.parent.mkdir()
    shutil.copyfile(_mlflow_db_template, db)
    assert store_lock.lock_path(uri_of(db)) == str(db) + ".fixlab-lock"
    store = store_lock.tracking_store(store_uri=uri_of(db), artifact_uri=str(tmp_path / "art"))
    assert store.get_experiment("0").name == "Default"
    with open(str(db) + ".fixlab-lock") as lock:  # released once the store is built
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_an_unavailable_lock_warns_and_the_store_is_built(tmp_path: Path, _mlflow_db_template: Path) -> None:
    db = tmp_path / "mlflow.db"
    shutil.copyfile(_mlflow_db_template, db)
    Path(str(db) + ".fixlab-lock").mkdir()  # a folder where the lock file should be: cannot be opened
    with pytest.warns(RuntimeWarning, match=r"^fixlab: cannot lock .*mlflow\.db\.fixlab-lock"):
        store = store_lock.tracking_store(store_uri=f"sqlite:///{db}", artifact_uri=str(tmp_path / "art"))
    assert store.get_experiment("0").name == "Default"


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:m?mode=memory&uri=true"])
def test_in_memory_uris_take_no_lock(uri: str) -> None:
    assert store_lock.lock_path(uri) is None


def test_server_read_replica_is_kept(tmp_path: Path, _mlflow_db_template: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `mlflow server --read-replica-backend-store-uri` the server's own builders (the ones
    that read the replica) are the ones wrapped: the replica is still used for reads."""
    for name in ("primary.db", "replica.db"):
        shutil.copyfile(_mlflow_db_template, tmp_path / name)
    primary, replica = f"sqlite:///{tmp_path / 'primary.db'}", f"sqlite:///{tmp_path / 'replica.db'}"
    monkeypatch.setenv("_MLFLOW_SERVER_READ_REPLICA_BACKEND_STORE", replica)
    tracking = store_lock.tracking_store(store_uri=primary, artifact_uri=str(tmp_path / "art"))
    registry = store_lock.registry_store(store_uri=primary)
    assert str(tracking.read_engine.url) == str(registry.read_engine.url) == replica


def test_sqlite_uri_filename_locks_its_file() -> None:
    assert store_lock.lock_path("sqlite:///file:/data/runs%20a.db?uri=true") == "/data/runs a.db.fixlab-lock"
