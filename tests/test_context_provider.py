"""The run context provider: every new run carries fixlab's version and project tags."""

from __future__ import annotations

from importlib.metadata import entry_points, version

import mlflow
import pytest
from mlflow import MlflowClient

from mlflow_plugins.context import FixlabRunContext
from mlflow_plugins.liveness import process_tags

_ENV = {"FIXLAB_PROJECT": "repr_gradflow", "FIXLAB_VARIANT": "repr_broken",
        "FIXLAB_DOCUMENT": "001"}


@pytest.fixture
def no_fixlab_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in _ENV:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_entry_point_is_registered() -> None:
    eps = entry_points(group="mlflow.run_context_provider")
    assert any(ep.name == "fixlab" and ep.load() is FixlabRunContext for ep in eps)


def test_tags_from_version_and_environment(no_fixlab_env: pytest.MonkeyPatch) -> None:
    provider = FixlabRunContext()
    assert provider.in_context()
    process = process_tags()  # which process created the run: `fixlab runs --stale`
    assert provider.tags() == {"fixlab.version": version("fixlab"), **process}
    for var, value in _ENV.items():
        no_fixlab_env.setenv(var, value)
    assert provider.tags() == {"fixlab.version": version("fixlab"), **process, "fixlab.project":
                               "repr_gradflow", "fixlab.variant": "repr_broken",
                               "fixlab.document": "001"}


def test_new_run_carries_version_only_without_env(tracking_uri: str,
                                                  no_fixlab_env: pytest.MonkeyPatch) -> None:
    with mlflow.start_run() as run:
        pass
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["fixlab.version"] == version("fixlab")
    assert not {"fixlab.project", "fixlab.variant", "fixlab.document"} & set(tags)


def test_new_run_carries_env_tags(tracking_uri: str, no_fixlab_env: pytest.MonkeyPatch) -> None:
    for var, value in _ENV.items():
        no_fixlab_env.setenv(var, value)
    with mlflow.start_run() as run:
        pass
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["fixlab.version"] == version("fixlab")
    assert (tags["fixlab.project"], tags["fixlab.variant"], tags["fixlab.document"]) == (
        "repr_gradflow", "repr_broken", "001")
