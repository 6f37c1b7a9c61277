"""The registration gate every flavor shares: version tags, and the honest ``champion`` alias.

The alias ``champion`` moves only to a healthy version that beats the current champion on
the project's selection metric; an unhealthy run is registered without the alias and
tagged, or not registered at all (DESIGN.md, "MLflow conventions" -> Registry). The model
itself is logged by a flavor module (`torch_models`, `pyfunc_models`); this module sees only
the logged model's id.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from ..paging import all_pages

CHAMPION = "champion"
MODEL_NAME = "model"
HEALTH_TAG = "fixlab.health"
RUN_TAG = "fixlab.run_id"
METRIC_TAG = "fixlab.selection_metric"
_PICKLE_ENV = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"


def metric_tag(metric: str) -> str:
    """The model-version tag that holds the value of `metric` (e.g. ``fixlab.metric.val/acc``)."""
    return f"fixlab.metric.{metric}"


@dataclass(frozen=True)
class RegistrationResult:
    """What a registration did: the version (None if not registered) and why."""

    name: str
    version: int | None
    became_champion: bool
    reason: str


def _should_crown(client: Any, project: str, metric: str, value: float, healthy: bool,
                  greater_is_better: bool) -> tuple[bool, str]:
    """Whether a new version with `value` takes the alias, and why (decision, reason)."""
    if not healthy:
        return False, "run is unhealthy: registered without the champion alias"
    if not math.isfinite(value):
        return False, f"{metric}={value} is not finite: registered without the champion alias"
    current = _champion_version(client, project)
    if current is None:
        return True, f"first healthy version: became {CHAMPION} with {metric}={value:.6g}"
    try:
        best = float(current.tags[metric_tag(metric)])
    except (KeyError, ValueError):
        return False, (f"{CHAMPION} v{current.version} has no numeric tag {metric_tag(metric)!r} "
                       f"to compare {metric} with: alias not moved")
    beats = value > best if greater_is_better else value < best
    direction = "higher" if greater_is_better else "lower"
    if beats:
        return True, (f"{metric}={value:.6g} beats {CHAMPION} v{current.version} "
                      f"({best:.6g}; {direction} is better)")
    return False, (f"{metric}={value:.6g} does not beat {CHAMPION} v{current.version} "
                   f"({best:.6g}; {direction} is better): alias not moved")


def _ensure_registered_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name)


def _champion_version(client: Any, project: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(project, CHAMPION)
    except MlflowException:
        return None


def check_common_args(*, project: Any, run_id: Any, metric: Any, value: Any) -> float:
    """Validate the arguments every flavor's register function takes; returns `value` as a float."""
    for name, text in (("project", project), ("run_id", run_id), ("metric", metric)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name}={text!r} is invalid; allowed: a non-empty string")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value={value!r} is not a number; allowed: a float") from None


def existing_run(run_id: str, tracking_uri: str | None) -> Any:
    """An `MlflowClient` for `tracking_uri`, after checking that `run_id` is a run there.

    Raises:
        ValueError: the run does not exist.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException as e:
        raise ValueError(f"run_id={run_id!r} is not a run in {client.tracking_uri} "
                         f"({e.message})") from None
    return client


def register_logged_model(client: Any, model_id: str, *, project: str, run_id: str, metric: str,
                          value: float, healthy: bool, greater_is_better: bool = True,
                          register_unhealthy: bool = True) -> RegistrationResult:
    """Register the logged model `model_id` under `project`, tagged, moving the alias honestly.

    The version is tagged ``fixlab.health`` (``healthy``/``unhealthy``),
    ``fixlab.selection_metric``, ``fixlab.metric.<metric>`` (the value) and ``fixlab.run_id``.
    """
    if not healthy and not register_unhealthy:
        return RegistrationResult(project, None, False,
                                  "run is unhealthy and register_unhealthy=False: the model is "
                                  "logged to the run but not registered")
    crown, reason = _should_crown(client, project, metric, value, healthy, greater_is_better)
    _ensure_registered_model(client, project)
    tags = {HEALTH_TAG: "healthy" if healthy else "unhealthy", METRIC_TAG: metric,
            metric_tag(metric): repr(value), RUN_TAG: run_id}
    version = client.create_model_version(project, source=f"models:/{model_id}", run_id=run_id,
                                          tags=tags, model_id=model_id).version
    if crown:
        client.set_registered_model_alias(project, CHAMPION, version)
    return RegistrationResult(project, int(version), crown, reason)


def registered_names(client: Any) -> list[str]:
    """Every registered model's name in the client's store, sorted (all pages)."""
    return sorted(m.name for m in all_pages(client.search_registered_models))


def champion(client: Any, project: str) -> Any:
    """The model version that holds `project`'s champion alias.

    Raises:
        ValueError: one line: the registered model does not exist (listing those that do), or
            it has no champion.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(project)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ValueError(f"registered model {project!r} does not exist in {client.tracking_uri}; "
                         f"registered models: {registered_names(client) or 'none'}") from None
    version = _champion_version(client, project)
    if version is None:
        raise ValueError(f"registered model {project!r} has no {CHAMPION!r} alias: no healthy "
                         "version has been registered")
    return version


@contextmanager
def tracking(uri: str | None) -> Iterator[None]:
    """Point MLflow's fluent API at `uri` for the block (model logging only uses the fluent one)."""
    import mlflow

    if uri is None:
        yield
        return
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


@contextmanager
def pickle_disallowed() -> Iterator[None]:
    """Make mlflow's loaders verify archives and refuse pickle payloads for the block.

    The switch is an environment variable, read by mlflow at each load: process-wide for
    the duration of the block.
    """
    previous = os.environ.get(_PICKLE_ENV)
    os.environ[_PICKLE_ENV] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_PICKLE_ENV, None)
        else:
            os.environ[_PICKLE_ENV] = previous
