"""Which MLflow store a fixlab command reads, checked to exist before MLflow opens (and creates) it.

MLflow's default tracking URI, ``sqlite:///mlflow.db``, is relative to the working directory, and
MLflow creates a missing SQLite file (with an empty schema) the first time a client opens it. Run
from another directory, a reader would silently get a new, empty store. `checked_store` resolves
the URI a command will use (``--tracking-uri`` > ``$MLFLOW_TRACKING_URI`` > MLflow's default) and
refuses, in one line, a local store that does not exist.

`experiment_artifact_location` gives experiments fixlab creates in a SQLite store a folder beside
the database, so a run's artifacts (its model) do not depend on the directory it was started from.

Example:
    >>> uri = checked_store(args.tracking_uri)   # ValueError: one line naming the missing file
    >>> client = MlflowClient(tracking_uri=uri)

No MLflow store is opened here, and nothing imports torch.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

__all__ = ["ENV", "URI_HELP", "checked_store", "existing_store", "experiment_artifact_location",
           "sqlite_path", "tracking_uri", "uri_source"]

ENV = "MLFLOW_TRACKING_URI"
URI_HELP = ("MLflow tracking URI, e.g. sqlite:////abs/path/mlflow.db (default: $MLFLOW_TRACKING_URI, "
            "else sqlite:///mlflow.db in the working directory); a local store that does not "
            "exist is an error, never created")
ARTIFACTS_DIR = "mlruns"  # the artifact folder beside a SQLite database (MLflow's default name)
_NAMED_SCHEMES = ("databricks", "databricks-uc", "uc")  # URIs MLflow accepts without "scheme:"
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def tracking_uri(explicit: str | None = None) -> str:
    """The tracking URI a command uses: `explicit`, else ``$MLFLOW_TRACKING_URI``, else MLflow's
    default (``sqlite:///mlflow.db`` in the working directory, or ``./mlruns`` where that holds a
    legacy file store). A local store's path is made absolute."""
    return _absolute(_given(explicit))


def _given(explicit: str | None) -> str:
    """The tracking URI as given: `explicit`, else MLflow's current one (process-wide, env, default)."""
    if explicit:
        return explicit
    import mlflow

    return mlflow.get_tracking_uri()


def uri_source(explicit: str | None = None) -> str:
    """Where `tracking_uri(explicit)` comes from, for messages."""
    if explicit:
        return "--tracking-uri"
    if os.environ.get(ENV):
        return f"${ENV}"
    return "MLflow's default, relative to the working directory"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI, absolute; None for other URIs and in-memory ones."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url  # imported by MLflow anyway; light, no store opened

    url = make_url(uri)
    database = url.database or ""
    if url.query.get("uri") == "true" and database.startswith("file:"):  # a SQLite URI filename
        if url.query.get("mode") == "memory":
            return None
        database = unquote(urlparse(database).path)
    if database in ("", ":memory:"):
        return None
    return Path(os.path.abspath(database))


def _file_store_path(uri: str) -> Path | None:
    """The folder of a local file store (``file:///...`` or a plain path); None for other URIs."""
    if uri.split("://", 1)[0] in _NAMED_SCHEMES:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(os.path.abspath(url2pathname(unquote(parsed.path))))
    if parsed.scheme == "" and uri:
        return Path(os.path.abspath(uri))
    return None


def _absolute(uri: str) -> str:
    """`uri` with a relative SQLite database path made absolute; any other URI unchanged."""
    path = sqlite_path(uri)
    if path is None or uri.startswith("sqlite:////"):
        return uri
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if url.query.get("uri") == "true":  # a SQLite URI filename: keep as written
        return uri
    return url.set(database=str(path)).render_as_string(hide_password=False)


def existing_store(uri: str, source: str = "") -> str:
    """`uri`, after checking that a local store it names exists (a SQLite file, a file-store folder).

    Servers and other databases are returned unchanged: they are not created by reading them.

    Raises:
        ValueError: one line naming the file looked for, where the URI came from (`source`), and
            how to point at the right store.
    """
    came_from = f", from {source}" if source else ""
    path = sqlite_path(uri)
    if path is not None:
        if path.is_file():
            return uri
        what = "is a directory, not a SQLite file" if path.exists() else "does not exist"
        raise ValueError(
            f"tracking store {path} {what} (tracking URI {uri!r}{came_from}); allowed: an existing "
            f"store: pass --tracking-uri sqlite:////abs/path/mlflow.db, or export "
            f"{ENV}=sqlite:////abs/path/mlflow.db, or run from the directory that holds mlflow.db")
    folder = _file_store_path(uri)
    if folder is not None and not folder.is_dir():
        raise ValueError(
            f"tracking store folder {folder} does not exist (tracking URI {uri!r}{came_from}); "
            f"allowed: an existing store: pass --tracking-uri or export {ENV} with its absolute "
            "location")
    return uri


def checked_store(explicit: str | None = None) -> str:
    """`tracking_uri(explicit)`, checked by `existing_store`: what a command reading a store uses.

    Raises:
        ValueError: one line: the local store does not exist.
    """
    return _absolute(existing_store(_given(explicit), uri_source(explicit)))


def experiment_artifact_location(uri: str, name: str) -> str | None:
    """Where a new experiment `name` of store `uri` keeps its artifacts: for a SQLite file,
    ``<database folder>/mlruns/<name>`` (absolute); None for other stores (MLflow or the tracking
    server decides).

    MLflow's own choice for a SQLite store is ``mlruns/<id>`` under the working directory of the
    process that creates the experiment, so a project started elsewhere would scatter its models
    there. A name that is not a plain folder name gets a short hash, so distinct names never share
    a folder with each other or with MLflow's numbered ones.
    """
    path = sqlite_path(uri)
    if path is None:
        return None
    slug = _SLUG.sub("_", name).strip("._") or "experiment"
    if slug != name or name.isdigit():
        slug = f"{slug}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"
    return str(path.parent / ARTIFACTS_DIR / slug)
