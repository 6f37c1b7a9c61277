"""`watch_jax` in MLflow: metrics, tags and artifacts land in the run; arguments are validated."""

from __future__ import annotations

import json

import jax.numpy as jnp
import mlflow
import optax
import pytest
from flax import nnx

from _jax_models import Mlp, NanInside, Scaled, StopGradBranch, train
import mlflow_plugins
from mlflow_plugins.jax import monitored, watch_jax


def _artifact(run_id: str, path: str) -> str:
    with open(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)) as f:
        return f.read()


def test_records_metrics_tags_and_artifacts(tracking_uri):
    with mlflow.start_run() as run:
        monitored_run = train(Scaled(nnx.Rngs(0)), steps=5, monitor_kwargs={"log_every": 2})
    client = mlflow.MlflowClient()
    data = client.get_run(run.info.run_id).data
    assert data.tags["fixlab.health"] == "warning"
    assert (data.tags["fixlab.findings"], data.tags["fixlab.info"]) == ("NORM_GRAD_ATTENUATION", "NORM_ERASES_MAGNITUDE")
    history = client.get_metric_history(run.info.run_id, "grad_norm/total")
    assert [m.step for m in history] == [0, 2, 4]  # every log step, none lost
    for name in ("grad_norm/encoder.kernel", "grad_norm/norm.scale", "norm/norm/grad_ratio",
                 "norm/norm/magnitude_cv_in", "norm/norm/magnitude_cv_out"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [0, 2, 4]
    assert not [k for k in data.metrics if "norm_probe" in k]  # taps are not parameters
    findings = json.loads(_artifact(run.info.run_id, "fixlab/findings.json"))
    assert findings["health"] == "warning"
    assert {(f["code"], f["where"]) for f in findings["findings"]} == {
        (f.code, f.where) for f in monitored_run.findings}
    report = _artifact(run.info.run_id, "fixlab/report.html")
    assert "NORM_GRAD_ATTENUATION" in report and "Gradient flow" in report
    names = {a.path for a in client.list_artifacts(run.info.run_id, "fixlab")}
    assert "fixlab/grad_flow.png" in names


def test_critical_run_and_stop_policy(tracking_uri):
    with mlflow.start_run() as run:
        train(StopGradBranch(nnx.Rngs(0)), steps=4, monitor_kwargs={"log_every": 50})
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["fixlab.health"] == "critical" and tags["fixlab.findings"] == "GRAD_NEVER_UPDATED"
    with mlflow.start_run() as run:
        with pytest.raises(mlflow_plugins.TrainingStopped):
            train(NanInside(nnx.Rngs(0)), steps=5, monitor_kwargs={"policy": "stop"})
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(run.info.run_id, "grad_norm/total")] == [0]
    assert client.get_run(run.info.run_id).data.tags["fixlab.findings"] == "NONFINITE"


def test_healthy_run_is_tagged_ok(tracking_uri):
    with mlflow.start_run() as run:
        train(Mlp(nnx.Rngs(0)), steps=4, spread=False)
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["fixlab.health"] == "ok" and tags["fixlab.findings"] == "none"


def test_without_a_run_it_still_finds(tracking_uri):
    assert mlflow.active_run() is None
    run = train(StopGradBranch(nnx.Rngs(0)), steps=4)
    assert {f.code for f in run.findings} == {"GRAD_NEVER_UPDATED"}
    assert mlflow.MlflowClient().search_runs(["0"]) == []


def test_follows_mlflow_run_id(tracking_uri, monkeypatch):
    run = mlflow.MlflowClient().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)  # what `mlflow run` sets
    train(StopGradBranch(nnx.Rngs(0)), steps=4)
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.tags["fixlab.health"] == "critical"


def _params():
    return nnx.split(Mlp(nnx.Rngs(0)), nnx.Param, ...)[1]


BAD_ARGUMENTS = [
    ({"policy": "ignore"}, r"policy='ignore' is not a policy; allowed: \['warn', 'skip_step', 'stop'\]"),
    ({"log_every": 0}, r"log_every=0 is out of range; allowed: an integer >= 1"),
    ({"vanishing": -1.0}, r"vanishing=-1.0 is out of range; allowed: a finite number > 0"),
    ({"explodin": 5.0}, r"unknown threshold\(s\) \['explodin'\]; allowed: \[.*'exploding'"),
]


@pytest.mark.parametrize("kwargs,message", BAD_ARGUMENTS)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        watch_jax(_params(), **kwargs)


def test_params_must_have_leaves():
    with pytest.raises(ValueError, match="params=dict has no array leaves to watch"):
        watch_jax({})


@pytest.mark.parametrize("tx,kwargs,step,message", [
    (optax.sgd(0.1), {}, 0, "opt_state holds 0 MonitoredState"),
    (monitored(optax.sgd(0.1), log_every=5), {"log_every": 50}, 0,
     r"log_every=50 differs from the optimizer's monitored\(log_every=5\)"),
    (monitored(optax.sgd(0.1)), {"policy": "skip_step"}, 0,
     r"policy='skip_step' needs the optimizer built with monitored\(inner, skip_step=True\)"),
    (monitored(optax.sgd(0.1)), {}, -1, r"step=-1 is out of range; allowed: an integer >= 0"),
])
def test_observe_rejects_a_mismatched_setup(tx, kwargs, step, message):
    params = _params()
    with pytest.raises(ValueError, match=message):
        watch_jax(params, **kwargs).observe(step, tx.init(params))


def test_observe_rejects_other_parameters():
    params = _params()
    other = nnx.split(StopGradBranch(nnx.Rngs(0)), nnx.Param, ...)[1]
    with pytest.raises(ValueError, match="monitored\\(\\) state has 4 parameters and 0 probe "
                                         "taps, but params has 8 and 0"):
        watch_jax(params).observe(0, monitored(optax.sgd(0.1)).init(other))


def test_a_failing_locate_does_not_crash_training():
    def locate():
        raise RuntimeError("no model here")

    params = {"w": jnp.ones(3)}
    tx = monitored(optax.sgd(0.1), log_every=1)
    _, state = tx.update({"w": jnp.array([jnp.nan, 0.0, 1.0])}, tx.init(params), params)
    monitor = watch_jax(params, log_every=1)
    with pytest.warns(RuntimeWarning, match="locating a non-finite value failed.*no model here"):
        monitor.observe(0, state, locate=locate)
    by_code = {f.code: f for f in monitor.findings}
    assert (by_code["NONFINITE"].where, by_code["NONFINITE"].evidence["source"]) == ("w", "gradient")
    # the blind spot is on the record: the run cannot read as healthy
    assert "no model here" in by_code["DIAGNOSTICS_FAILED"].evidence["error"]


@pytest.mark.parametrize("skip_step", [True, False])
def test_log_every_and_skip_step_come_from_the_optimizer(skip_step):
    """Configured once, on `monitored`: the monitor reads both from the optimizer state."""
    params = {"w": jnp.ones(3)}
    tx = monitored(optax.sgd(0.1), log_every=7, skip_step=skip_step)
    _, state = tx.update({"w": jnp.array([jnp.nan, 0.0, 1.0])}, tx.init(params), params)
    with watch_jax(params) as monitor:
        monitor.observe(0, state)
    assert monitor.log_every == 7
    assert monitor.policy == ("skip_step" if skip_step else "warn")
