"""SQLite store builders that serialise MLflow's first use of a database across processes.

MLflow creates and migrates a SQLite store's schema in whichever process first builds the store
(`SqlAlchemyStore.__init__`). Processes started together on a fresh database (two `mlflow run` jobs
on the README's default `sqlite:///mlflow.db`) run the migrations at the same time: most of them
crash, and a half-applied migration can leave the store unusable for every later client (issue 9).

fixlab registers the `sqlite` scheme in MLflow's `mlflow.tracking_store` and
`mlflow.model_registry_store` entry-point groups (pyproject.toml). MLflow registers entry points
after its built-in schemes, so these builders run wherever MLflow builds a SQLite store: clients,
the `mlflow run` CLI (which creates the run before the entry script starts) and `mlflow server`.
Each holds an exclusive `flock` on `<database>.fixlab-lock` only while MLflow's own builder runs,
and returns MLflow's store unchanged: on an initialised store the cost is one open and one
uncontended lock per process and store.
"""

from __future__ import annotations

import importlib
import os
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; MLflow builds the store as it would without fixlab
    fcntl = None

__all__ = ["LOCK_SUFFIX", "lock_path", "registry_store", "tracking_store"]

LOCK_SUFFIX = ".fixlab-lock"
# `mlflow server --read-replica-backend-store-uri` passes the replica here; only the server's own
# builder reads it, so the server's builder is the one to wrap when it is set.
_READ_REPLICA_ENV = "_MLFLOW_SERVER_READ_REPLICA_BACKEND_STORE"


def lock_path(store_uri: str) -> str | None:
    """The lock file of a SQLite URI's database: `<absolute database path>.fixlab-lock`.

    Relative and absolute URIs of one file share one lock. None for in-memory databases, which no
    other process can see.
    """
    from .store import sqlite_path

    path = sqlite_path(store_uri)
    return None if path is None else str(path) + LOCK_SUFFIX


def tracking_store(store_uri: str, artifact_uri: str | None = None) -> Any:
    """`mlflow.tracking_store` builder for `sqlite`: MLflow's tracking store, built under the lock."""
    if os.environ.get(_READ_REPLICA_ENV):
        from mlflow.server.handlers import TrackingStoreRegistryWrapper

        build = TrackingStoreRegistryWrapper._get_sqlalchemy_store
    else:
        from mlflow.tracking._tracking_service.utils import _get_sqlalchemy_store as build
    importlib.import_module("mlflow.store.tracking.sqlalchemy_store")  # seconds: not under the lock
    with _first_use_lock(store_uri):
        return build(store_uri=store_uri, artifact_uri=artifact_uri)


def registry_store(store_uri: str) -> Any:
    """`mlflow.model_registry_store` builder for `sqlite`: MLflow's registry store, under the lock."""
    if os.environ.get(_READ_REPLICA_ENV):
        from mlflow.server.handlers import ModelRegistryStoreRegistryWrapper

        build = ModelRegistryStoreRegistryWrapper._get_sqlalchemy_store
    else:
        from mlflow.tracking._model_registry.utils import _get_sqlalchemy_store as build
    importlib.import_module("mlflow.store.model_registry.sqlalchemy_store")  # not under the lock
    with _first_use_lock(store_uri):
        return build(store_uri=store_uri)


@contextmanager
def _first_use_lock(store_uri: str) -> Iterator[None]:
    """Hold the database's lock file exclusively (waiting for it) while the body builds the store."""
    path = lock_path(store_uri)
    fd = None if path is None or fcntl is None else _acquire(path, store_uri)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


def _acquire(path: str, store_uri: str) -> int | None:
    """An open descriptor holding `path`'s exclusive flock, or None (and a warning) if the lock is
    unavailable (a read-only folder, a file system without flock): MLflow then builds the store as
    it would without fixlab, which is safe for a single process."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        _warn_unlocked(path, store_uri, exc)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        os.close(fd)
        _warn_unlocked(path, store_uri, exc)
        return None
    return fd


def _warn_unlocked(path: str, store_uri: str, exc: OSError) -> None:
    warnings.warn(f"fixlab: cannot lock {path} ({exc}); building the store {store_uri} without the "
                  "first-use lock (processes starting together on a fresh database may collide)",
                  RuntimeWarning, stacklevel=4)
