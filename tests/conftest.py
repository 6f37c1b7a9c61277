"""Shared fixtures: a temporary MLflow SQLite tracking store per test."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import mlflow
import pytest


# JAX's persistent compilation cache, one per session, in the environment so that the project runs
# the tests start (entry scripts, `mlflow run`, `fixlab resume`, fresh interpreters) share it with
# this process: the same train step, predict and initializers are otherwise compiled again by every
# process (10-15 s of each tiny document-000 run). Tracing still happens in every process (the
# cache key is the traced program), and a hit is the executable the same program compiled to, so
# no result changes. A size limit turns on JAX's file lock: runs started together read and write
# the cache safely. Compilations under 0.1 s are not worth a file each.
JAX_CACHE = {"JAX_COMPILATION_CACHE_DIR": ("jax_compilation_cache_dir", str),
             "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": ("jax_persistent_cache_min_compile_time_secs", float),
             "JAX_COMPILATION_CACHE_MAX_SIZE": ("jax_compilation_cache_max_size", int)}


def pytest_configure(config: pytest.Config) -> None:
    folder = tempfile.mkdtemp(prefix="fixlab-jax-cache-")
    settings = {"JAX_COMPILATION_CACHE_DIR": folder, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.1",
                "JAX_COMPILATION_CACHE_MAX_SIZE": str(4 << 30)}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    if "jax" in sys.modules:  # imported before this hook: it has read the environment already
        import jax

        for name, value in settings.items():
            option, kind = JAX_CACHE[name]
            jax.config.update(option, kind(value))

    def cleanup() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(folder, ignore_errors=True)

    config.add_cleanup(cleanup)


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


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory, _mlflow_db_template: Path) -> Iterator[str]:
    """One SQLite store shared by a test module, working directory inside it (a SQLite store's
    default artifact root is ./mlruns). Restores the tracking URI, the active experiment and the
    env vars that `set_tracking_uri`/`set_experiment` export."""
    root = tmp_path_factory.mktemp("store")
    shutil.copyfile(_mlflow_db_template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous_uri = mlflow.get_tracking_uri()
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
        mlflow.set_tracking_uri(uri)
        yield uri
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(previous_uri)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(autouse=True)
def _run_files_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test's runs leave behind (metrics a recorder could not send, a project run's
    checkpoint folder) goes to its tmp folder, never the repository."""
    monkeypatch.setenv("FIXLAB_SPOOL", str(tmp_path / "fixlab_spool"))
    monkeypatch.setenv("FIXLAB_CHECKPOINTS", str(tmp_path / "fixlab_checkpoints"))


@pytest.fixture(scope="session")
def shared_data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data cache for the session's tiny project runs: the tiny GW data set is simulated once
    (a few seconds in its own process) and read by every later test that asks for the same config."""
    return tmp_path_factory.mktemp("data_cache")


# Slow kinds (`-m "not slow"` skips them while developing; CI runs everything): end-to-end
# `mlflow run`, a real `mlflow server`, fresh interpreters that load a model, full training runs
# of a project, data generation in its own process, the benchmarks' code paths.
SLOW = (
    "integration/",
    "test_cpc_snn_gw_project.py::test_tiny_run", "test_cpc_snn_gw_project.py::test_same_seed",
    "test_cpc_snn_gw_project.py::test_champion_loads", "test_cpc_snn_gw_project.py::test_missing_registered",
    "test_registry.py::test_load_champion_matches", "test_registry_pyfunc.py::test_champion_is", "test_registry_tamper.py::", "test_champion_gate.py::test_repr_run",
    "gw_data/test_sim_generate.py::", "test_benchmarks_smoke.py::test_overhead_tables",
    "test_benchmarks_smoke.py::test_logging_tables", "test_benchmarks_smoke.py::test_jax_overhead",
    "jax_plugin/test_jax_benchmark_smoke.py::test_table", "cpc_snn_gw/test_cpcsnn_task_gradients.py::",
    "test_repr_gradflow.py::test_same_seed", "test_cli.py::test_console_script",
    "test_rules.py::test_a_monitor_never_closed", "test_resume.py::test_a_killed_run",
    "test_api_misuse.py::test_a_tracking_server_says", "cpc_snn_gw/test_cpc_comparisons.py::test_a_tiny_",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(part in item.nodeid for part in SLOW):
            item.add_marker(pytest.mark.slow)
