"""The plugin in MLflow: metrics, tags and artifacts from `watch` and the Lightning callbacks."""

from __future__ import annotations

import json
import os

import mlflow
import pytest
import torch
from lightning.pytorch.loggers import MLFlowLogger

from _models import NoGradBranch, Wrapped, mlp, train_lightning, train_plain
import mlflow_plugins
from mlflow_plugins import AmpNanCallback, GradientHealthCallback, NormalizationEffectCallback


def _artifact_json(run_id: str, path: str) -> dict | list:
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    with open(local) as f:
        return json.load(f)


def test_watch_records_into_the_active_run(tracking_uri):
    with mlflow.start_run() as run:
        monitor = train_plain(NoGradBranch(), steps=7, monitor_kwargs={"log_every": 2})
    client = mlflow.MlflowClient()
    data = client.get_run(run.info.run_id).data
    assert data.tags["fixlab.health"] == "critical"
    assert data.tags["fixlab.findings"] == "GRAD_NEVER_UPDATED"
    history = client.get_metric_history(run.info.run_id, "grad_norm/total")
    assert [m.step for m in history] == [0, 2, 4, 6]  # every sampled step, none lost
    findings = _artifact_json(run.info.run_id, "fixlab/findings.json")
    assert findings["health"] == "critical"
    places = {f["where"] for f in findings["findings"]}
    assert places == {"representation.weight", "representation.bias"} == {f.where for f in monitor.findings}
    report = open(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                      artifact_path="fixlab/report.html")).read()
    assert "representation.weight" in report and "no gradient (None or all-zero) in 3 consecutive" in report
    assert "Document" not in report  # a user's own model: no research note is cited


def test_healthy_run_is_tagged_ok(tracking_uri):
    with mlflow.start_run() as run:
        train_plain(mlp(), steps=5)
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert (tags["fixlab.health"], tags["fixlab.findings"], tags["fixlab.info"]) == ("ok", "none", "none")


def test_watch_without_mlflow_run_still_finds(tracking_uri):
    assert mlflow.active_run() is None
    monitor = train_plain(NoGradBranch(), steps=4)
    assert {f.code for f in monitor.findings} == {"GRAD_NEVER_UPDATED"}
    assert mlflow.MlflowClient().search_runs(["0"]) == []  # nothing was created


def test_watch_follows_mlflow_run_id(tracking_uri, monkeypatch):
    run = mlflow.MlflowClient().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)  # what `mlflow run` sets
    train_plain(NoGradBranch(), steps=4)
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.tags["fixlab.health"] == "critical"


def test_stop_policy_loses_no_metric(tracking_uri):
    from _models import SqrtAtZero
    with mlflow.start_run() as run:
        with pytest.raises(mlflow_plugins.TrainingStopped):
            train_plain(SqrtAtZero(), steps=5, monitor_kwargs={"policy": "stop"})
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(run.info.run_id, "grad_norm/total")] == [0]
    assert client.get_run(run.info.run_id).data.tags["fixlab.findings"] == "NONFINITE"


def test_lightning_callbacks_share_one_report(tracking_uri):
    logger = MLFlowLogger(experiment_name="lightning", tracking_uri=tracking_uri)
    callbacks = [GradientHealthCallback(log_every=1), AmpNanCallback(log_every=1),
                 NormalizationEffectCallback(log_every=1)]
    from _models import NormAfterLargeInput
    train_lightning(Wrapped(NormAfterLargeInput()), callbacks, steps=4, logger=logger)
    client = mlflow.MlflowClient()
    data = client.get_run(logger.run_id).data
    assert (data.tags["fixlab.findings"], data.tags["fixlab.info"]) == ("NORM_GRAD_ATTENUATION", "NORM_ERASES_MAGNITUDE")
    assert data.tags["fixlab.health"] == "warning"
    assert "grad_norm/total" in data.metrics and "norm/model.normalize/grad_ratio" in data.metrics
    assert "train/loss" in data.metrics  # Lightning's own metrics land in the same run


def test_lightning_under_mlflow_run_reuses_the_run(tracking_uri, monkeypatch):
    run = mlflow.MlflowClient().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    logger = MLFlowLogger(tracking_uri=tracking_uri, run_id=os.environ["MLFLOW_RUN_ID"])
    train_lightning(Wrapped(NoGradBranch()), [GradientHealthCallback(log_every=1)], steps=4, logger=logger)
    runs = mlflow.MlflowClient().search_runs(["0"])
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    assert runs[0].data.tags["fixlab.health"] == "critical"


BAD_ARGUMENTS = [
    ({"policy": "ignore"}, r"policy='ignore' is not a policy; allowed: \['warn', 'skip_step', 'stop'\]"),
    ({"log_every": 0}, r"log_every=0 is out of range; allowed: an integer >= 1"),
    ({"log_every": 2.5}, r"log_every=2.5 is out of range"),
    ({"vanishing": -1.0}, r"vanishing=-1.0 is out of range; allowed: a finite number > 0"),
    ({"exploding": float("nan")}, r"exploding=nan is out of range"),
    ({"never_updated_steps": True}, r"never_updated_steps=True is out of range"),
    ({"amp_skip_fraction": 1.5}, r"amp_skip_fraction=1.5 is out of range; allowed: a number strictly between 0 and 1"),
    ({"norm_band_low": 20.0}, r"norm_band_low=20.0 must be below norm_band_high=10.0"),
    ({"explodin": 5.0}, r"unknown threshold\(s\) \['explodin'\]; allowed: \[.*'exploding'"),
    ({"norm_modules": ["missing"]}, r"norm_modules entry 'missing' matches no module"),
]


@pytest.mark.parametrize("kwargs,message", BAD_ARGUMENTS)
def test_bad_arguments_name_the_argument(kwargs, message):
    model = mlp()
    with pytest.raises(ValueError, match=message):
        mlflow_plugins.watch(model, torch.optim.SGD(model.parameters(), 0.1), **kwargs)


def _owner(kwargs):
    """The callback that declares this argument: each validates only its own."""
    if any(k.startswith("amp_") for k in kwargs):
        return AmpNanCallback
    return GradientHealthCallback


@pytest.mark.parametrize("kwargs,message", [k for k in BAD_ARGUMENTS
                                            if "norm_modules" not in k[0] and "explodin" not in k[0]])
def test_bad_callback_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _owner(kwargs)(**kwargs)


@pytest.mark.parametrize("cls,kwargs", [
    (GradientHealthCallback, {"amp_window": 5}),  # another callback's threshold
    (GradientHealthCallback, {"explodin": 5.0}),
    (AmpNanCallback, {"exploding": 5.0}),
    (NormalizationEffectCallback, {"vanishing": 1e-3}),
])
def test_callbacks_reject_arguments_they_do_not_declare(cls, kwargs):
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{next(iter(kwargs))}'"):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [GradientHealthCallback, AmpNanCallback, NormalizationEffectCallback])
def test_two_instances_have_their_own_state_key(cls):
    defaults, other = cls(), cls(rules=[mlflow_plugins.Rule.metric("val/acc", below=0.1, code="LOW_ACC")])
    assert defaults.state_key.startswith(cls.__name__) and defaults.state_key != other.state_key
    assert cls().state_key == defaults.state_key  # stable: a resume finds its state


def test_watch_rejects_wrong_types():
    model = mlp()
    with pytest.raises(ValueError, match="optimizer=list is not a torch.optim.Optimizer"):
        mlflow_plugins.watch(model, [])
    with pytest.raises(ValueError, match="model=str is not a torch.nn.Module"):
        mlflow_plugins.watch("model", torch.optim.SGD(model.parameters(), 0.1))


def test_only_rank_zero_records(tracking_uri, monkeypatch):
    with mlflow.start_run() as run:
        monkeypatch.setenv("RANK", "1")
        monitor = train_plain(NoGradBranch(), steps=4)
    assert monitor.findings  # it still diagnoses
    assert "fixlab.health" not in mlflow.MlflowClient().get_run(run.info.run_id).data.tags


def test_hook_failure_does_not_crash_training(tracking_uri):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with mlflow_plugins.watch(model, opt, log_every=1) as monitor:
        monitor.watch.grads.stats.params.append("not a parameter")  # break the watch from inside
        with pytest.warns(RuntimeWarning, match="watch\\(\\) failed and was skipped"):
            model(torch.randn(4, 16)).sum().backward()
            opt.step()
