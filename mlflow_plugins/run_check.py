"""The run a monitor records into, checked once before training: a typo'd run id is a
configuration error, not a run whose findings and metrics silently go nowhere.

Only an id the user named (`run_id=`, or env `MLFLOW_RUN_ID`) is checked; the active run exists
by construction. One `get_run` per (run, store) and process, with a deadline: a store that cannot
be reached, or does not answer in time, cannot say the run is missing, so it is a warning and
training goes on (STYLE.md rule 7).
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any

import mlflow

from .outcome import error_line
from .recording import Recorder, RecordingWarning

__all__ = ["CHECK_TIMEOUT_S", "check_run", "check_run_id", "fetch_run", "resolve_recorder"]

CHECK_TIMEOUT_S = 10.0  # the most a monitor's construction waits for the store's answer
_NOT_A_RUN = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
_confirmed: set[tuple[str, str]] = set()  # (run id, tracking URI) known to exist and be active
_lock = threading.Lock()


def check_run_id(run_id: object, tracking_uri: object = None) -> None:
    """`run_id` and `tracking_uri` are None or non-empty strings.

    Raises:
        ValueError: either is something else (e.g. a `Run` object instead of its id).
    """
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
        shown = repr(run_id) if isinstance(run_id, str) else type(run_id).__name__
        raise ValueError(f"run_id={shown} is not allowed; allowed: a run id string (e.g. "
                         "run.info.run_id), or None for the active run / MLFLOW_RUN_ID")
    if tracking_uri is not None and (not isinstance(tracking_uri, str) or not tracking_uri.strip()):
        shown = repr(tracking_uri) if isinstance(tracking_uri, str) else type(tracking_uri).__name__
        raise ValueError(f"tracking_uri={shown} is not allowed; allowed: a tracking URI string "
                         "(e.g. 'http://127.0.0.1:5000', 'sqlite:///mlflow.db'), or None")


def resolve_recorder(run_id: str | None = None, tracking_uri: str | None = None) -> Recorder | None:
    """`Recorder.resolve(run_id, tracking_uri)`, with the run checked when it was named.

    Raises:
        ValueError: `run_id` (or `MLFLOW_RUN_ID`) is not a string, or names no active run in the
            tracking store.
    """
    check_run_id(run_id, tracking_uri)
    named = "run_id" if run_id is not None else None
    if named is None and mlflow.active_run() is None and os.environ.get("MLFLOW_RUN_ID"):
        named = "MLFLOW_RUN_ID"
    recorder = Recorder.resolve(run_id, tracking_uri)
    if recorder is not None and named is not None:
        check_run(recorder.run_id, recorder.tracking_uri, argument=named)
    return recorder


def check_run(run_id: str, tracking_uri: str, *, argument: str = "run_id") -> None:
    """Asks the store for the run, waiting at most `CHECK_TIMEOUT_S`.

    Args:
        argument: how the user named the id, for the message ("run_id" or "MLFLOW_RUN_ID").

    Raises:
        ValueError: the store says there is no such run, or that it is deleted.
    """
    key = (run_id, tracking_uri)
    with _lock:
        if key in _confirmed:
            return
    named = f"{argument}={run_id!r}" + (" (from the environment)" if argument == "MLFLOW_RUN_ID" else "")
    run, error = None, None
    try:
        run = fetch_run(run_id, tracking_uri)
    except TimeoutError:
        _cannot_check(named, tracking_uri, f"no answer within {CHECK_TIMEOUT_S:g} s")
        return
    except Exception as failure:  # noqa: BLE001 - sorted out below
        error = failure
    if run is not None:
        if run.info.lifecycle_stage == "deleted":
            raise ValueError(f"{named} is a deleted run in tracking URI {tracking_uri}; allowed: an "
                             "active run (restore it with MlflowClient().restore_run, or start a new one)")
        with _lock:
            _confirmed.add(key)
    elif getattr(error, "error_code", None) in _NOT_A_RUN:
        raise ValueError(f"{named} is not a run in tracking URI {tracking_uri}; allowed: the id of an "
                         "existing run there, or None to record into the active run")
    else:
        _cannot_check(named, tracking_uri, error_line(error))


def fetch_run(run_id: str, tracking_uri: str, timeout: float | None = None) -> Any:
    """`MlflowClient(tracking_uri).get_run(run_id)`, waiting at most `timeout` seconds (default
    `CHECK_TIMEOUT_S`). It runs in a thread, so a server that accepts but never answers, or
    MLflow's minutes of retries on a refused connection, hold the caller up for the deadline only.

    Raises:
        TimeoutError: no answer in time (the request goes on in the background, then ends).
        Whatever `get_run` raises (e.g. `MlflowException` RESOURCE_DOES_NOT_EXIST).
    """
    from mlflow.tracking import MlflowClient

    answer: dict[str, Any] = {}

    def ask() -> None:
        try:
            answer["run"] = MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            answer["error"] = error

    wait = CHECK_TIMEOUT_S if timeout is None else timeout
    asking = threading.Thread(target=ask, daemon=True, name="fixlab-get-run")
    asking.start()
    asking.join(wait)
    if asking.is_alive():
        raise TimeoutError(f"no answer from {tracking_uri} within {wait:g} s")
    if "error" in answer:
        raise answer["error"]
    return answer["run"]


def _cannot_check(named: str, tracking_uri: str, why: str) -> None:
    warnings.warn(f"fixlab: could not check {named} in tracking URI {tracking_uri} ({why}); "
                  "training continues, recording into it may fail", RecordingWarning, stacklevel=4)
